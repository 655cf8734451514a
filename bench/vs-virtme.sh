#!/bin/bash
# mvm next to virtme-ng, the same job on the same kernel in one run:
# `mvm run -- true` and `vng --run KERNEL --disable-kvm --exec true`
# (TCG both: this machine's KVM cannot run a guest; pass --kvm where it
# can), alternated, medians and the ratio.
# virtme-ng: `vng` on PATH, or a checkout in $VNG_DIR (its source is
# public: git clone https://github.com/arighi/virtme-ng); it needs
# python3-argcomplete, python3-requests and busybox-static, and runs its
# bash init when its Rust init is not built.
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
if [ -n "${VNG_DIR:-}" ] && [ -x "$VNG_DIR/vng" ]; then
    VNG=("/usr/bin/python3" "$VNG_DIR/vng")
elif command -v vng > /dev/null; then
    VNG=(vng)
else
    echo "virtme-ng not found: put vng on PATH or set VNG_DIR to a checkout" \
        "(git clone https://github.com/arighi/virtme-ng; apt-get install python3-argcomplete" \
        "python3-requests busybox-static)" >&2
    exit 1
fi
/usr/bin/python3 -c 'import argcomplete, requests' 2> /dev/null ||
    { echo "virtme-ng needs python3-argcomplete and python3-requests: apt-get install them" >&2; exit 1; }
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
