#!/bin/bash
# The guest's filesystem: the working directory shared read-write at the
# same path (the git top), files the guest creates belong to the invoking
# user, /usr read-only even for guest root, no host secrets visible, and
# the automatic share refuses home and system directories.
. "$(dirname "$0")/lib.sh"
ensure_test_user
chown "$TEST_USER:" "$PROJECT"
as_user() { SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER run_mvm -q "$@"; }

# The repository's top is shared; the command starts in the subdirectory.
mkdir -p "$PROJECT/.git" "$PROJECT/sub/dir"
echo host-data > "$PROJECT/file"
chown -R "$TEST_USER:" "$PROJECT"
(cd "$PROJECT/sub/dir" && SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID "$MVM" run -q -- sh -c \
    'pwd; id -un; id -u; cat ../../file; ls -a ../.. | grep -c "^.git$"; echo guest > ../../from-guest; mkdir ../../newdir') \
    > "$WORK/out" 2> "$WORK/err"
RC=$?
OUT=$(cat "$WORK/out")
assert_eq 0 "$RC" "run in a subdirectory of a git repository ($(cat "$WORK/err"))"
assert_eq "$PROJECT/sub/dir
$TEST_USER
$TEST_UID
host-data
1" "$OUT" "same path, the invoking user's name and uid, the repository top with .git visible"
assert_eq "$TEST_USER:$TEST_USER guest" "$(stat -c %U:%G "$PROJECT/from-guest") $(cat "$PROJECT/from-guest")" \
    "a file the guest writes belongs to the invoking user on the host"
assert_eq "$TEST_USER" "$(stat -c %U "$PROJECT/newdir")" "a directory the guest creates belongs to the user"

# Guest root (--root) still creates files as the invoking user, and can
# create neither setuid-root files nor device nodes on the host.
as_user --root -- sh -c 'id -u; echo r > byroot; cp /bin/true suid; chmod 4755 suid; chown 0:0 suid; mknod dev c 1 3; ls -ln byroot' 
assert_eq 0 "$(echo "$OUT" | head -1)" "--root runs the command as root in the guest"
assert_eq "$TEST_USER" "$(stat -c %U "$PROJECT/byroot")" "guest root's files belong to the invoking user"
if [ -e "$PROJECT/suid" ]; then
    assert_eq "$TEST_USER" "$(stat -c %U "$PROJECT/suid")" "guest root cannot make a root-owned file"
    [ -u "$PROJECT/suid" ] && [ "$(stat -c %u "$PROJECT/suid")" = 0 ] && fail "a setuid-root file appeared on the host"
fi
[ -e "$PROJECT/dev" ] && [ -c "$PROJECT/dev" ] && fail "guest created a device node on the host" || ok "no device node on the host"

# The host's /usr is read-only: the guest writes only to its overlay, and
# guest root mounting the host's /usr itself read-write gets EROFS.
as_user --root -- sh -c 'touch /usr/mvm-probe && echo overlay-ok; mkdir /mnt/u && mount -t virtiofs usr /mnt/u; mount -o remount,rw /mnt/u; touch /mnt/u/mvm-probe2 2>&1; echo done'
assert_contains "$OUT" "overlay-ok" "guest root may write /usr (its own overlay)"
assert_contains "$OUT" "Read-only file system" "the host's /usr, mounted directly, is read-only"
[ -e /usr/mvm-probe ] || [ -e /usr/mvm-probe2 ] && { rm -f /usr/mvm-probe /usr/mvm-probe2; fail "guest root wrote into the host's /usr"; } || ok "guest root cannot write the host's /usr"
as_user --root --disk none -- sh -c 'touch /usr/mvm-probe 2>&1; mount -o remount,rw /usr 2>&1; touch /usr/mvm-probe 2>&1; echo done'
assert_contains "$OUT" "Read-only file system" "--disk none: /usr is read-only in the guest"
[ -e /usr/mvm-probe ] && { rm -f /usr/mvm-probe; fail "guest root wrote into the host's /usr"; } || ok "--disk none: guest root cannot write the host's /usr"

