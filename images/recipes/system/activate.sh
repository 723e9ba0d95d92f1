#! @shell@
# A NixOS activation script, reduced to what the fixture needs: /etc from the generation,
# hostname, /bin/sh, /run/current-system, and the console getty systemd would start.

systemConfig=@systemConfig@

export PATH=$systemConfig/sw/bin


# Set up the statically computed bits of /etc.
echo "setting up /etc..."
rm -f /etc/static
ln -s "$systemConfig/etc" /etc/static
for name in $(ls /etc/static); do
    ln -sfn "/etc/static/$name" "/etc/$name"
done


# Hostname.
hostname "$(cat /etc/hostname)"


# Create the required /bin/sh symlink; otherwise lots of things
# (notably the system() function) won't work.
ln -sfn "@shell@" /bin/.sh.tmp
mv /bin/.sh.tmp /bin/sh


# systemd's getty generator starts serial-getty@ on the kernel console (the last console=);
# busybox init learns the same from an inittab written here.
tty=console
baud=115200
for o in $(cat /proc/cmdline); do
    case $o in
        console=*)
            spec=${o#console=}
            tty=${spec%%,*}
            case $spec in
                *,*)
                    rate=${spec#*,}
                    baud=${rate%%[!0-9]*}
                    ;;
            esac
            ;;
    esac
done
# syslogd stands in for journald: without it login's syslog lines land on the console.
cat > /etc/inittab <<INITTAB
::sysinit:/run/current-system/sw/bin/syslogd -C64
$tty::respawn:/run/current-system/sw/bin/getty -l @login@ -L $baud $tty vt220
::ctrlaltdel:/run/current-system/sw/bin/reboot
::shutdown:/run/current-system/sw/bin/umount -a -r
INITTAB

# agetty, which NixOS runs, expands \l in /etc/issue to the tty name; busybox getty to
# /dev/<tty>. Expanding it here keeps the greeting line the same.
rm -f /etc/issue
sed "s|\\\\l|$tty|" /etc/static/issue > /etc/issue


ln -sfn "$systemConfig" /run/current-system
