#!/bin/bash
# mvm exec: more commands in a running session, two sessions at once (the
# test user's and root's).  Each exec'd command has its own output and
# status while the main command runs on; only a session's user (or root)
# may exec into it, checked by mvm exec and again by the session's
# supervisor (SO_PEERCRED).
. "$(dirname "$0")/lib.sh"

ensure_test_user
chown "$TEST_USER:" "$PROJECT"
user_mvm() { SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER "$REAL_MVM" "$@"; }
plain_user() { runuser -u "$TEST_USER" -- "$REAL_MVM" "$@"; } # no sudo at all
# mvm exec ARGS... as given; stdout, stderr and the status into OUT, ERR, RC.
ex() {
    "$@" > "$WORK/xo" 2> "$WORK/xe" < /dev/null
    RC=$?
    OUT=$(cat "$WORK/xo")
    ERR=$(cat "$WORK/xe")
}
command -v python3 > /dev/null || skip "python3 is needed to speak to the socket directly"

# Input errors need no session.
ex "$REAL_MVM" exec
assert_eq 125 "$RC" "mvm exec without a session fails"
assert_contains "$ERR" "which session? give its ID or NAME" "and says what is missing"
ex "$REAL_MVM" exec --bogus x -- true
assert_contains "$ERR" "unknown option '--bogus' (see mvm exec --help)" "an unknown option is named"
ex "$REAL_MVM" exec mvm-it-none -- true
assert_eq 125 "$RC" "mvm exec into no session fails"
assert_contains "$ERR" "no running session 'mvm-it-none' (see mvm ps)" "and says so"

# The user's session waits for a file that an exec'd command makes; then
# its command prints and exits 5.  Root's just sleeps.
main='echo up; while [ ! -e stop-main ]; do sleep 0.2; done; echo main-done; exit 5'
(cd "$PROJECT" && exec env SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER \
    "$MVM" run -q -T --name mvm-it-x -- sh -c "$main") > "$WORK/a.out" 2> "$WORK/a.err" &
A=$!
defer "kill $A 2> /dev/null; wait $A 2> /dev/null"
(cd "$PROJECT" && exec "$MVM" run -q -T --no-cwd --name mvm-it-xroot -- sh -c 'echo up; exec sleep 300') \
    > "$WORK/r.out" 2>&1 &
R=$!
defer "kill $R 2> /dev/null; wait $R 2> /dev/null"
for _ in $(seq 900); do
    grep -q up "$WORK/a.out" && grep -q up "$WORK/r.out" && break
    sleep 0.1
done
grep -q up "$WORK/a.out" && grep -q up "$WORK/r.out" ||
    die "the sessions did not start: $(cat "$WORK/a.out" "$WORK/a.err" "$WORK/r.out")"

# Output and status are the exec'd command's own.
ex user_mvm exec mvm-it-x -T -- sh -c 'echo exec-out; echo exec-err >&2; exit 3'
assert_eq 3 "$RC" "mvm exec exits with the exec'd command's status"
assert_eq "exec-out" "$OUT" "its stdout is mvm exec's"
assert_contains "$ERR" "exec-err" "its stderr is mvm exec's stderr"
assert_not_contains "$(cat "$WORK/a.out")" "exec-out" "nothing of it reaches the main command's output"
kill -0 "$A" 2> /dev/null && ok "the main command keeps running" || fail "the main command ended"

ex plain_user exec mvm-it-x -- sh -c 'id -u; pwd'
assert_eq "$TEST_UID
$PROJECT" "$OUT" "without sudo: the session's user, in its working directory"
ex plain_user exec mvm-it-x --root -- id -u
assert_eq "0" "$OUT" "--root: guest root"
ex plain_user exec --env MVM_IT=x1 mvm-it-x -- sh -c 'echo "$MVM_IT"'
assert_eq "x1" "$OUT" "--env reaches the command"
OUT=$(printf 'line1\nline2\n' | plain_user exec mvm-it-x -- sh -c 'cat; echo stdin-done')
assert_eq "line1
line2
stdin-done" "$OUT" "stdin reaches the command, and its EOF"
ex plain_user exec mvm-it-x -- no-such-command-mvm
assert_eq 127 "$RC" "a command the guest lacks: 127"
assert_contains "$ERR" "no-such-command-mvm: command not found in the guest" "and the guest says why"
out=$(script -qec "'$REAL_MVM' exec mvm-it-x -- sh -c 'tty; test -t 0 && echo stdin-tty'" /dev/null < /dev/null)
assert_contains "$out" "/dev/pts/" "from a terminal: a pty in the guest"
assert_contains "$out" "stdin-tty" "with stdin on it"

# Two exec'd commands at once, each with its own status.
plain_user exec mvm-it-x -- sh -c 'sleep 1; exit 4' < /dev/null > /dev/null 2>&1 &
E1=$!
plain_user exec mvm-it-x -- sh -c 'exit 6' < /dev/null > /dev/null 2>&1
rc2=$?
wait "$E1"
assert_eq "4 6" "$? $rc2" "two exec'd commands at once keep their own statuses"

