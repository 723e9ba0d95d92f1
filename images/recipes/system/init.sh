#! @shell@
# Stage 2 of a NixOS boot (nixpkgs nixos/modules/system/boot/stage-2-init.sh), imitated with
# busybox: same banner and messages; busybox init with a getty stands in for systemd.

systemConfig=@systemConfig@

export HOME=/root PATH=$systemConfig/sw/bin


# Print a greeting.
echo
printf '\033[1;32m<<< NixOS Stage 2 >>>\033[0m\n'
echo


# Normally, stage 1 mounts the root filesystem read/writable.
mount -n -o remount,rw none /


# Likewise, stage 1 mounts /proc, /dev, /sys and /run; mount whatever it did not.
# (busybox-static has no mountpoint applet, hence /proc/mounts.)
isMounted() {
    grep -q "^[^ ]* $1 " /proc/mounts
}
mkdir -m 0755 -p /proc /sys /dev /run
[ -e /proc/1 ] || mount -n -t proc proc /proc
isMounted /sys || mount -n -t sysfs sysfs /sys
isMounted /dev || mount -n -t devtmpfs devtmpfs /dev
isMounted /run || mount -n -t tmpfs -o mode=0755 tmpfs /run
mkdir -m 0755 -p /dev/pts /dev/shm
isMounted /dev/pts || mount -n -t devpts -o gid=3,mode=0620 devpts /dev/pts
isMounted /dev/shm || mount -n -t tmpfs -o mode=1777 tmpfs /dev/shm


echo "booting system configuration $systemConfig" > /dev/kmsg


# Provide a /etc/mtab.
mkdir -m 0755 -p /etc
test -e /etc/fstab || touch /etc/fstab # to shut up mount
rm -f /etc/mtab* # not that we care about stale locks
ln -s /proc/mounts /etc/mtab


# More special file systems, initialise required directories.
mkdir -m 01777 -p /tmp
mkdir -m 0755 -p /var /var/log /var/lib /var/db
mkdir -m 0755 -p /nix/var
mkdir -m 0700 -p /root
chmod 0700 /root
mkdir -m 0755 -p /bin # for the /bin/sh symlink
mkdir -m 0755 -p /home
mkdir -m 0755 -p /etc/nixos


# Miscellaneous boot time cleanup.
rm -rf /var/run /var/lock
rm -f /etc/group.lock /etc/passwd.lock /etc/shadow.lock

mkdir -m 0755 -p /run/lock

# For backwards compatibility, symlink /var/run to /run, and /var/lock
# to /run/lock.
ln -s /run /var/run
ln -s /run/lock /var/lock


# Run the script that performs all configuration activation that does
# not have to be done at boot time.
echo "running activation script..."
$systemConfig/activate


# Record the boot configuration.
ln -sfn "$systemConfig" /run/booted-system

# Prevent the booted system from being garbage-collected.
mkdir -m 0755 -p /nix/var/nix/gcroots
ln -sfn /run/booted-system /nix/var/nix/gcroots/booted-system


# Start systemd.
echo "starting systemd..."
exec $systemConfig/sw/bin/init
