#!/bin/bash
# Stages the tree of the tool layer: what an installed system needs to update itself, and
# nothing else. `make tool-image` builds localhost/bootc-ts from it; the fixture images
# (fixtures/build.sh) carry the same tree.
# Usage: images/bootc-ts/stage.sh REPO OUT_DIR      (REPO/dist/bootc must exist: `make dist`)
#
#   /usr/bin/bootc                       the single executable (node inside; glibc, libstdc++)
#   /usr/lib/systemd/system/bootc-*      REPO/systemd/*: the units, enabled by the links
#                                        under *.wants/ beside them (no preset needed)
#   /usr/lib/bootc/*.sh                  the scripts those units run
#   /usr/lib/bootc/bin/{getfattr,setfattr}   Debian's attr tools (they need only libc): the
#                                        store and the /etc merge carry extended attributes
#                                        with them, and the image need not ship `attr`
#
# Every path is one Debian does not ship (checked by test/privileged/tool-layer.test.ts).
set -euo pipefail
repo=$1 out=$2
lib=$out/usr/lib/bootc

[ -x "$repo/dist/bootc" ] || { echo "stage.sh: $repo/dist/bootc is missing; run \`make dist\`" >&2; exit 1; }
for helper in getfattr setfattr; do
  command -v "$helper" >/dev/null || { echo "stage.sh: $helper is missing; apt-get install attr" >&2; exit 1; }
done

mkdir -p "$out/usr/bin" "$lib/bin" "$out/usr/lib/systemd/system"
install -m 0755 "$repo/dist/bootc" "$out/usr/bin/bootc"
for helper in getfattr setfattr; do
  install -m 0755 "$(readlink -f "$(command -v "$helper")")" "$lib/bin/$helper"
done
cp -a "$repo/systemd/." "$out/usr/lib/systemd/system/"
# The scripts the units run sit beside them in the repo but belong in /usr/lib/bootc.
find "$out/usr/lib/systemd/system" -maxdepth 1 -name '*.sh' -exec mv -t "$lib" {} +
chown -R 0:0 "$out"
chmod -R u+rwX,go+rX,go-w "$out"
