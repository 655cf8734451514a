#!/bin/sh
# Installs every Debian package mvm needs to build, run and test, and a
# guest kernel when /boot has none with modules.  Safe to run again: it
# calls apt-get only when something is missing.
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: run it as root (sudo contrib/install-deps.sh)" >&2
    exit 1
fi

PACKAGES="
    build-essential cmake pkg-config
    libjansson-dev libseccomp-dev libcap-ng-dev libnl-3-dev libnl-route-3-dev libnl-genl-3-dev libnftables-dev
    liblz4-dev libzstd-dev liblzma-dev zlib1g-dev
    qemu-system-x86 qemu-utils e2fsprogs mmdebstrap tar
    libcmocka-dev clang clang-format cpio lz4 xz-utils zstd gzip tmux util-linux procps passwd sudo
    libmicrohttpd-dev libcurl4-openssl-dev libssl-dev ca-certificates openssl
    busybox-static fdisk file genisoimage xorriso xfsprogs btrfs-progs
    iproute2 nftables dnsmasq-base python3 strace
    wireguard-go wireguard-tools
    groff-base man-db zsh
"

# A guest kernel: any /boot/vmlinuz-* whose modules are installed will do.
need_kernel=yes
for k in /boot/vmlinuz-*; do
    [ -e "$k" ] || continue
    [ -d "/lib/modules/${k#/boot/vmlinuz-}" ] && need_kernel=no
done
[ "$need_kernel" = yes ] && PACKAGES="$PACKAGES linux-image-amd64"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}\n' "$p" 2> /dev/null | grep -q '^install ok installed$' ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps.sh: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi

# Newer Debian ships virtiofsd on its own; Debian 12 has it in
# qemu-system-common (/usr/lib/qemu/virtiofsd).
if [ ! -x /usr/libexec/virtiofsd ] && [ ! -x /usr/lib/qemu/virtiofsd ]; then
    apt-get install -y -q --no-install-recommends virtiofsd
fi