# Host secrets are not in the guest.
secret_dir=$(mktemp -d /root/mvm-it-secret.XXXXXX)
defer "rm -rf '$secret_dir'"
echo topsecret > "$secret_dir/key"
as_user -- sh -c "ls /home; ls /root 2>&1; cat /etc/shadow 2>&1; ls /etc/ssh 2>&1; cat $secret_dir/key 2>&1; echo end"
assert_not_contains "$OUT" "topsecret" "files under /root are not visible"
assert_not_contains "$OUT" "root:" "/etc/shadow is not visible"
assert_contains "$OUT" "/etc/shadow: No such file" "/etc/shadow does not exist in the guest"
assert_contains "$OUT" "/etc/ssh': No such file" "/etc/ssh does not exist in the guest"
other=$(ls /home | grep -v "^$TEST_USER$" | head -1)
[ -n "$other" ] && assert_not_contains "$(echo "$OUT" | head -3)" "$other" "other users' homes are not visible"
as_user -- sh -c 'ls -A ~ | wc -l; test -w ~ && echo home-writable; echo $HOME'
assert_eq "0
home-writable
$TEST_HOME" "$OUT" "the home directory is an empty writable tmpfs at the user's path"

# The automatic share refuses home and system directories.
(cd "$TEST_HOME" && SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID "$MVM" run -q -- true) 2> "$WORK/err"
rc=$?
assert_eq 125 "$rc" "sharing a home directory is refused"
assert_contains "$(cat "$WORK/err")" "home directory" "the refusal says why"
assert_contains "$(cat "$WORK/err")" "--no-cwd" "the refusal suggests --no-cwd"
(cd / && "$MVM" run -q -- true) 2> "$WORK/err"
assert_eq 125 "$?" "sharing / is refused"
(cd /etc && "$MVM" run -q -- true) 2> "$WORK/err"
assert_eq 125 "$?" "sharing /etc is refused"
(cd /home && "$MVM" run -q -- true) 2> "$WORK/err"
assert_eq 125 "$?" "sharing a parent of home directories is refused"
mkdir -p "$WORK/withssh/.ssh"
(cd "$WORK/withssh" && "$MVM" run -q -- true) 2> "$WORK/err"
assert_eq 125 "$?" "a directory holding .ssh is refused"
assert_contains "$(cat "$WORK/err")" ".ssh" "the refusal names .ssh"
(cd "$TEST_HOME" && SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID "$MVM" run -q --no-cwd -- sh -c 'pwd; ls /home/*/ | wc -l') > "$WORK/out"
assert_eq "$TEST_HOME
0" "$(cat "$WORK/out")" "--no-cwd starts in the (empty) home directory"

# --share adds directories; :ro is enforced.
mkdir -p "$WORK/extra"
echo extra > "$WORK/extra/x"
run_mvm -q --share "$WORK/extra:/mnt/extra:ro" -- sh -c 'cat /mnt/extra/x; echo y > /mnt/extra/y 2>&1 || echo refused'
assert_contains "$OUT" "extra" "--share makes the directory visible"
assert_contains "$OUT" "refused" "a :ro share cannot be written"
[ -e "$WORK/extra/y" ] && fail "a read-only share was written" || ok "the host directory is unchanged"
# A read-write --share of a home (or one holding .ssh...) is refused like
# the automatic share, unless --force-share; read-only it is the user's call.
mkdir -p "$TEST_HOME/.ssh"
defer "rmdir '$TEST_HOME/.ssh' 2> /dev/null"
as_user -q --share "$TEST_HOME:/mnt/h:ro" -- sh -c 'ls -d /mnt/h/.ssh'
assert_eq 0 "$RC" "a read-only --share of the home works"
as_user -q --share "$TEST_HOME:/mnt/h" -- true
assert_eq 125 "$RC" "a read-write --share of the home is refused"
assert_contains "$ERR" "refusing to share it read-write: it is a home directory" "the refusal says why"
assert_contains "$ERR" "--force-share" "the refusal names --force-share"
mkdir -p "$WORK/keys/.aws"
as_user -q --share "$WORK/keys" -- true
assert_contains "$ERR" "it contains .aws" "a read-write --share holding .aws is refused"
as_user -q --force-share --share "$TEST_HOME:/mnt/h" -- sh -c 'touch /mnt/h/forced && echo written'
assert_eq "0 written" "$RC $OUT" "--force-share lets it through"
rm -f "$TEST_HOME/forced"
run_mvm -q --share "$WORK/nope" -- true
assert_eq 125 "$RC" "a --share path that does not exist is an error"
assert_contains "$ERR" "$WORK/nope" "the error names the path"
assert_no_leftovers "after the share runs"

