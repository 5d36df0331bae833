#!/bin/bash
# Runs once inside the base image build: lays the installed Debian out the way bootc expects.
set -euo pipefail

# --- kernel and initramfs: /usr/lib/modules/<kver>/{vmlinuz,initramfs.img}, /boot empty ---
mapfile -t kvers < <(ls /usr/lib/modules)
if [ "${#kvers[@]}" -ne 1 ]; then
  echo "debian-bootc: expected exactly one kernel, found: ${kvers[*]:-none}" >&2
  exit 1
fi
kver=${kvers[0]}
moddir=/usr/lib/modules/$kver
mv "/boot/vmlinuz-$kver" "$moddir/vmlinuz"
mv "/boot/initrd.img-$kver" "$moddir/initramfs.img"
chmod 0644 "$moddir/initramfs.img"
for f in config System.map; do
  if [ -e "/boot/$f-$kver" ]; then mv "/boot/$f-$kver" "$moddir/$f"; fi
done
rm -rf /boot/* /vmlinuz* /initrd.img*
# A host-only or script-based initramfs would only show up as a hang at boot: refuse it here.
# (The listing is taken whole first: grep -q stopping early would fail the pipe.)
listing=$(lsinitrd "$moddir/initramfs.img")
if ! grep -qE 'usr/lib/systemd/systemd$' <<<"$listing"; then
  echo "debian-bootc: the initramfs is not systemd-based (is dracut's systemd module installed?)" >&2
  exit 1
fi

# --- mutable top-level directories are symlinks into /var, with what packages put there ---
link_into_var() { # <path> <target under /var> <symlink text>
  local path=$1 target=$2 link=$3
  mkdir -p "/var/$target"
  if [ -d "$path" ] && [ ! -L "$path" ]; then
    cp -a "$path/." "/var/$target/"
    rm -rf "$path"
  fi
  ln -sfn "$link" "$path"
}
link_into_var /home home var/home
link_into_var /root roothome var/roothome
link_into_var /opt opt var/opt
link_into_var /srv srv var/srv
link_into_var /mnt mnt var/mnt
link_into_var /usr/local usrlocal ../var/usrlocal
chmod 0700 /var/roothome

# /etc/resolv.conf becomes resolved's stub at boot (tmpfiles.d/debian-bootc.conf): the
# build mounts its own over it, so it cannot be replaced here.
systemctl enable systemd-networkd.service systemd-resolved.service

rm -rf /var/cache/* /var/log/* /var/lib/apt/lists/* /var/lib/dpkg/*-old /tmp/* /var/tmp/*
