#!/bin/bash
# Shares from the hostile guest's side, as root in the guest: a host file
# next to the project (outside every share) is never readable, whatever
# path the guest tries -- symlinks planted on the host or by the guest,
# absolute or relative, "..", hard links, a directory swapped for a
# symlink while it is read, /proc -- and a read-only share stays
# byte-identical through a remount and every kind of write.  Each refusal
# follows a positive control in the same guest: a file inside the share
# reads, and the same writes succeed on the read-write project.
. "$(dirname "$0")/lib.sh"
ensure_test_user
as_user() { SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER run_mvm -q "$@"; }
runs_before

SECRET="TOP-SECRET-$RANDOM$RANDOM"
INSIDE="INSIDE-$RANDOM$RANDOM"
echo "$SECRET" > "$WORK/secret"
chmod 644 "$WORK/secret" # readable by the user: only the share boundary stands between
echo "$INSIDE" > "$PROJECT/inside.txt"
ln -s "$WORK/secret" "$PROJECT/host-abs"
ln -s ../secret "$PROJECT/host-rel"
mkdir -p "$PROJECT/sub"
ln -s ../../secret "$PROJECT/sub/host-rel2"
RO="$WORK/ro"
mkdir -p "$RO/dir"
echo "read-only content" > "$RO/file"
echo "nested" > "$RO/dir/nested"
chown -R "$TEST_USER:" "$PROJECT" "$RO"
# File systems mounted below a share: not served unless asked for.
SUBM="SUBMOUNT-$RANDOM$RANDOM"
SM="$WORK/sm"
mkdir -p "$PROJECT/mnt" "$SM/inner"
chown "$TEST_USER:" "$SM"
mount -t tmpfs -o size=1m,uid="$TEST_UID",gid="$TEST_GID" mvm-it-submount "$PROJECT/mnt" || die "mounting a tmpfs below the project"
defer "umount '$PROJECT/mnt'"
mount -t tmpfs -o size=1m,uid="$TEST_UID",gid="$TEST_GID" mvm-it-submount "$SM/inner" || die "mounting a tmpfs below $SM"
defer "umount '$SM/inner'"
echo "$SUBM" > "$PROJECT/mnt/file"
echo "asked-for" > "$SM/inner/file"
# An :overlay share: writable in the guest, the host's tree untouched.
OV="$WORK/ov"
mkdir -p "$OV"
echo "host version" > "$OV/file"
chown -R "$TEST_USER:" "$OV"
ov_before=$(cd "$OV" && find . -printf '%p %m %s %T@\n' | sort)

ro_manifest() {
    (cd "$RO" && find . -printf '%p %y %m %U:%G %s %T@ %C@ %l\n' | sort && find . -type f -exec sha256sum {} + | sort)
}
ro_before=$(ro_manifest)

# What the guest tries, for each path: its content or its error.
cat > "$PROJECT/attack.sh" << 'EOF'
W=$1 S=$1/secret RO=$1/ro P=$1/project
cd "$P"
echo "control: $(cat inside.txt)"
try() { echo "$1: $(cat "$1" 2>&1 | head -c 200)"; }
try host-abs; try host-rel; try sub/host-rel2
try mnt/file; try "$W/sm/inner/file"
ln -s "$S" g-abs; ln -s ../secret g-rel; ln -s / g-root; ln -s ../../../../../../.. g-up
try g-abs; try g-rel; try "g-root$S"; try "g-up$S"; try ../secret; try "$P/../secret"; try "$S"
# link() does not follow a symlink; -L resolves it in the guest's view.
ln host-abs g-hard 2>&1; try g-hard
ln -L host-abs g-hard2 2>&1; try g-hard2
# A directory swapped for a symlink to the outside while it is read.
mkdir -p race && echo decoy > race/secret
end=$(($(date +%s) + 3))
(while [ "$(date +%s)" -lt "$end" ]; do mv race race.d && ln -s "$W" race && rm race && mv race.d race; done) &
while [ "$(date +%s)" -lt "$end" ]; do cat race/secret 2> /dev/null; done | sort | uniq -c | sed 's/^/race: /'
wait
try "/proc/self/root$S"; try "/proc/1/root$S"; try /proc/self/cwd/../secret
python3 - "$P" "$S" << 'PY'
import os, sys
p, s = sys.argv[1], sys.argv[2]
top = os.open(p, os.O_RDONLY | os.O_DIRECTORY)
for name in ("..", "../secret", "../../" + s.lstrip("/")):
    try:
        fd = os.open(name, os.O_RDONLY, dir_fd=top)
        try:
            print("openat", name, os.read(fd, 200) if not os.path.isdir("/proc/self/fd/%d" % fd) else sorted(os.listdir(fd)))
        finally:
            os.close(fd)
    except OSError as e:
        print("openat", name, e.strerror)
