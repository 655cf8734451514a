#!/bin/bash
# Benchmarks `mvm run -- true` (start to exit, median and spread) and
# stdout throughput (`mvm run -- head -c 200M /dev/zero | wc -c`).
# Usage: sudo bench/boot.sh [RUNS] [MVM_BINARY]     (defaults: 10, build/mvm)
# Run it on an otherwise idle machine; it prints medians and ratios.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS=${1:-10}
MVM=$(realpath "${2:-$(dirname "$0")/../build/mvm}")
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }
[ -x "$MVM" ] || { echo "no mvm binary at $MVM" >&2; exit 1; }
work=$(mktemp -d /tmp/mvm-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cd "$work"

calc() { awk "BEGIN { printf \"%.4f\n\", $1 }"; }

"$MVM" run -q -- true # warm the caches (vmlinux, initramfs, TSC)
for _ in $(seq "$RUNS"); do
    t0=$(now); "$MVM" run -q -- true; t1=$(now)
    calc "$t1 - $t0"
done > "$work/boot"
read -r med min max < <(stats < "$work/boot")
echo "mvm run -- true: median ${med}s (min ${min}s, max ${max}s) over $RUNS runs; target 2.0s: $(calc "$med / 2.0")x of target"

for _ in 1 2 3; do
    t0=$(now); n=$("$MVM" run -q -- head -c 200M /dev/zero | wc -c); t1=$(now)
    [ "$n" = 209715200 ] || { echo "throughput run lost data: $n bytes" >&2; exit 1; }
    calc "209.7152 / ($t1 - $t0 - $med)"
done > "$work/tput"
read -r tmed tmin tmax < <(stats < "$work/tput")
echo "stdout relay: median ${tmed} MB/s (min ${tmin}, max ${tmax}; boot time subtracted); target 50 MB/s: $(calc "$tmed / 50")x of target"