# A read-only --share serves no more than the user could read.
as_user --share "$secret_dir:/mnt/s:ro" -- cat /mnt/s/key
assert_eq 125 "$RC" "a --share the user cannot read is refused"
assert_contains "$ERR" "cannot share $secret_dir read-only" "the refusal names the directory"
assert_not_contains "$OUT" "topsecret" "nothing of it reaches the guest"

# The user's config file is read with the user's rights only: a symlink
# to /etc/shadow is an error, not a leak.
mkdir -p "$TEST_HOME/.config/mvm"
ln -sf /etc/shadow "$TEST_HOME/.config/mvm/config"
chown -R "$TEST_USER:" "$TEST_HOME/.config"
as_user -- true
assert_eq 125 "$RC" "a config symlinked to /etc/shadow is an error"
assert_not_contains "$ERR" "root:" "no line of /etc/shadow is echoed"
rm -rf "$TEST_HOME/.config/mvm"

# The virtiofsd processes of a sudo invocation: the read-write one in a
# user namespace mapping only the user and running as the user; the /usr
# one never host root (its ids are idmapped onto mvm's helper block), and
# seeing its share read-only.
(cd "$PROJECT" && SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID exec "$MVM" run -q -- sh -c 'echo up; exec sleep 30') \
    > "$WORK/bg.out" 2> /dev/null &
bg=$!
defer "kill -KILL $bg 2> /dev/null"
for _ in $(seq 600); do grep -q up "$WORK/bg.out" 2> /dev/null && break; sleep 0.1; done
rw="" ro=""
for p in $(virtiofsd_of "$bg"); do
    case "$(awk '{print $3}' "/proc/$p/uid_map")" in
    1) rw=$p ;;
    1024) ro=$p ;;
    esac
done
[ -n "$rw" ] && [ -n "$ro" ] || fail "serving virtiofsd processes not found (rw=$rw ro=$ro)"
if [ -n "$rw" ]; then
    assert_eq "$TEST_UID $TEST_UID 1" "$(awk '{print $1, $2, $3}' "/proc/$rw/uid_map")" "read-write virtiofsd: uid map holds only the user"
    assert_eq "$TEST_GID $TEST_GID 1" "$(awk '{print $1, $2, $3}' "/proc/$rw/gid_map")" "read-write virtiofsd: gid map holds only the user's group"
    [ "$(readlink "/proc/$rw/ns/user")" != "$(readlink /proc/1/ns/user)" ] && ok "read-write virtiofsd runs in its own user namespace" || fail "read-write virtiofsd is in the host's user namespace"
    assert_eq "$TEST_UID $TEST_UID $TEST_UID $TEST_UID $TEST_GID $TEST_GID $TEST_GID $TEST_GID" "$(host_ids "$rw")" "read-write virtiofsd runs as the user on the host"
    assert_eq 2 "$(awk '/^Seccomp:/ {print $2}' "/proc/$rw/status")" "read-write virtiofsd has sandboxed itself (seccomp)"
    # mvm's deny filter (disk limits: the default --min-free) is one of
    # them; virtiofsd's own is the other.
    [ "$(awk '/^Seccomp_filters:/ {print $2}' "/proc/$rw/status")" -ge 2 ] && ok "read-write virtiofsd: its own filter and mvm's (no fallocate)" ||
        fail "read-write virtiofsd: $(awk '/^Seccomp_filters:/ {print $2}' "/proc/$rw/status") seccomp filter(s), expected virtiofsd's and mvm's"
fi
if [ -n "$ro" ]; then
    # Its root is the share; mountinfo field 6 holds the mount options.
    rootopts=$(awk '$5 == "/" {print $6}' "/proc/$ro/mountinfo" | head -1)
    assert_contains "$rootopts" "ro" "/usr virtiofsd sees its share read-only"
    assert_eq 2 "$(awk '/^Seccomp:/ {print $2}' "/proc/$ro/status")" "/usr virtiofsd has sandboxed itself (seccomp)"
    in_helper_range "$(host_ids "$ro")" && ok "/usr virtiofsd runs as mvm's helper ids ($(host_ids "$ro" | cut -d' ' -f1)), not host root" ||
        fail "/usr virtiofsd runs as host ids $(host_ids "$ro")"
