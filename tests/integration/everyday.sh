#!/bin/bash
# Everyday use: names, mvm ps, mvm stop, --result and --console-log, with
# two sessions at once, one the test user's and one root's.
. "$(dirname "$0")/lib.sh"

ensure_test_user
chown "$TEST_USER:" "$PROJECT"
as_user() { SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER run_mvm "$@"; }
user_mvm() { SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER "$REAL_MVM" "$@"; }
runs_before

# --result and --console-log: written as the user, for CI.
as_user -q --result "$PROJECT/result.json" --console-log "$PROJECT/console.log" -- sh -c 'exit 7'
assert_eq 7 "$RC" "the command's status is mvm's"
fields=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["exit_status"], r["reason"], r["accel"] in ("kvm", "tcg"), r["boot_ms"] > 0, r["command_ms"] >= 0, bool(r["id"]), bool(r["name"]), r["audit"])
' "$PROJECT/result.json" 2>&1)
assert_eq "7 the command exited True True True True True {'mode': 'warn', 'findings': [], 'more': 0}" "$fields" "--result holds status, reason, accelerator, durations, id, name and an empty audit"
assert_eq "$TEST_USER" "$(stat -c %U "$PROJECT/result.json")" "--result is written as the user"
[ -s "$PROJECT/console.log" ] && ok "--console-log keeps the guest's console" || fail "--console-log is empty or missing"

# Two sessions at once: the user's (named) and root's.
start_bg() { # file name mvm-args...
    local out=$1
    shift
    (cd "$PROJECT" && exec "$@") > "$out" 2>&1 &
}
start_bg "$WORK/a.out" env SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER "$MVM" run -q \
    --name mvm-it-a -- sh -c 'echo up; exec sleep 120'
A=$!
defer "kill $A 2> /dev/null"
start_bg "$WORK/r.out" "$MVM" run -q --no-cwd --name mvm-it-root -- sh -c 'echo up; exec sleep 120'
R=$!
defer "kill $R 2> /dev/null"
for _ in $(seq 900); do
    grep -q up "$WORK/a.out" && grep -q up "$WORK/r.out" && break
    sleep 0.1
done
grep -q up "$WORK/a.out" && grep -q up "$WORK/r.out" || die "the sessions did not start: $(cat "$WORK/a.out" "$WORK/r.out")"

ps_user=$(runuser -u "$TEST_USER" -- "$REAL_MVM" ps)
assert_contains "$ps_user" "mvm-it-a" "mvm ps, run by the user without sudo, lists their session"
assert_contains "$ps_user" "sh -c echo up" "mvm ps shows the command"
assert_not_contains "$ps_user" "mvm-it-root" "the user does not see root's session"
assert_not_contains "$(user_mvm ps)" "mvm-it-root" "nor through sudo"
ps_all=$("$REAL_MVM" ps)
assert_contains "$ps_all" "mvm-it-a" "root sees the user's session"
assert_contains "$ps_all" "mvm-it-root" "root sees its own"
json=$("$REAL_MVM" ps --json | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["name"] == "mvm-it-a":
        print(s["user"], s["accel"] in ("kvm", "tcg"), s["net"], s["rss_bytes"] > 0, s["uptime_s"] >= 0, len(s["id"]))
' 2>&1)
assert_eq "$TEST_USER True none True True 12" "$json" "mvm ps --json: user, accelerator, network, memory, uptime, id"

# A name in use is refused; the user cannot stop root's session.
as_user --name mvm-it-a -- true
assert_eq 125 "$RC" "a second session with a running session's name is refused"
assert_contains "$ERR" "a session of that name is running" "the refusal says why"
out=$(user_mvm stop mvm-it-root 2>&1)
assert_eq 125 "$?" "the user may not stop root's session"
assert_contains "$out" "not yours" "the refusal says so"
kill -0 "$R" 2> /dev/null && ok "root's session still runs" || fail "root's session ended"

# mvm stop: SIGTERM to the command, the run exits 143, nothing left.
out=$(user_mvm stop mvm-it-a 2>&1)
assert_eq 0 "$?" "the user stops their own session"
assert_contains "$out" "stopped mvm-it-a" "mvm stop says so"
wait "$A"
assert_eq 143 "$?" "the stopped session's mvm run exits 143"
kill -0 "$R" 2> /dev/null && ok "the other session keeps running" || fail "the other session ended too"
assert_not_contains "$("$REAL_MVM" ps)" "mvm-it-a" "mvm ps no longer lists it"
out=$("$REAL_MVM" stop --force mvm-it-root 2>&1)
assert_eq 0 "$?" "root stops its session with --force"
wait "$R"
assert_eq 143 "$?" "--force: mvm run exits 143"
out=$("$REAL_MVM" stop mvm-it-root 2>&1)
assert_contains "$out" "no running session 'mvm-it-root'" "stopping a session that is gone says so"
assert_no_leftovers "after mvm stop"
