#!/bin/bash
# Boots under load: `mvm run -- true` on an idle machine, then with one
# busy loop per host core (every boot must succeed: under TCG a starved
# vCPU once hung the microvm's TSC calibration), then 8 sessions started
# at once (all must succeed; how their latency grows next to one).
# Usage: sudo [MVM_KERNEL=K] bench/load.sh [RUNS] [MVM_BINARY] [SESSIONS]
# (defaults: 5, build/mvm, 8; MVM_KERNEL: --kernel K, e.g. the kernel
# made for mvm).  Prints medians and ratios.
set -euo pipefail
RUNS=${1:-5}
MVM=$(realpath "${2:-$(dirname "$0")/../build/mvm}")
SESSIONS=${3:-8}
. "$(dirname "$0")/lib.sh"
bench_setup "$MVM"
kernel=()
[ -z "${MVM_KERNEL:-}" ] || kernel=(--kernel "$(realpath "$MVM_KERNEL")")
work=$(mktemp -d /tmp/mvm-bench-load.XXXXXX)
busy=()
stop_busy() {
    for p in "${busy[@]}"; do kill "$p" 2> /dev/null || true; done
    for p in "${busy[@]}"; do wait "$p" 2> /dev/null || true; done
    busy=()
}
trap 'stop_busy; rm -rf "$work"' EXIT
cd "$work"

# one run: prints its wall time, or FAIL and the status
timed_run() {
    local t0 rc=0
    t0=$(now)
    "$MVM" run -q "${kernel[@]}" -- true > /dev/null 2> "$work/err.$BASHPID" || rc=$?
    if [ "$rc" = 0 ]; then since "$t0"; else echo "FAIL $rc $(head -c 300 "$work/err.$BASHPID")"; fi
}
report() { # NAME FILE
    local fails
    fails=$(grep -c FAIL "$2" || true)
    grep -v FAIL "$2" | stats > "$2.s" || true
    read -r med min max < "$2.s" || med=-
    echo "$1: median ${med}s (min ${min:-}, max ${max:-}); $((RUNS - fails))/$RUNS succeeded"
    [ "$fails" = 0 ] || { grep FAIL "$2" >&2; status=1; }
}
status=0

"$MVM" run -q "${kernel[@]}" -- true # warm the caches
for _ in $(seq "$RUNS"); do timed_run; done > idle
report "idle" idle
idle_med=$(cut -d' ' -f1 idle.s)

for _ in $(seq "$(nproc)"); do
    sh -c 'while :; do :; done' &
    busy+=($!)
done
for _ in $(seq "$RUNS"); do timed_run; done > busy
stop_busy
report "with $(nproc) busy loops" busy
busy_med=$(cut -d' ' -f1 busy.s)
echo "  busy/idle: $(awk -v b="$busy_med" -v i="$idle_med" 'BEGIN {printf "%.2f", b / i}')x"

: > many
t0=$(now)
for _ in $(seq "$SESSIONS"); do timed_run >> many & done
wait
wall=$(since "$t0")
fails=$(grep -c FAIL many || true)
read -r med min max < <(grep -v FAIL many | stats)
echo "$SESSIONS sessions at once: all done in ${wall}s; each: median ${med}s (min ${min}, max ${max}); $((SESSIONS - fails))/$SESSIONS succeeded"
echo "  median/idle: $(awk -v m="$med" -v i="$idle_med" 'BEGIN {printf "%.2f", m / i}')x, wall/($SESSIONS x idle): $(awk -v w="$wall" -v i="$idle_med" -v n="$SESSIONS" 'BEGIN {printf "%.2f", w / (n * i)}')"
[ "$fails" = 0 ] || { grep FAIL many >&2; status=1; }
exit "$status"
