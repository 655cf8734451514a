#!/bin/bash
# Disk limits of read-write shares: --share-limit pauses the VM when the
# guest has added SIZE (or SIZE/4K inodes), --min-free keeps a floor on
# the filesystem; the host never sees more than the limit plus the
# documented overshoot (32 MiB, docs/architecture.md), mvm says so, and
# from a terminal r resumes once there is room.  The share lives on a
# tmpfs of the test's own, so that no other writer on the machine counts.
. "$(dirname "$0")/lib.sh"
command -v tmux > /dev/null || die "tmux is not installed (contrib/install-deps.sh installs it)"
command -v setsid > /dev/null || die "setsid is not installed (util-linux)"

MIB=$((1024 * 1024))
OVERSHOOT=$((32 * MIB))
FS=$WORK/fs
mkdir -p "$FS"
mount -t tmpfs -o size=256M,nr_inodes=100000,mode=755 mvm-it-limits "$FS" || skip "cannot mount a tmpfs here"
defer "umount -l '$FS'"
ensure_test_user
PROJECT=$FS/project
mkdir -p "$PROJECT"
chown "$TEST_USER:" "$PROJECT"

used_bytes() { stat -f -c '%b %f %S' "$FS" | awk '{print ($1 - $2) * $3}'; }
avail_bytes() { stat -f -c '%a %S' "$FS" | awk '{print $1 * $2}'; }
used_inodes() { stat -f -c '%c %d' "$FS" | awk '{print $1 - $2}'; }
# Without a controlling terminal (setsid), as the test user through sudo.
run_notty() {
    (cd "$PROJECT" && SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER \
        setsid -w "$MVM" run --timeout 300 "$@") < /dev/null > "$WORK/out" 2> "$WORK/err"
    RC=$?
    OUT=$(tr -d "\\0" < "$WORK/out")
    ERR=$(cat "$WORK/err")
}
assert_within() { # value low high what: low < value <= high
    if [ "$1" -gt "$2" ] && [ "$1" -le "$3" ]; then ok "$4 ($1)"; else fail "$4: $1 is not in ($2, $3]"; fi
}
clean_project() { rm -rf "${PROJECT:?}"/* "${PROJECT:?}"/.[!.]* 2> /dev/null || true; }
WRITE_FOREVER='dd if=/dev/zero of=big bs=1M 2> /dev/null; echo "dd ended: $?"; sleep 300'

# Bad values: one line naming the option, nothing booted or left.
run_notty --share-limit 5X -- true
assert_eq 125 "$RC" "a bad --share-limit size fails"
assert_contains "$ERR" "bad --share-limit '5X'" "the error names --share-limit and the value"
run_notty --min-free 150% -- true
assert_eq 125 "$RC" "a percentage over 100 fails"
assert_contains "$ERR" "percentage from 0% to 99%" "the error says which percentages are fine"
run_notty --min-free lots -- true
assert_contains "$ERR" "bad --min-free 'lots'" "a --min-free that is neither size nor percentage fails"
assert_no_leftovers "bad disk limits"

# Positive control: under the limit, the command runs and its file stays.
# fallocate would allocate any amount in one request: without a limit it
# works (the control), with one it is refused.
run_notty --min-free 0 -- sh -c 'fallocate -l 8M fa; echo "fallocate=$?"'
assert_contains "$OUT" "fallocate=0" "without disk limits the guest may fallocate"
assert_eq $((8 * 1024)) "$(du -k "$PROJECT/fa" 2> /dev/null | cut -f1)" "... and the host has the 8 MiB allocated"
clean_project
before=$(used_bytes)
# A sparse file costs the host nothing; xattrs are not served at all.
run_notty --share-limit 64M -- sh -c 'dd if=/dev/zero of=some bs=1M count=32 2> /dev/null && echo wrote; fallocate -l 200M fa; echo "fallocate=$?"; truncate -s 100G sparse && echo sparse-made; python3 -c "import os; os.setxattr(\"some\", \"user.x\", b\"x\" * 60000)" 2> /dev/null; echo "xattr=$?"'
grown=$(($(used_bytes) - before))
assert_eq 0 "$RC" "writing 32 MiB under --share-limit 64M succeeds"
assert_contains "$OUT" "wrote" "the command ran to its end"
assert_eq $((32 * MIB)) "$(stat -c %s "$PROJECT/some" 2> /dev/null)" "the 32 MiB file is on the host"
assert_contains "$OUT" "fallocate=1" "fallocate in a limited share fails in the guest"
assert_contains "$OUT" "sparse-made" "a sparse 100G file can be made"
assert_contains "$OUT" "xattr=1" "setting an xattr in a share fails"
[ "$grown" -lt $((40 * MIB)) ] && ok "fallocate and the sparse file allocated nothing on the host" || fail "the host's filesystem grew by $grown bytes"
clean_project

# A guest that never stops: mvm must stop it (no terminal: 122) and say
# why; MEASURE (a function) after it is AFTER, its growth GROWN.
never_ending() { # measure what needle mvm-args...
    local measure=$1 what=$2 needle=$3 before
    shift 3
    before=$($measure)
    run_notty "$@"
    AFTER=$($measure)
    GROWN=$((AFTER - before))
    assert_eq 122 "$RC" "$what: stopped with status 122"
    assert_contains "$ERR" "$needle" "$what: mvm says which limit"
    assert_contains "$ERR" "no terminal to ask" "$what: mvm says why it did not wait for a key"
    clean_project
}
never_ending used_bytes "writing without end" "over --share-limit 64.0 MiB" --share-limit 64M -- sh -c "$WRITE_FOREVER"
assert_not_contains "$OUT" "dd ended" "the guest never saw a full disk"
assert_within "$GROWN" $((64 * MIB)) $((64 * MIB + OVERSHOOT)) "the host's filesystem grew by the limit and at most 32 MiB more (bytes)"

# Many small (empty) files: inodes count, one per 4 KiB of the limit.
never_ending used_inodes "files without end" "more files and directories, over the 512" --share-limit 2M -- \
    sh -c 'i=0; while : > "f$i"; do i=$((i + 1)); done; echo "stopped at $i"; sleep 300'
assert_within "$GROWN" 512 $((512 + OVERSHOOT / 4096)) "the host has the limit's 512 inodes and at most the overshoot more (inodes)"

# The floor on a small filesystem: 256 MiB, --min-free 200M.
never_ending avail_bytes "filling the filesystem" "under --min-free 200.0 MiB" --min-free 200M -- sh -c "$WRITE_FOREVER"
assert_within "$AFTER" $((200 * MIB - OVERSHOOT)) $((200 * MIB)) "the floor held within the overshoot (bytes free)"
# ... and a filesystem already below the floor is refused before boot.
run_notty --min-free 300M -- true
assert_eq 125 "$RC" "a share on a filesystem below --min-free is refused"
assert_contains "$ERR" "under --min-free 300.0 MiB" "the refusal names the floor"
assert_contains "$ERR" "lower --min-free" "the refusal says what to do"
assert_no_leftovers "disk limits without a terminal"

# From a terminal: r is refused while still over, accepted once the host
# freed space (a 32 MiB ballast file), and the command then completes.
dd if=/dev/zero of="$PROJECT/ballast" bs=1M count=32 2> /dev/null
tm() { tmux -S "$sock" "$@"; }
# mvm in a tmux server of its own (a fresh socket: a server still going
# away would take the new session with it), stdin, stdout and stderr its
# terminal, writing 24 MiB under --share-limit 16M; its status goes to
# $WORK/rc.
tmux_session() { # name
    rm -f "$WORK/rc"
    sock="$WORK/tmux-$1.sock"
    defer "tmux -S '$sock' kill-server 2> /dev/null"
    tm new-session -d -x 200 -y 40 -s t "cd '$PROJECT' && SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER '$MVM' run --timeout 300 --share-limit 16M -- sh -c 'dd if=/dev/zero of=data bs=1M count=24 2> /dev/null; echo wrote-all'; echo \"rc=\$?\" > '$WORK/rc'; sleep 300"
}
wait_for() { # text timeout
    for _ in $(seq $(($2 * 10))); do
        tm capture-pane -t t -p -S -100 | grep -q -- "$1" && return 0
        sleep 0.1
    done
    return 1
}
wait_rc() { for _ in $(seq 600); do [ -s "$WORK/rc" ] && break; sleep 0.1; done; cat "$WORK/rc" 2> /dev/null; }
tmux_session resume
if wait_for 'press r to resume' 120; then
    ok "mvm paused the VM and asks on the terminal"
    tm send-keys -t t r
    wait_for 'still paused' 10 && ok "r is refused while the limit is still crossed" || fail "no 'still paused' after r: $(tm capture-pane -t t -p)"
    rm -f "$PROJECT/ballast"
    tm send-keys -t t r
    wait_for 'resumed the VM' 10 && ok "r resumes once there is room" || fail "not resumed: $(tm capture-pane -t t -p)"
    assert_eq "rc=0" "$(wait_rc)" "the resumed command completes with status 0"
    assert_contains "$(tm capture-pane -t t -p -S -100)" "wrote-all" "the guest's output after the pause arrives"
else
    fail "no pause prompt on the terminal: $(tm capture-pane -t t -p)"
fi
# s stops the session: 122, and the terminal says why.
tm kill-server 2> /dev/null
clean_project
tmux_session stop
if wait_for 'press r to resume' 120; then
    tm send-keys -t t s
    assert_eq "rc=122" "$(wait_rc)" "s at the pause stops the session with status 122"
    assert_contains "$(tm capture-pane -t t -p -S -100)" "stopped from the terminal" "mvm says it was stopped from the terminal"
else
    fail "no pause prompt on the terminal: $(tm capture-pane -t t -p)"
fi
tm kill-server 2> /dev/null
assert_no_leftovers "disk limits with a terminal"
