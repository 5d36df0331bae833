#!/bin/sh
# Marks the booted bootc deployment good: renames its BLS entry
# loader/entries/bootc-<stateroot>-<id>+<left>[-<done>].conf to bootc-<stateroot>-<id>.conf,
# or its UKI EFI/Linux/bootc-<stateroot>-<id>+<left>[-<done>].efi to bootc-<stateroot>-<id>.efi,
# on the ESP, found under /efi, /boot or /boot/efi (systemd-gpt-auto-generator mounts an
# ESP without an fstab entry at /boot; touching the path triggers its automount).
set -eu

set -f
deploy=
for word in $(cat /proc/cmdline); do
  case $word in
    bootc.deploy=*) deploy=${word#bootc.deploy=} ;;
  esac
done
set +f
# A sealed UKI names its deployment only through a selector; prepare-root wrote what it found.
if [ -z "$deploy" ] && [ -r /run/bootc/booted-deployment ]; then
  read -r deploy < /run/bootc/booted-deployment || deploy=
fi
if [ -z "$deploy" ]; then
  echo "not booted from a bootc deployment (no bootc.deploy= on the kernel command line)"
  exit 0
fi
stateroot=${deploy%%/*}
id=${deploy#*/}
stem=bootc-$stateroot-$id

for esp in /efi /boot /boot/efi; do
  for kind in loader/entries:conf EFI/Linux:efi; do
    dir=$esp/${kind%%:*}
    ext=${kind#*:}
    [ -d "$dir" ] || continue
    for counted in "$dir/$stem+"*."$ext"; do
      [ -e "$counted" ] || continue
      mv "$counted" "$dir/$stem.$ext"
      sync -f "$dir"
      echo "marked $deploy good: $counted -> $dir/$stem.$ext"
      exit 0
    done
    if [ -e "$dir/$stem.$ext" ]; then
      echo "$deploy is already marked good ($dir/$stem.$ext)"
      exit 0
    fi
  done
done
echo "bootc-boot-complete: no boot entry $stem[+N].conf or UKI $stem[+N].efi found under /efi, /boot or /boot/efi" >&2
exit 1
