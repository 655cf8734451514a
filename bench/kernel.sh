#!/bin/bash
# Compares two guest kernels on `mvm run -q -- true` (start to exit):
# the stock one mvm finds by itself (or KERNEL_A) against KERNEL_B, e.g.
# the kernel made for mvm (contrib/kernel/build.sh).  Runs alternate
# between the two so that a drift in the machine's load hits both.
# Usage: sudo bench/kernel.sh KERNEL_B [RUNS] [MVM_BINARY] (defaults: 10, build/mvm)
#        KERNEL_A=/boot/vmlinuz-... sudo bench/kernel.sh ...   (default: mvm's own choice)
# Run it on an otherwise idle machine; it prints both medians and the ratio.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 KERNEL_B [RUNS] [MVM_BINARY]" >&2; exit 1; }
KERNEL_B=$(realpath "$1")
RUNS=${2:-10}
MVM=$(realpath "${3:-$(dirname "$0")/../build/mvm}")
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }
[ -x "$MVM" ] || { echo "no mvm binary at $MVM" >&2; exit 1; }
[ -r "$KERNEL_B" ] || { echo "no kernel at $KERNEL_B" >&2; exit 1; }
a_args=()
a_name="mvm's default kernel"
if [ -n "${KERNEL_A:-}" ]; then
    a_args=(--kernel "$(realpath "$KERNEL_A")")
    a_name=$KERNEL_A
fi
work=$(mktemp -d /tmp/mvm-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cd "$work"

. "$(dirname "$0")/lib.sh"
calc() { awk "BEGIN { printf \"%.4f\n\", $1 }"; }
one() { # one timed run with the given arguments, appended to file $1
    local out=$1 t0 t1
    shift
    t0=$(now)
    "$MVM" run -q "$@" -- true
    t1=$(now)
    calc "$t1 - $t0" >> "$out"
}

# Warm the caches (vmlinux, initramfs, TSC) for both.
"$MVM" run -q "${a_args[@]}" -- true
"$MVM" run -q --kernel "$KERNEL_B" -- true
for _ in $(seq "$RUNS"); do
    one "$work/a" "${a_args[@]}"
    one "$work/b" --kernel "$KERNEL_B"
done
read -r amed amin amax < <(stats < "$work/a")
read -r bmed bmin bmax < <(stats < "$work/b")
echo "A ($a_name): median ${amed}s (min ${amin}s, max ${amax}s) over $RUNS runs"
echo "B ($KERNEL_B): median ${bmed}s (min ${bmin}s, max ${bmax}s) over $RUNS runs"
echo "A/B: $(calc "$amed / $bmed")x"
