#!/bin/bash
# `make tool-image`: localhost/bootc-ts:<version> and :latest in containers-storage, and
# dist/bootc-ts-<version>.ociarchive, from dist/bootc (`make dist`) and systemd/.
# Needs podman (build --isolation chroot: nothing runs inside, the image is FROM scratch)
# and skopeo.
set -euo pipefail
repo=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
version=$(node -p 'require(process.argv[1]).version' "$repo/package.json")
ctx=$(mktemp -d "$repo/dist/.tool-image-XXXXXX")
trap 'rm -rf "$ctx"' EXIT

"$repo/images/bootc-ts/stage.sh" "$repo" "$ctx/rootfs"
podman build --isolation chroot --pull=never --quiet --build-arg "VERSION=$version" \
  -f "$repo/images/bootc-ts/Containerfile" -t "localhost/bootc-ts:$version" "$ctx" >/dev/null
podman tag "localhost/bootc-ts:$version" localhost/bootc-ts:latest
archive=$repo/dist/bootc-ts-$version.ociarchive
rm -f "$archive.tmp"
skopeo copy --quiet "containers-storage:localhost/bootc-ts:$version" "oci-archive:$archive.tmp:bootc-ts:$version" \
  2> >(grep -v 'using prior storage driver' >&2)
mv "$archive.tmp" "$archive"
size=$(podman image inspect --format '{{.Size}}' "localhost/bootc-ts:$version")
echo "localhost/bootc-ts:$version (and :latest), $((size / 1024 / 1024)) MiB; $archive"
