#!/bin/bash
# `make tool-image`: localhost/bootc-ts:<version> and :latest in containers-storage, and
# dist/bootc-ts-<version>.ociarchive, from dist/bootc (`make dist`) and systemd/.
# Needs podman (build --isolation chroot: nothing runs inside, the image is FROM scratch)
# and skopeo. An image whose content label matches the staged tree is kept as it is, so its
# ID (and what is built FROM it, like the base image) stays the same.
set -euo pipefail
repo=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
version=$(node -p 'require(process.argv[1]).version' "$repo/package.json")
ctx=$(mktemp -d "$repo/dist/.tool-image-XXXXXX")
trap 'rm -rf "$ctx"' EXIT

"$repo/images/bootc-ts/stage.sh" "$repo" "$ctx/rootfs"
content=$( (cd "$ctx" && find rootfs -printf '%y %m %U:%G %p %l\n' | LC_ALL=C sort \
  && find rootfs -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum; cat "$repo/images/bootc-ts/Containerfile") \
  | sha256sum | cut -c1-16)
image=localhost/bootc-ts:$version
archive=$repo/dist/bootc-ts-$version.ociarchive
if podman image exists "$image" \
  && [ "$(podman image inspect --format '{{ index .Labels "bootc-ts.content" }}' "$image")" = "$content" ] \
  && [ -e "$archive" ]; then
  podman tag "$image" localhost/bootc-ts:latest
  echo "$image: up to date"
  exit 0
fi
podman build --isolation chroot --pull=never --quiet --build-arg "VERSION=$version" --label "bootc-ts.content=$content" \
  -f "$repo/images/bootc-ts/Containerfile" -t "$image" "$ctx" >/dev/null
podman tag "$image" localhost/bootc-ts:latest
rm -f "$archive.tmp"
skopeo copy --quiet "containers-storage:$image" "oci-archive:$archive.tmp:bootc-ts:$version" \
  2> >(grep -v 'using prior storage driver' >&2)
mv "$archive.tmp" "$archive"
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "$image (and :latest), $((size / 1024 / 1024)) MiB; $archive"
