#!/bin/bash
# mvm run --detach and mvm attach: the session outlives its terminal; one
# client at a time attaches to its command, ~d (or a hangup) detaches and
# leaves it running, and attaching again shows it still running.
. "$(dirname "$0")/lib.sh"

ensure_test_user
chown "$TEST_USER:" "$PROJECT"
plain_user() { runuser -u "$TEST_USER" -- "$REAL_MVM" "$@"; } # no sudo at all
as_user_run() { (cd "$PROJECT" && SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER "$MVM" run "$@"); }
# Attached for $1 s, then ~d; output into $2, stderr into $2.err, status $RC.
attach_for() {
    (sleep "$1"; printf '~d') | plain_user attach mvm-it-d > "$2" 2> "$2.err"
    RC=$?
}
ticks() { tr '\r' '\n' < "$1" | sed -n 's/^tick \([0-9]*\)$/\1/p'; }

main='i=0; while [ ! -e stop-main ]; do i=$((i+1)); echo "tick $i"; sleep 0.3; done; echo main-done; exit 7'
t0=$(date +%s)
out=$(as_user_run -q -t --detach --name mvm-it-d -- sh -c "$main" < /dev/null 2> "$WORK/d.err")
rc=$?
defer "'$REAL_MVM' stop --force mvm-it-d > /dev/null 2>&1"
assert_eq "0 mvm-it-d" "$rc $out" "mvm run --detach prints the session's name and exits 0"
[ $(($(date +%s) - t0)) -lt 30 ] && ok "and returns at once" || fail "--detach took $(($(date +%s) - t0)) s"
assert_contains "$(plain_user ps)" "mvm-it-d" "the detached session runs (mvm ps)"
for _ in $(seq 100); do
    plain_user exec mvm-it-d -- true < /dev/null > /dev/null 2>&1 && break
    sleep 0.2
done

# A second session of that name fails in the foreground, leaving nothing.
out=$(as_user_run -q --detach --name mvm-it-d -- true < /dev/null 2>&1)
assert_eq 125 "$?" "a --detach session that cannot start: mvm run fails"
assert_contains "$out" "a session of that name is running" "with its error on the terminal"

attach_for 3 "$WORK/a1"
assert_eq 0 "$RC" "mvm attach exits 0 after ~d"
assert_contains "$(cat "$WORK/a1.err")" "detached from session 'mvm-it-d'" "and says so"
last1=$(ticks "$WORK/a1" | tail -1)
[ -n "$last1" ] && ok "attached, the command's output shows (tick $last1)" || fail "no output attached: $(cat "$WORK/a1")"
sleep 2
assert_contains "$(plain_user ps)" "mvm-it-d" "after ~d the session still runs"
attach_for 2 "$WORK/a2"
first2=$(ticks "$WORK/a2" | head -1)
[ -n "$first2" ] && [ -n "$last1" ] && [ "$first2" -gt $((last1 + 3)) ] &&
    ok "attached again: the program ran on meanwhile (tick $last1, then $first2)" ||
    fail "after detaching: ticks [$last1] then [$first2]"

# One client at a time.
(sleep 12; printf '~d') | plain_user attach mvm-it-d > "$WORK/a3" 2>&1 &
A3=$!
for _ in $(seq 50); do [ -n "$(ticks "$WORK/a3")" ] && break; sleep 0.2; done
out=$(plain_user attach mvm-it-d < /dev/null 2>&1)
assert_eq 125 "$?" "a second client may not attach"
assert_contains "$out" "a client is attached to this session already" "and is told why"
# A hangup (closed terminal, dropped ssh) detaches, nothing more.
for p in $(pgrep -f -- "attach mvm-it-d"); do
    [ "$(cat "/proc/$p/comm" 2> /dev/null)" = mvm ] && kill -HUP "$p"
done
wait "$A3"
assert_eq 129 "$?" "SIGHUP ends mvm attach"
assert_contains "$(plain_user ps)" "mvm-it-d" "and the session runs on"
attach_for 1 "$WORK/a4"
[ -n "$(ticks "$WORK/a4")" ] && ok "the next client attaches at once" || fail "no attach after the hangup: $(cat "$WORK/a4.err")"

# Attached when the command ends: its status is mvm attach's.
(sleep 60) | plain_user attach mvm-it-d > "$WORK/a5" 2>&1 &
A5=$!
for _ in $(seq 50); do [ -n "$(ticks "$WORK/a5")" ] && break; sleep 0.2; done
plain_user exec mvm-it-d -- touch stop-main < /dev/null
wait "$A5"
assert_eq 7 "$?" "mvm attach exits with the command's status when it ends"
assert_contains "$(cat "$WORK/a5")" "main-done" "after its last output"
for _ in $(seq 50); do
    [ -z "$(plain_user ps | grep mvm-it-d)" ] && break
    sleep 0.2
done
assert_not_contains "$(plain_user ps)" "mvm-it-d" "the session is gone"
out=$(plain_user attach mvm-it-d < /dev/null 2>&1)
assert_contains "$out" "no running session 'mvm-it-d'" "attaching to it says so"
assert_no_leftovers "after a detached session"
