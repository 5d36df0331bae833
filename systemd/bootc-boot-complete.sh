#!/bin/sh
# Marks the booted bootc deployment good: renames its BLS entry
# loader/entries/bootc-<stateroot>-<id>+<left>[-<done>].conf to bootc-<stateroot>-<id>.conf
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
if [ -z "$deploy" ]; then
  echo "not booted from a bootc deployment (no bootc.deploy= on the kernel command line)"
  exit 0
fi
stateroot=${deploy%%/*}
id=${deploy#*/}
stem=bootc-$stateroot-$id

for esp in /efi /boot /boot/efi; do
  entries=$esp/loader/entries
  [ -d "$entries" ] || continue
  for counted in "$entries/$stem+"*.conf; do
    [ -e "$counted" ] || continue
    mv "$counted" "$entries/$stem.conf"
    sync -f "$entries"
    echo "marked $deploy good: $counted -> $entries/$stem.conf"
    exit 0
  done
  if [ -e "$entries/$stem.conf" ]; then
    echo "$deploy is already marked good ($entries/$stem.conf)"
    exit 0
  fi
done
echo "bootc-boot-complete: no boot entry $stem[+N].conf found under /efi, /boot or /boot/efi" >&2
exit 1
