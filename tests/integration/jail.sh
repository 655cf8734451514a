#!/bin/bash
# The jailed QEMU of a real session, inspected from outside: no
# capabilities, no_new_privs, two seccomp filters (mvm's and QEMU's own),
# a uid of its own per session, its own mount/PID/network namespaces, a
# root holding exactly the allowlisted tree, the session's cgroup; every
# virtiofsd sandboxed in a user namespace.
. "$(dirname "$0")/lib.sh"

start() { # name: a background session that waits; sets PID_<name>
    (cd "$PROJECT" && exec "$MVM" run -q -- sh -c 'echo up; exec sleep 60') > "$WORK/$1.out" 2> "$WORK/$1.err" &
    eval "PID_$1=$!"
    defer "kill -KILL $! 2> /dev/null" # ended even when the test fails midway
}
wait_up() { for _ in $(seq 600); do grep -q up "$WORK/$1.out" 2> /dev/null && return 0; sleep 0.1; done
    die "session $1 did not start: $(cat "$WORK/$1.err")"; }
field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

start a
start b
wait_up a
wait_up b
qa=$(pgrep -P "$PID_a" -f qemu-system-x86_64)
qb=$(pgrep -P "$PID_b" -f qemu-system-x86_64)
[ -n "$qa" ] && [ -n "$qb" ] || die "QEMU processes not found"

for q in "$qa" "$qb"; do
    for c in CapInh CapPrm CapEff CapBnd CapAmb; do
        assert_eq 0000000000000000 "$(field "$q" "$c")" "QEMU $q: $c is empty"
    done
    assert_eq 1 "$(field "$q" NoNewPrivs)" "QEMU $q: no_new_privs"
    assert_eq 2 "$(field "$q" Seccomp)" "QEMU $q: seccomp filtering"
    [ "$(field "$q" Seccomp_filters)" -ge 2 ] && ok "QEMU $q: mvm's and QEMU's own filters" ||
        fail "QEMU $q: only $(field "$q" Seccomp_filters) seccomp filter(s)"
    uid=$(field "$q" Uid)
    [ "$uid" -ge 1879113728 ] && [ "$uid" -lt 1879117824 ] && ok "QEMU $q: runs as reserved uid $uid" ||
        fail "QEMU $q: uid $uid is not one of mvm's reserved uids"
done
[ "$(field "$qa" Uid)" != "$(field "$qb" Uid)" ] && ok "two sessions' QEMUs have different uids" ||
    fail "two sessions share uid $(field "$qa" Uid)"

for ns in mnt pid net; do
    [ "$(readlink "/proc/$qa/ns/$ns")" != "$(readlink "/proc/$PID_a/ns/$ns")" ] &&
        ok "QEMU has its own $ns namespace" || fail "QEMU shares mvm's $ns namespace"
done
assert_eq 1 "$(awk '/^NSpid:/ {print $NF}' "/proc/$qa/status")" "QEMU is PID 1 of its PID namespace"

# The jail's whole tree (below /usr is the host's read-only /usr).
# The loader directories are there exactly when the host has them.
allow=". ./dev ./dev/full ./dev/null ./dev/urandom ./dev/zero ./etc ./etc/ld.so.cache ./usr ./vm ./vm/initrd ./vm/vmlinux"
for d in bin sbin lib lib32 lib64 libx32; do [ -e "/$d" ] && allow="$allow ./$d"; done
tr '\0' ' ' < "/proc/$qa/cmdline" | grep -q -- "-accel kvm" && allow="$allow ./dev/kvm" # KVM in use
tree=$(cd "/proc/$qa/root" && find . -path ./usr -prune -print -o -print | sort | tr '\n' ' ')
assert_eq "$(echo "$allow" | tr ' ' '\n' | sort | tr '\n' ' ')" "$tree" \
    "QEMU's root holds exactly the allowlisted tree"
assert_contains "$(awk '$5 == "/usr" {print $6}' "/proc/$qa/mountinfo")" "ro" "/usr is read-only in the jail"
[ -e "/proc/$qa/root/proc" ] && fail "the jail has a /proc" || ok "no /proc in the jail"

