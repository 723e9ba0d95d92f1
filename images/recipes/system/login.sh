#! @shell@
# The login program getty runs (`login -- USER`). busybox login 1.35 prints "Password: " before
# it switches echo off, so a password typed right after the prompt appears on the console;
# NixOS's login switches echo off first. This asks the same way NixOS does, checks the
# password against /etc/shadow (SHA-512 crypt, via busybox mkpasswd), and lets busybox login
# set up the session without asking again.

export PATH=/run/current-system/sw/bin

[ "$1" = "--" ] && shift
user=$1

stty -echo
printf 'Password: '
read -r password
stty echo
echo

hash=
while IFS=: read -r name field rest; do
    if [ "$name" = "$user" ]; then
        hash=$field
    fi
done < /etc/shadow

case $hash in
    '$6$'*)
        salt=${hash#\$6\$}
        salt=${salt%%\$*}
        if [ "$(mkpasswd -m sha512 -S "$salt" "$password")" = "$hash" ]; then
            exec login -f "$user"
        fi
        ;;
esac

sleep 2
echo
echo "Login incorrect"
