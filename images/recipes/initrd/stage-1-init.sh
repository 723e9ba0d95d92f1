#!/bin/sh
# Stage 1 of a NixOS boot (nixpkgs nixos/modules/system/boot/stage-1-init.sh), imitated with
# busybox: the same console lines in the same order, the same failure dialog, the same
# switch_root into the init= path. Differences are marked "fixture:".

targetRoot=/mnt-root
console=tty1

export PATH=/bin

fail() {
    if [ -n "$panicOnFail" ]; then exit 1; fi

    # If starting stage 2 failed, allow the user to repair the problem
    # in an interactive shell.
    cat <<EOF

An error occurred in stage 1 of the boot process, which must mount the
root filesystem on \`$targetRoot' and then start stage 2.  Press one
of the following keys:

EOF
    if [ -n "$allowShell" ]; then cat <<EOF
  i) to launch an interactive shell
  f) to start an interactive shell having pid 1 (needed if you want to
     start stage 2's init manually)
EOF
    fi
    cat <<EOF
  r) to reboot immediately
  *) to ignore the error and continue
EOF

    read -n 1 reply

    if [ -n "$allowShell" -a "$reply" = f ]; then
        exec setsid sh -c "exec sh < /dev/$console >/dev/$console 2>/dev/$console"
    elif [ -n "$allowShell" -a "$reply" = i ]; then
        echo "Starting interactive shell..."
        setsid sh -c "exec sh < /dev/$console >/dev/$console 2>/dev/$console" || fail
    elif [ "$reply" = r ]; then
        echo "Rebooting..."
        reboot -f
    else
        echo "Continuing..."
    fi
}

trap 'fail' 0


# Print a greeting.
echo
echo "<<< NixOS Stage 1 >>>"
echo

# Make several required directories.
mkdir -p /etc/udev
touch /etc/fstab # to shut up mount
ln -s /proc/mounts /etc/mtab # to shut up mke2fs
touch /etc/initrd-release

# Mount special file systems (NixOS's early mount script).
mkdir -m 0755 -p /proc /sys /dev /run
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs -o size=5% devtmpfs /dev
mount -t tmpfs -o mode=0755,size=25% tmpfs /run


# fixture: udev is not in busybox. devtmpfs already has the device nodes; this stands in for
# the /dev/disk/by-label links udev would make, reading labels with findfs.
udevTrigger() {
    case "$1" in
        /dev/disk/by-label/*)
            local label="${1#/dev/disk/by-label/}"
            local dev
            dev=$(findfs "LABEL=$label" 2>/dev/null) || return 0
            mkdir -p /dev/disk/by-label
            ln -sfn "$dev" "$1"
            ;;
    esac
}

# Function for waiting for a device to appear.
waitDevice() {
    local device="$1"

    # USB storage devices tend to appear with some delay.  It would be
    # great if we had a way to synchronously wait for them, but
    # alas...  So just wait for a few seconds for the device to
    # appear.
    if test ! -e $device; then
        echo -n "waiting for device $device to appear..."
        # fixture: @waitSeconds@ tries rather than NixOS's 20, so broken images fail sooner.
        try=@waitSeconds@
        while [ $try -gt 0 ]; do
            udevTrigger $device
            if test -e $device; then break; fi
            sleep 1
            echo -n "."
            try=$((try - 1))
        done
        echo
        [ $try -ne 0 ]
    fi
}


# Process the kernel command line.
export stage2Init=/init
for o in $(cat /proc/cmdline); do
    case $o in
        console=*)
            set -- $(IFS==; echo $o)
            params=$2
            set -- $(IFS=,; echo $params)
            console=$1
            ;;
        init=*)
            set -- $(IFS==; echo $o)
            stage2Init=$2
            ;;
        boot.trace|debugtrace)
            # Show each command.
            set -x
            ;;
        boot.shell_on_fail)
            allowShell=1
            ;;
        boot.debug1|debug1) # stop right away
            allowShell=1
            fail
            ;;
        boot.panic_on_fail|stage1panic=1)
            panicOnFail=1
            ;;
    esac
done


# Load the required kernel modules.
echo /bin/modprobe > /proc/sys/kernel/modprobe
for i in @kernelModules@; do
    echo "loading module $(basename $i)..."
    modprobe $i
done


# Create device nodes in /dev.
echo "running udev..."
# fixture: udev's coldplug loads a driver for each device by its modalias; busybox modprobe
# resolves them through modules.alias (one process for all: -a) and says nothing of those none
# matches. A second pass loads drivers for devices the first pass's bus drivers brought
# (virtio_mmio's virtio disks). An initrd without modules.alias has nothing to resolve them with.
if [ -e /lib/modules/$(uname -r)/modules.alias ]; then
    for pass in 1 2; do
        modprobe -qa $(cat /sys/bus/*/devices/*/modalias 2>/dev/null) 2>/dev/null
    done
fi
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr

echo "starting device mapper and LVM..."


# Try to find and mount the root device.
mkdir -p $targetRoot

device=@rootDevice@
mountPoint=/
fsType=ext4

if ! waitDevice "$device"; then
    # If it doesn't appear, try to mount it anyway (and
    # probably fail).
    echo "Timed out waiting for device $device, trying to mount anyway."
fi

echo "$device /mnt-root$mountPoint $fsType defaults" >> /etc/fstab
echo "mounting $device on $mountPoint..."
mkdir -m 0755 -p "/mnt-root$mountPoint"
mount -t $fsType "$device" "/mnt-root$mountPoint" || fail


# Restore /proc/sys/kernel/modprobe to its original value.
echo /sbin/modprobe > /proc/sys/kernel/modprobe


# Start stage 2.  `switch_root' deletes all files in the ramfs on the
# current root.  The path has to be valid in the chroot not outside.
if [ ! -e "$targetRoot/$stage2Init" ]; then
    stage2Check=${stage2Init}
    while [ "$stage2Check" != "${stage2Check%/*}" ] && [ ! -L "$targetRoot/$stage2Check" ]; do
        stage2Check=${stage2Check%/*}
    done
    if [ ! -L "$targetRoot/$stage2Check" ]; then
        echo "stage 2 init script ($targetRoot/$stage2Init) not found"
        fail
    fi
fi

mkdir -m 0755 -p $targetRoot/proc $targetRoot/sys $targetRoot/dev $targetRoot/run

mount --move /proc $targetRoot/proc
mount --move /sys $targetRoot/sys
mount --move /dev $targetRoot/dev
mount --move /run $targetRoot/run

exec env -i /bin/switch_root "$targetRoot" "$stage2Init"

fail # should never be reached
