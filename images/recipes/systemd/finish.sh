#!/bin/sh
# Run inside the Debian root (under PRoot) after debootstrap's second stage: installs the kernel
# package every fixture is built from, then makes its two initramfs-tools initrds, each with
# MODULES=list: Debian's own (`update-initramfs`, with the system's /etc/initramfs-tools) and the
# board-specific one (`mkinitramfs -d` with a copy of that directory).
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin

sed -i 's/^MODULES=.*/MODULES=list/' /etc/initramfs-tools/initramfs.conf
cp /tmp/initrd-modules /etc/initramfs-tools/modules

dpkg -i "/tmp/@kernelDeb@"
# The package's postinst runs its hooks with run-parts, which under qemu-user finds none of them
# executable (its access(2) check fails there), so the initrd is made here as the
# initramfs-tools hook would make it.
[ -e "/boot/initrd.img-@release@" ] || update-initramfs -c -k "@release@"

board=/tmp/initramfs-tools-board
cp -a /etc/initramfs-tools "$board"
cp /tmp/board-initrd-modules "$board/modules"
mkinitramfs -d "$board" -o "/boot/initrd.img-@release@-board" "@release@"
rm -rf "$board"

apt-get clean
