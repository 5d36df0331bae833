#!/bin/bash
# `make base-image [BASE=image]`: localhost/debian-bootc:12 from images/debian-bootc/.
#
# Without BASE, the base is a minimal Debian 12 made here with mmdebstrap (what
# docker.io/library/debian:bookworm holds, without reaching Docker Hub), imported as
# localhost/debian-mmdebstrap:bookworm. Needs root, podman (RUN steps use --isolation
# chroot), mmdebstrap, and localhost/bootc-ts:latest (`make tool-image`).
#
# Rebuilt only when its recipe (this folder, the base, the tool image) changed: the image
# carries the recipe's hash as a label.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
image=localhost/debian-bootc:12
local_base=localhost/debian-mmdebstrap:bookworm
base=${1:-}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'images/debian-bootc/build.sh: %s\n' "$*" >&2; exit 1; }
label_of() { podman image inspect --format "{{ index .Labels \"$2\" }}" "$1" 2>/dev/null || true; }
hash_dir() { (cd "$1" && find . -printf '%y %m %p %l\n' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum) | sha256sum | cut -c1-16; }

[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap, podman build)"
podman image exists localhost/bootc-ts:latest || die "localhost/bootc-ts:latest is missing; run \`make tool-image\`"

# The local stand-in for docker.io/library/debian:bookworm.
if [ -z "$base" ]; then
  base=$local_base
  if ! podman image exists "$base"; then
    log "making $base with mmdebstrap (minbase, about a minute)"
    tar=$(mktemp /var/tmp/debian-minbase-XXXXXX.tar)
    trap 'rm -f "$tar"' EXIT
    mmdebstrap --mode=root --variant=minbase --format=tar bookworm - http://deb.debian.org/debian \
      | mmtarfilter --path-exclude='/dev/*' --path-exclude='/run/*' --path-exclude='/tmp/*' >"$tar"
    podman import --quiet --change 'CMD ["/bin/bash"]' "$tar" "$base" >/dev/null
    rm -f "$tar"
  fi
fi

recipe=$(printf '%s\n' "$(hash_dir "$here")" "$(podman image inspect --format '{{.Id}}' "$base")" \
  "$(podman image inspect --format '{{.Id}}' localhost/bootc-ts:latest)" | sha256sum | cut -c1-16)
if podman image exists "$image" && [ "$(label_of "$image" bootc-ts.recipe)" = "$recipe" ]; then
  log "$image: up to date"
  exit 0
fi
log "podman build $image (FROM $base; installs the kernel, systemd, dracut: a few minutes)"
podman build --isolation chroot --pull=never --build-arg "BASE=$base" --label "bootc-ts.recipe=$recipe" \
  -f "$here/Containerfile" -t "$image" "$here"
log "$image: built"
