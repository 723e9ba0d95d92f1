#!/bin/sh
# Run inside the Debian root under PRoot with the build's work directory bound at /mnt: makes
# initrd "$1" (`debian` or `board`) for kernel @release@ with initramfs-tools' own mkinitramfs,
# from a copy of the tree's /etc/initramfs-tools with the module list /mnt/$1-modules. Nothing in
# the tree is written: the configuration, mkinitramfs's temporary files and the initrd are below
# /mnt, so both initrds are made at the same time from the one tree.
set -eu
export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin

variant=$1
conf=/mnt/$variant-conf
cp -a /etc/initramfs-tools "$conf"
cp "/mnt/$variant-modules" "$conf/modules"
# MODULES=list: the listed modules and what they depend on. Debian's default, MODULES=most,
# copies about a thousand modules one process at a time: over forty minutes under emulation.
sed -i 's/^MODULES=.*/MODULES=list/' "$conf/initramfs.conf"
# FSTYPE: the root's type; the fsck hook would otherwise probe LABEL=NIXOS_SD on the build
# machine, find no such device and leave fsck.ext4 out. COMPRESSLEVEL=1: zstd -1 takes 4 s under
# emulation where mkinitramfs's default -9 takes 25 s, for an initrd 1.2 MB larger.
printf 'FSTYPE=ext4\nCOMPRESSLEVEL=1\n' >>"$conf/initramfs.conf"
mkdir "/mnt/$variant-tmp"
TMPDIR=/mnt/$variant-tmp mkinitramfs -d "$conf" -o "/mnt/$variant.img" "@release@"
