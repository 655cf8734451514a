#!/bin/bash
# Teardown on every path: signals to mvm, --timeout, a QEMU crash, a guest
# kernel panic, and kill -9 of mvm itself (the helpers die with it; the
# session directory stays until mvm cleanup or the next run).
. "$(dirname "$0")/lib.sh"

# Starts `mvm run -- sh -c 'echo up; sleep 1000'` in the background and
# waits until the command runs.  Sets PID.
# A boot that never reaches mvm-init (the rare TCG hang run_mvm also
# retries) boots once more.
start_session() {
    local try
    for try in 1 2; do
        # Empty it first: the redirection below happens in the child, and
        # the loop could otherwise read the last session's "up".
        : > "$WORK/bg.out"
        (cd "$PROJECT" && exec "$MVM" run -q "$@" -- sh -c 'echo up; exec sleep 1000') \
            > "$WORK/bg.out" 2> "$WORK/bg.err" &
        PID=$!
        defer "kill -KILL $PID 2> /dev/null" # a test that fails midway still ends it
        for _ in $(seq 900); do
            grep -q up "$WORK/bg.out" 2> /dev/null && return 0
            kill -0 "$PID" 2> /dev/null || break
            sleep 0.1
        done
        wait "$PID" 2> /dev/null
        [ "$try" = 1 ] && grep -q "did not start mvm-init within" "$WORK/bg.err" || break
        echo "note: the guest did not reach mvm-init ($(cat "$WORK/bg.err")); booting it once more" >&2
    done
    die "the session never started: $(cat "$WORK/bg.err")"
}
session_qemu() { pgrep -P "$1" -f qemu-system-x86_64; }

for sig in TERM HUP INT; do
    start_session
    kill -"$sig" "$PID"
    [ "$sig" = INT ] && { sleep 1; kill -INT "$PID" 2> /dev/null; } # the first Ctrl-C goes to the command
    wait "$PID"
    rc=$?
    case $sig in TERM) want=143 ;; HUP) want=129 ;; INT) want=130 ;; esac
    # SIGINT: the command dies of the forwarded SIGINT (130) or mvm of the second (130).
    assert_eq "$want" "$rc" "SIG$sig: exit status 128+N"
    assert_no_leftovers "after SIG$sig"
done

start_session --timeout 8s
wait "$PID"
assert_eq 124 "$?" "--timeout expiry exits 124"
assert_contains "$(cat "$WORK/bg.err")" "timeout" "--timeout says what happened"
assert_no_leftovers "after --timeout"

# QEMU crashes: mvm notices, says so, cleans up.
start_session
qemu=$(session_qemu "$PID")
[ -n "$qemu" ] || die "no QEMU child of mvm $PID"
kill -KILL "$qemu"
wait "$PID"
assert_eq 125 "$?" "a QEMU crash is mvm's failure (125)"
assert_contains "$(cat "$WORK/bg.err")" "VM stopped" "a QEMU crash is reported"
assert_no_leftovers "after a QEMU crash"

# The guest kernel panics (guest root triggers it).
run_mvm -q --root -- sh -c 'echo c > /proc/sysrq-trigger; sleep 10'
assert_eq 125 "$RC" "a guest kernel panic is mvm's failure (125)"
assert_contains "$ERR" "guest kernel crashed" "a guest panic is reported as such"
assert_no_leftovers "after a guest panic"

# The guest reboots itself: the VM ends, and mvm says so.
run_mvm -q --root -- sh -c 'reboot -f; sleep 10'
assert_eq 125 "$RC" "a guest reboot ends the session as mvm's failure (125)"
assert_contains "$ERR" "guest rebooted" "a guest reboot is reported as such"
assert_no_leftovers "after a guest reboot"

# kill -9 of mvm: QEMU and virtiofsd die within a second by themselves.
start_session
qemu=$(session_qemu "$PID")
vfsd=$(virtiofsd_of "$PID" all)
[ -n "$vfsd" ] || die "no virtiofsd below mvm $PID"
dir=$(ls -td /run/mvm/*/ | head -1)
cg=$(awk -F: '$2 == "memory" || $2 == "" {print $3}' "/proc/$qemu/cgroup" | head -1)
kill -KILL "$PID"
wait "$PID" 2> /dev/null
# They go by themselves (parent-death signal, the vhost-user socket
# closing); on a loaded 2-core machine under ASan that takes a moment.
for _ in $(seq 30); do
    alive=""
    for p in $qemu $vfsd; do
        [ -e "/proc/$p" ] && [ "$(cut -d' ' -f3 "/proc/$p/stat" 2> /dev/null)" != Z ] &&
            alive="$alive $p($(cat "/proc/$p/comm" 2> /dev/null))"
    done
    [ -z "$alive" ] && break
    sleep 0.1
done
assert_eq "" "$alive" "QEMU and virtiofsd are gone within 3 seconds of kill -9"
[ -d "$dir" ] && ok "the dead session's directory remains" || fail "session directory $dir vanished"
cgdir=""
for d in "/sys/fs/cgroup/memory$cg" "/sys/fs/cgroup$cg"; do [ -n "$cg" ] && [ -d "$d" ] && cgdir=$d; done
[ -n "$cgdir" ] && ok "the dead session's cgroup remains until cleanup" || fail "no cgroup found for QEMU ($cg)"
out=$("$MVM" cleanup)
assert_contains "$out" "removed 1 stale session directory" "mvm cleanup removes it"
[ -d "$dir" ] && fail "$dir still there after mvm cleanup" || ok "the directory is gone"
# A killed QEMU that the machine's PID 1 has not reaped yet still holds a
# v1 cgroup; mvm cleanup removes the cgroup once it is reaped.
if [ -n "$cgdir" ] && [ -d "$cgdir" ]; then
    for _ in $(seq 50); do [ -e "/proc/$qemu" ] || break; sleep 0.1; done
    "$MVM" cleanup > /dev/null
fi
[ -n "$cgdir" ] && [ -d "$cgdir" ] && fail "cgroup $cgdir still there after mvm cleanup" ||
    ok "mvm cleanup removes the dead session's cgroup"
assert_no_leftovers "after kill -9 and mvm cleanup"
