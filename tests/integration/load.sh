#!/bin/bash
# Boots under load (issue 14): with one busy loop per host core every
# boot still succeeds -- under TCG a starved vCPU once hung the microvm's
# TSC calibration -- and 8 sessions started at once all complete, each
# with its own output.  mvm is called directly, not through run_mvm, so
# a boot that hangs is a failure here rather than a retry.
. "$(dirname "$0")/lib.sh"

runs_before
run_mvm -- echo idle-ok
assert_eq 0 "$RC" "an idle boot succeeds"
assert_eq idle-ok "$OUT" "and prints its output"

busy=()
stop_busy() { # once: a reaped pid may be reused
    [ ${#busy[@]} = 0 ] && return
    kill "${busy[@]}" 2> /dev/null
    wait "${busy[@]}" 2> /dev/null
    busy=()
}
defer stop_busy
for _ in $(seq "$(nproc)"); do
    sh -c 'while :; do :; done' &
    busy+=($!)
done
for i in 1 2 3; do
    out=$(cd "$PROJECT" && timeout 180 "$MVM" run -q -- echo "busy-$i" 2> "$WORK/err")
    assert_eq "0 busy-$i" "$? $out" "boot $i with $(nproc) busy loops on $(nproc) cores succeeds"
done
stop_busy

pids=()
for i in $(seq 8); do
    (cd "$PROJECT" && timeout 300 "$MVM" run -q -- sh -c "echo session-$i") \
        > "$WORK/c$i.out" 2> "$WORK/c$i.err" &
    pids+=($!)
done
for i in $(seq 8); do
    wait "${pids[$((i - 1))]}"
    rc=$?
    assert_eq "0 session-$i" "$rc $(cat "$WORK/c$i.out")" "session $i of 8 started at once completes"
    [ "$rc" = 0 ] || cat "$WORK/c$i.err" >&2
done
assert_no_leftovers "after the loaded runs"
