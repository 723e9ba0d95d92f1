#!/bin/sh
# Run inside the Debian root (under PRoot) after debootstrap's second stage: installs the kernel
# package every fixture is built from, whose postinst makes Debian's initramfs-tools initrd, then
# makes the board-specific initrd beside it with its own configuration directory.
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin

dpkg -i "/tmp/@kernelDeb@"

board=/tmp/initramfs-tools-board
cp -a /etc/initramfs-tools "$board"
sed -i 's/^MODULES=.*/MODULES=list/' "$board/initramfs.conf"
cp /tmp/board-initrd-modules "$board/modules"
mkinitramfs -d "$board" -o "/boot/initrd.img-@release@-board" "@release@"
rm -rf "$board"

apt-get clean