PY
# The read-only share: remount it read-write first, then every write.
mount -o remount,rw "$RO" 2>&1 && echo "remount: done"
grep " $RO " /proc/mounts | sed 's/^/mount: /'
cat > /tmp/writes.py << 'PY'
import errno, os, stat, sys
d = sys.argv[1]
f, sub = d + "/file", d + "/dir"
ops = [
    ("write", lambda: open(f, "w").write("x")),
    ("append", lambda: open(f, "a").write("x")),
    ("create", lambda: open(d + "/new", "w").close()),
    ("truncate", lambda: os.truncate(f, 0)),
    ("chmod", lambda: os.chmod(f, 0o777)),
    ("utime", lambda: os.utime(f, (0, 0))),
    ("mkdir", lambda: os.mkdir(d + "/newdir")),
    ("symlink", lambda: os.symlink("/etc/passwd", d + "/sym")),
    ("link", lambda: os.link(f, d + "/hard")),
    ("rename", lambda: os.rename(sub, d + "/moved")),
    ("unlink", lambda: os.unlink(f)),
    ("setxattr", lambda: os.setxattr(d + "/dir/nested", "user.mvm", b"1")),
    ("mknod", lambda: os.mknod(d + "/fifo", 0o600 | stat.S_IFIFO)),
    ("chown", lambda: os.chown(d + "/dir/nested", 0, 0)),
    ("rmdir", lambda: os.rmdir(d + "/moved" if os.path.exists(d + "/moved") else sub)),
]
for name, op in ops:
    try:
        op()
        print(name, "ok")
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
PY
mkdir -p "$P/rw/dir" && echo x > "$P/rw/file" && echo n > "$P/rw/dir/nested"
python3 /tmp/writes.py "$P/rw" | sed 's/^/rw: /'
python3 /tmp/writes.py "$RO" | sed 's/^/ro: /'
echo "guest version" > "$W/ov/file" && mkdir "$W/ov/new" && echo "overlay: $(cat "$W/ov/file") $(ls "$W/ov" | tr '\n' ' ')"
EOF
as_user --root --audit off --share "$RO:ro" --share "$SM:ro,submounts" --share "$OV:overlay" -- sh "$PROJECT/attack.sh" "$WORK"
assert_eq 0 "$RC" "the attack script ran as root in the guest (stderr: $ERR)"
assert_contains "$OUT" "control: $INSIDE" "positive control: a file inside the share reads"
assert_not_contains "$OUT$ERR" "$SECRET" "the host file outside the share appears nowhere in the guest's output"
assert_not_contains "$OUT$ERR" "$SUBM" "nor does the submount's file"
for p in host-abs host-rel sub/host-rel2 g-abs g-rel g-hard2; do
    assert_contains "$(echo "$OUT" | grep "^$p: ")" "No such file" "$p resolves in the guest's own view, where the host file does not exist"
done
assert_eq "$WORK/sm/inner/file: asked-for" "$(echo "$OUT" | grep "^$WORK/sm/inner/file: ")" \
    "positive control: with :ro,submounts a file system mounted below the share is served"
assert_contains "$(echo "$OUT" | grep '^mnt/file: ')" "No such file" "a file system mounted below the project is not served (its mount point is empty)"
race=$(echo "$OUT" | grep '^race: ')
assert_contains "$race" "decoy" "positive control: the raced directory was read through"
assert_not_contains "$race" "$SECRET" "the rename race never reaches the host file"
# The guest's parent of the project holds only its mount points; the
# host's holds the secret (and this test's files).
assert_eq "openat .. ['ov', 'project', 'ro', 'sm']" "$(echo "$OUT" | grep '^openat \.\. ')" \
    "openat(..) from the share's top lists the guest's own directory (its mount points), not the host's"
assert_contains "$(echo "$OUT" | grep '^openat \.\./secret ')" "No such file" "openat(../secret) from the share's top finds nothing"

# Read-only: every write fails; the same writes succeed on the project.
for op in write append create truncate chmod utime mkdir symlink link rename unlink; do
    assert_eq "rw: $op ok" "$(echo "$OUT" | grep "^rw: $op ")" "positive control: $op works on the read-write project"
done
for op in write append create truncate chmod utime mkdir symlink link rename unlink setxattr mknod chown rmdir; do
    line=$(echo "$OUT" | grep "^ro: $op ")
    case "$line" in
    "ro: $op E"*) ok "read-only share: $op fails (${line#ro: $op })" ;;
    *) fail "read-only share: $op: [$line]" ;;
    esac
done
case "$OUT" in
*"remount: done"*) remount="guest root remounted it read-write: $(echo "$OUT" | grep '^mount: ' | cut -d' ' -f5 | cut -c1-20)" ;;
*) remount="guest root could not remount it read-write" ;;
esac
assert_eq "$ro_before" "$(ro_manifest)" "the read-only tree is byte-identical afterwards ($remount; names, modes, owners, sizes, times, content)"
[ -e "$WORK/secret" ] && [ "$(cat "$WORK/secret")" = "$SECRET" ] && ok "the host file is untouched" || fail "the host file changed"
assert_eq "overlay: guest version file new " "$(echo "$OUT" | grep '^overlay: ')" "an :overlay share is writable in the guest"
assert_eq "$ov_before" "$(cd "$OV" && find . -printf '%p %m %s %T@\n' | sort)" "... and the host's tree under it is unchanged"
assert_no_leftovers "after the escape attempts"