# Another user's session: refused by mvm exec, after the same exec into
# one's own just worked.
ex plain_user exec mvm-it-x -- true
assert_eq 0 "$RC" "positive control: the user execs into their own session"
ex plain_user exec mvm-it-xroot -- true
assert_eq 125 "$RC" "the user may not exec into root's session"
assert_contains "$ERR" "is not yours; only its user or root may exec into it" "the refusal says why"
ex user_mvm exec mvm-it-xroot -- true
assert_eq 125 "$RC" "nor through sudo"
assert_not_contains "$(plain_user ps)" "mvm-it-xroot" "the user does not see root's session"
ex user_mvm stop mvm-it-xroot
assert_eq 125 "$RC" "nor stop it"
ex "$REAL_MVM" exec mvm-it-x -- id -u
assert_eq "$TEST_UID" "$OUT" "root may exec into the user's session (as its user)"
ex plain_user attach mvm-it-xroot
assert_eq 125 "$RC" "nor attach to it"
assert_contains "$ERR" "is not yours" "the refusal says why"
ex plain_user attach mvm-it-x
assert_eq 125 "$RC" "no attach to a session that has its terminal"
assert_contains "$ERR" "not started with mvm run --detach" "the refusal says why"

# The supervisor checks the peer itself: a socket opened to everyone
# still refuses another user's frames, and takes the owner's.
rid=$("$REAL_MVM" ps --json | python3 -c 'import json,sys; print([s["id"] for s in json.load(sys.stdin) if s["name"] == "mvm-it-xroot"][0])')
sock=/run/mvm/.exec/$rid.sock
assert_eq "root 600" "$(stat -c '%U %a' "$sock")" "root's session socket is root's, 0600"
uid_sock=$(ls /run/mvm/.exec/ | wc -l)
[ "$uid_sock" -ge 2 ] && ok "each session has its socket" || fail "sockets: $(ls -l /run/mvm/.exec/)"
cat > "$WORK/raw.py" << 'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
def frame(t, p): return struct.pack("<BBHI", t, 0, 1, len(p)) + p
try:
    s.sendall(frame(1, b"id") + frame(3, b"\0\x18\0\x50\0") + frame(8, struct.pack("<I", 0)))
except BrokenPipeError: # refused before it read them
    pass
s.settimeout(20)
data = b""
while True:
    try:
        d = s.recv(65536)
    except ConnectionResetError: # it closed with our frames unread
        break
    if not d: break
    data += d
print(repr(data))
PY
chmod 644 "$WORK/raw.py"
out=$(python3 "$WORK/raw.py" "$sock" 2>&1)
assert_contains "$out" "uid=0(root)" "positive control: root speaks the protocol to the socket directly"
chmod 666 "$sock"
out=$(runuser -u "$TEST_USER" -- python3 "$WORK/raw.py" "$sock" 2>&1)
assert_contains "$out" "not yours" "with the socket opened to all, the supervisor refuses another user"
assert_not_contains "$out" "uid=" "and runs nothing for them"
chmod 600 "$sock"

# An exec'd command dies with its mvm exec, and with the session.
plain_user exec mvm-it-x -- sleep 301 < /dev/null > /dev/null 2>&1 &
E2=$!
sleep 3
ex plain_user exec mvm-it-x -- sh -c 'ps -eo args | grep -c "^sleep 301"'
assert_eq 1 "$OUT" "positive control: the exec'd command runs"
# $E2 is the shell running runuser: kill mvm exec itself.
for p in $(pgrep -f -- "exec mvm-it-x -- sleep 301"); do
    [ "$(cat "/proc/$p/comm" 2> /dev/null)" = mvm ] && kill -9 "$p"
done
wait "$E2" 2> /dev/null
for _ in $(seq 50); do
    ex plain_user exec mvm-it-x -- sh -c 'ps -eo args | grep -c "^sleep 301"'
    [ "$OUT" = 0 ] && break
    sleep 0.2
done
assert_eq 0 "$OUT" "killing mvm exec kills its command"
plain_user exec mvm-it-x -- sleep 302 < /dev/null > /dev/null 2> "$WORK/e3.err" &
E3=$!
sleep 2
ex plain_user exec mvm-it-x -- touch stop-main
assert_eq 0 "$RC" "an exec'd command ends the main one's wait"
wait "$A"
assert_eq 5 "$?" "the session ends with the main command's status"
assert_contains "$(cat "$WORK/a.out")" "main-done" "the main command's output is its own"
wait "$E3"
assert_eq 137 "$?" "a command still running when the session ends: mvm exec exits 137"
assert_contains "$(cat "$WORK/e3.err")" "ended before the command did" "and says why"
ex plain_user exec mvm-it-x -- true
assert_contains "$ERR" "no running session 'mvm-it-x'" "no exec into an ended session"

"$REAL_MVM" stop --force mvm-it-xroot > /dev/null
wait "$R"
assert_eq 143 "$?" "root's session, stopped, exits 143"
[ -z "$(ls /run/mvm/.exec/ 2> /dev/null)" ] && ok "no socket left" || fail "left in /run/mvm/.exec: $(ls /run/mvm/.exec/)"
assert_no_leftovers "after mvm exec"
