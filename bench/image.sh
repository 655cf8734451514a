#!/bin/bash
# What --image and --rootfs cost next to host mode: `mvm run -- true`
# started to exit, alternated so drift hits all alike, with a static
# busybox userland made here (ext4 via mkfs.ext4 -d, as raw and qcow2,
# and as a directory for --rootfs).  Prints medians and ratios.  With
# BOOT_IMAGE=NAME, an image mvm image build made with a kernel, systemd
# and cloud-init (--packages linux-image-amd64,systemd-sysv,udev,cloud-init),
# also that image with mvm's boot and with --boot image.
# Usage: sudo [BOOT_IMAGE=NAME] bench/image.sh [RUNS] [MVM_BINARY]   (defaults: 7, build/mvm)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS=${1:-7}
MVM=$(realpath "${2:-$(dirname "$0")/../build/mvm}")
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }
[ -x "$MVM" ] || { echo "no mvm binary at $MVM" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "no /bin/busybox: apt-get install busybox-static" >&2; exit 1; }
work=$(mktemp -d /tmp/mvm-bench-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir -p "$work/tree"/{bin,etc,proc,sys,dev,tmp,root}
cp /bin/busybox "$work/tree/bin/"
ln -s busybox "$work/tree/bin/sh"
ln -s busybox "$work/tree/bin/true"
echo "root:x:0:0:root:/root:/bin/sh" > "$work/tree/etc/passwd"
mkfs.ext4 -q -d "$work/tree" "$work/raw.img" 64M > /dev/null
qemu-img convert -O qcow2 "$work/raw.img" "$work/img.qcow2"
cd "$work"
modes=(host raw qcow2 rootfs)
[ -n "${BOOT_IMAGE:-}" ] && modes+=(stored boot-image)
args() {
    case $1 in
    host) ;;
    raw) echo "--image $work/raw.img" ;;
    qcow2) echo "--image $work/img.qcow2" ;;
    rootfs) echo "--rootfs $work/tree" ;;
    stored) echo "--image $BOOT_IMAGE" ;;
    boot-image) echo "--image $BOOT_IMAGE --boot image" ;;
    esac
}
for m in "${modes[@]}"; do "$MVM" run -q --net none $(args "$m") -- true; done # warm the caches
for _ in $(seq "$RUNS"); do
    for m in "${modes[@]}"; do
        t0=$(now); "$MVM" run -q --net none $(args "$m") -- true; t1=$(now)
        awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >> "$work/$m"
    done
done
host=$(median < "$work/host")
echo "mvm run --net none -- true, medians of $RUNS:"
for m in "${modes[@]}"; do
    t=$(median < "$work/$m")
    echo "  $m: ${t}s ($(awk -v a="$t" -v h="$host" 'BEGIN {printf "%.2f", a / h}')x host mode)"
done
