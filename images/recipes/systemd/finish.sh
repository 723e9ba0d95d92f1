#!/bin/sh
# Run inside the Debian root (under PRoot) after debootstrap's second stage: installs the kernel
# package every fixture is built from. INITRD=No keeps the package's initramfs-tools hook from
# making an initrd here: both initrds are made afterwards by make-initrd.sh, each with its own
# configuration, so that changing a module list never costs the second stage again.
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin

INITRD=No dpkg -i "/tmp/@kernelDeb@"
apt-get clean