# The session's cgroup caps memory and tasks.
cg=$(awk -F: '$2 == "memory" {print $3}' "/proc/$qa/cgroup")
assert_contains "$cg" "/mvm/" "QEMU is in a per-session memory cgroup"
if [ -f "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes" ]; then
    assert_eq $(((1024 + 128 + 256) * 1024 * 1024)) "$(cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes")" \
        "memory limit = guest RAM + TCG cache + QEMU overhead"
    pcg=$(awk -F: '$2 == "pids" {print $3}' "/proc/$qa/cgroup")
    assert_eq 256 "$(cat "/sys/fs/cgroup/pids$pcg/pids.max")" "pids limit"
elif [ -f "/sys/fs/cgroup$cg/memory.max" ]; then
    assert_eq $(((1024 + 128 + 256) * 1024 * 1024)) "$(cat "/sys/fs/cgroup$cg/memory.max")" "memory limit (v2)"
    assert_eq 256 "$(cat "/sys/fs/cgroup$cg/pids.max")" "pids limit (v2)"
else
    fail "cannot find QEMU's cgroup $cg"
fi

# QEMU's cgroup namespace is rooted at its own cgroup: from inside, its
# cgroup is "/" (it was created after QEMU joined the session's cgroup).
if command -v nsenter > /dev/null; then
    inner=$(nsenter --cgroup="/proc/$qa/ns/cgroup" cat "/proc/$qa/cgroup" | awk -F: '$2 == "memory" || $2 == "" {print $3}' | sort -u)
    assert_eq "/" "$inner" "QEMU sees its own cgroup as the root of its cgroup namespace"
else
    fail "nsenter (util-linux) is missing"
fi

# Every virtiofsd (found by process tree, so either flavour): sandboxed,
# in a user namespace and an IPC namespace of its own, and -- this is a
# root invocation -- never host uid or gid 0: the ids of mvm's helper
# block, different between the two sessions.
host_userns=$(readlink /proc/1/ns/user)
host_ipcns=$(readlink /proc/1/ns/ipc)
n=0
for sess in "$PID_a" "$PID_b"; do
    for p in $(virtiofsd_of "$sess"); do
        n=$((n + 1))
        assert_eq 2 "$(field "$p" Seccomp)" "virtiofsd $p: seccomp"
        [ "$(readlink "/proc/$p/ns/user")" != "$host_userns" ] && ok "virtiofsd $p: in its own user namespace" ||
            fail "virtiofsd $p: in the host's user namespace"
    done
    for p in $(virtiofsd_of "$sess" all); do
        [ "$(readlink "/proc/$p/ns/ipc")" != "$host_ipcns" ] && ok "virtiofsd $p: in its own IPC namespace" ||
            fail "virtiofsd $p: in the host's IPC namespace"
        in_helper_range "$(host_ids "$p")" && ok "virtiofsd $p: runs as mvm's helper ids, not root ($(host_ids "$p" | cut -d' ' -f1))" ||
            fail "virtiofsd $p: host ids $(host_ids "$p")"
    done
done
assert_eq 4 "$n" "two serving virtiofsd per session (/usr and the project)"
ids_a=$(for p in $(virtiofsd_of "$PID_a"); do host_ids "$p" | cut -d' ' -f1; done | sort)
ids_b=$(for p in $(virtiofsd_of "$PID_b"); do host_ids "$p" | cut -d' ' -f1; done | sort)
[ -z "$(comm -12 <(echo "$ids_a") <(echo "$ids_b"))" ] && ok "the two sessions' virtiofsd share no uid" ||
    fail "the two sessions' virtiofsd share uids: $ids_a / $ids_b"

kill -TERM "$PID_a" "$PID_b"
wait "$PID_a" "$PID_b" 2> /dev/null
for d in "/sys/fs/cgroup/memory$cg" "/sys/fs/cgroup$cg"; do
    [ -d "$d" ] && fail "cgroup $d left behind"
done
ok "the session cgroups are gone"
assert_no_leftovers "after the jailed sessions"
