#!/bin/bash
# mvm next to virtme-ng, the same job on the same kernel in one run:
# `mvm run -- true` and `vng --run KERNEL --disable-kvm --exec true`
# (TCG both: this machine's KVM cannot run a guest; pass --kvm where it
# can), alternated, medians and the ratio.
# virtme-ng: `vng` on PATH, a checkout in $VNG_DIR, else the script
# installs it: Debian's virtme-ng package where the archive has one, else
# a clone of its public source (https://github.com/arighi/virtme-ng) kept
# in /var/cache/mvm/virtme-ng; and what it needs (python3-argcomplete,
# python3-requests, busybox-static) with apt-get.  It runs its bash init
# when its Rust init is not built.
# Usage: sudo [VNG_DIR=DIR] [MVM_KERNEL=K] bench/vs-virtme.sh [RUNS] [MVM_BINARY] [--kvm]
# (defaults: 3, build/mvm; virtme-ng takes tens of seconds a run here).
# MVM_KERNEL: mvm boots K instead (the kernel made for mvm, from
# contrib/kernel/build.sh), virtme-ng still the stock one.
set -euo pipefail
RUNS=${1:-3}
MVM=$(realpath "${2:-$(dirname "$0")/../build/mvm}")
ACCEL=${3:-}
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }
[ -x "$MVM" ] || { echo "no mvm binary at $MVM" >&2; exit 1; }
VNG_CACHE=/var/cache/mvm/virtme-ng
VNG_URL=https://github.com/arighi/virtme-ng
need=()
/usr/bin/python3 -c 'import argcomplete, requests' 2> /dev/null ||
    need+=(python3-argcomplete python3-requests)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing what virtme-ng needs: ${need[*]}" >&2
    apt-get install -y -q "${need[@]}" > /dev/null ||
        { echo "apt-get could not install ${need[*]}, which virtme-ng needs" >&2; exit 1; }
fi
if [ -z "${VNG_DIR:-}" ] && ! command -v vng > /dev/null && [ ! -x "$VNG_CACHE/vng" ]; then
    if apt-cache show virtme-ng > /dev/null 2>&1; then
        echo "installing Debian's virtme-ng" >&2
        apt-get install -y -q virtme-ng > /dev/null || true
    fi
    if ! command -v vng > /dev/null; then
        echo "cloning virtme-ng from $VNG_URL into $VNG_CACHE" >&2
        rm -rf "$VNG_CACHE.tmp"
        timeout 120 git clone -q --depth 1 "$VNG_URL" "$VNG_CACHE.tmp" 2> /dev/null &&
            mv "$VNG_CACHE.tmp" "$VNG_CACHE" || {
            rm -rf "$VNG_CACHE.tmp"
            echo "virtme-ng not found and not installable here: no virtme-ng package could be" \
                "installed from the archive and $VNG_URL cannot be cloned; clone it where it" \
                "can be and pass its directory as VNG_DIR" >&2
            exit 1
        }
    fi
fi
if [ -n "${VNG_DIR:-}" ]; then
    [ -x "$VNG_DIR/vng" ] || { echo "VNG_DIR=$VNG_DIR holds no vng" >&2; exit 1; }
    VNG=(/usr/bin/python3 "$VNG_DIR/vng")
elif command -v vng > /dev/null; then
    VNG=(vng)
else
    VNG=(/usr/bin/python3 "$VNG_CACHE/vng")
fi
KERNEL=/boot/vmlinuz-$(uname -r)
[ -e "$KERNEL" ] || KERNEL=$(ls -1 /boot/vmlinuz-* | sort -V | tail -1)
vng_accel=(--disable-kvm)
mvm_accel=(--accel tcg)
[ "$ACCEL" = --kvm ] && { vng_accel=(); mvm_accel=(--accel kvm); }
work=$(mktemp -d /tmp/mvm-bench-vng.XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"
MVM_KERNEL=${MVM_KERNEL:-$KERNEL}
[ -r "$MVM_KERNEL" ] || { echo "no kernel at $MVM_KERNEL" >&2; exit 1; }
"$MVM" run -q --kernel "$MVM_KERNEL" "${mvm_accel[@]}" -- true # warm mvm's caches
"${VNG[@]}" --run "$KERNEL" "${vng_accel[@]}" --exec true > /dev/null 2>&1 ||
    { echo "vng --run $KERNEL --exec true failed" >&2; exit 1; }
for _ in $(seq "$RUNS"); do
    t0=$(now); "$MVM" run -q --kernel "$MVM_KERNEL" "${mvm_accel[@]}" -- true; t1=$(now)
    "${VNG[@]}" --run "$KERNEL" "${vng_accel[@]}" --exec true > /dev/null 2>&1; t2=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >> "$work/mvm"
    awk -v a="$t1" -v b="$t2" 'BEGIN {print b - a}' >> "$work/vng"
done
m=$(median < "$work/mvm")
v=$(median < "$work/vng")
echo "kernel $KERNEL (mvm: $MVM_KERNEL), ${mvm_accel[*]}, medians of $RUNS alternated runs:"
echo "  mvm run -- true: ${m}s"
echo "  vng --run --exec true: ${v}s"
echo "  ratio: $(awk -v m="$m" -v v="$v" 'BEGIN {printf "%.1f", v / m}')x (goal 25x)"
