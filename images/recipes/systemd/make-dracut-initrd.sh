#!/bin/sh
# Run inside the Debian root under PRoot with the build's work directory bound at /mnt: makes a
# systemd initrd for kernel @release@ with dracut, unpacked (not installed) at /mnt/dracut, as
# NixOS's systemd stage 1 is made: systemd as /init, udev, the kernel modules of
# /mnt/initrd-modules, and the initrd's own /etc/fstab naming the root for /sysroot. Nothing in
# the tree is written: dracut's configuration, temporary files and the initrd are below /mnt.
set -eu
export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin

mkdir /mnt/tmp /mnt/conf.d
: >/mnt/dracut.conf
# NixOS's initrd locks root's console access (`root:*`): emergency mode then says so.
printf 'root:x:0:0:root:/root:/bin/sh\n' >/mnt/initrd-passwd
printf 'root:*:::::::\n' >/mnt/initrd-shadow
drivers=$(grep -v '^#' /mnt/initrd-modules | tr '\n' ' ')
# Only systemd's own modules, none of dracut's hooks (dracut-systemd, base, rootfs-block): the
# initrd finds its root as NixOS's does, from its fstab, and says nothing dracut would.
# systemd 252 reads its greeting's name from os-release only, so the initrd's os-release is its
# initrd-release, as NixOS has it. --nostrip: binutils is not in the tree. zstd -1: the default -15 takes minutes under emulation.
dracutbasedir=/mnt/dracut/usr/lib/dracut /bin/bash /mnt/dracut/usr/bin/dracut \
    --no-hostonly --no-hostonly-cmdline --nostrip --no-early-microcode --force \
    --conf /mnt/dracut.conf --confdir /mnt/conf.d --tmpdir /mnt/tmp \
    --modules 'systemd systemd-initrd systemd-udevd systemd-journald udev-rules kernel-modules' \
    --drivers "$drivers" \
    --include /mnt/initrd-release /etc/initrd-release \
    --include /mnt/initrd-release /etc/os-release \
    --include /mnt/initrd-fstab /etc/fstab \
    --include /mnt/initrd-passwd /etc/passwd \
    --include /mnt/initrd-shadow /etc/shadow \
    --compress 'zstd -1 -q' \
    /mnt/systemd.img "@release@"