fi
for p in $(virtiofsd_of "$bg" all); do
    [ "$(readlink "/proc/$p/ns/ipc")" != "$(readlink /proc/1/ns/ipc)" ] || fail "virtiofsd $p shares the host's IPC namespace"
    case " $(host_ids "$p") " in *" 0 "*) fail "virtiofsd $p holds host id 0: $(host_ids "$p")" ;; esac
done
ok "no virtiofsd process holds host uid or gid 0, and each has its own IPC namespace"
kill -TERM "$bg" 2> /dev/null
wait "$bg"
assert_no_leftovers "after inspecting virtiofsd"

# The guest sees /usr's real owners and modes: setuid root stays setuid
# root, group-owned files keep their group.
probe_files=""
for f in /usr/bin/su /usr/bin/passwd /usr/bin/chage /usr/bin/newgrp; do [ -e "$f" ] && probe_files="$probe_files $f"; done
want=$(stat -c '%n %u:%g %a' $probe_files)
as_user -- stat -c '%n %u:%g %a' $probe_files
assert_eq "$want" "$OUT" "/usr's owners and modes in the guest match the host's ($probe_files)"

# A root invocation (CI runs so): files the guest writes are root's on the
# host, though no virtiofsd runs as host root (see jail.sh).
mkdir "$PROJECT/root-owned"
run_mvm -q -- sh -c 'id -u; echo r > root-owned/by-root-run'
assert_eq "0 0 root:root" "$RC $OUT $(stat -c %U:%G "$PROJECT/root-owned/by-root-run")" "a root invocation's files are root's on the host"

# A directory name is never a virtiofsd option: "x,source=DIR" is served
# as itself, for a root invocation and for a sudo user.
decoy="$WORK/decoy"
mkdir -p "$decoy"
echo decoy > "$decoy/decoy-file"
for name in "x,source=$decoy" "Smith, John" 'back\slash,cache=none' $'new\nline' "-rf"; do
    dir="$WORK/names/$name"
    mkdir -p "$dir"
    echo mine > "$dir/own-file"
    chown -R "$TEST_USER:" "$WORK/names"
    want_pwd=$(printf '%s' "$dir" | base64 -w0)
    (cd "$dir" && "$MVM" run -q -- sh -c 'ls; printf %s "$PWD" | base64 -w0') > "$WORK/out" 2> "$WORK/err"
    assert_eq "0 own-file $want_pwd" "$? $(tr '\n' ' ' < "$WORK/out")" \
        "root: the directory $(printf %q "$name") is served as itself, at its own path ($(cat "$WORK/err"))"
    (cd "$dir" && SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID "$MVM" run -q -- sh -c 'ls; echo w > written') > "$WORK/out" 2> "$WORK/err"
    assert_eq "0 own-file w" "$? $(cat "$WORK/out") $(cat "$dir/written" 2> /dev/null)" \
        "sudo user: $(printf %q "$name") is served as itself and writable ($(cat "$WORK/err"))"
    [ -e "$decoy/written" ] && fail "the decoy directory was written"
done
rm -rf "$WORK/names"

# A .git planted above the project by another user does not widen the
# share; the user's own does (the positive control comes first).
mkdir -p "$WORK/vt/.git" "$WORK/vt/build"
echo sibling > "$WORK/vt/sibling"
(cd "$WORK/vt/build" && "$MVM" run -q -- ls ..) > "$WORK/out" 2> "$WORK/err"
assert_contains "$(cat "$WORK/out")" "sibling" "root's own repository is shared from its top"
chown "$TEST_USER:" "$WORK/vt/.git"
(cd "$WORK/vt/build" && "$MVM" run -- ls ..) > "$WORK/out" 2> "$WORK/err"
assert_not_contains "$(cat "$WORK/out")" "sibling" "another user's .git above the project is not shared"
assert_contains "$(cat "$WORK/err")" "not sharing the repository at $WORK/vt" "mvm says why in one line"
assert_no_leftovers "after the share name and ownership runs"
