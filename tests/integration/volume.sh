#!/bin/bash
# --volume: persistent, size-capped ext4 volumes that outlive throwaway
# runs (an agent's login), one session at a time, the user's own.
. "$(dirname "$0")/lib.sh"

ensure_test_user
chown "$TEST_USER:" "$PROJECT"
as_user() { SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER run_mvm "$@"; }
VOLDIR=/var/lib/mvm/volumes
NAME=mvm-it-vol-$$
IMAGE=$VOLDIR/$TEST_UID/$NAME.ext4
defer "'$REAL_MVM' volume rm $NAME > /dev/null 2>&1; SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER '$REAL_MVM' volume rm $NAME > /dev/null 2>&1"

# What one run writes, the next one reads.
as_user --volume "$NAME:~:64M" -- sh -c 'echo "logged in" > ~/.login; stat -c %U:%a ~'
assert_eq 0 "$RC" "a run with a new volume at ~ succeeds"
assert_contains "$ERR" "created volume $NAME (64 MiB) for $TEST_HOME" "mvm says it created the volume"
assert_eq "$TEST_USER:700" "$OUT" "the volume is the user's home, mode 700"
[ -f "$IMAGE" ] && ok "the image is under $VOLDIR/UID" || fail "no image at $IMAGE"
as_user -q --volume "$NAME:~" -- cat "$TEST_HOME/.login"
assert_eq "0 logged in" "$RC $OUT" "the next run sees what the first one wrote"
listing=$(SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER "$REAL_MVM" volume ls)
assert_contains "$listing" "$NAME" "mvm volume ls lists it"
assert_contains "$listing" "64M" "mvm volume ls shows its size"

# Writing past the size fails in the guest; the image stays within it.
as_user -q --volume "$NAME:/data" -- sh -c 'dd if=/dev/urandom of=/data/fill bs=1M count=100 2>&1; sync'
assert_contains "$OUT" "No space left on device" "writing past the volume's size fails with ENOSPC"
used=$(du -k "$IMAGE" | cut -f1)
[ "$used" -le $((64 * 1024)) ] && ok "the image uses ${used} KiB, no more than its 64 MiB" ||
    fail "the image uses ${used} KiB, more than 64 MiB"
apparent=$(stat -c %s "$IMAGE")
assert_eq $((64 * 1024 * 1024)) "$apparent" "the image's size is the volume's size"
as_user -q --volume "$NAME:/data" -- sh -c 'rm /data/fill && echo freed'
assert_eq "0 freed" "$RC $OUT" "the full volume still mounts and frees space"

# A second session on the same volume is refused while the first runs.
runs_before
(cd "$PROJECT" && SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER exec "$MVM" run -q \
    --volume "$NAME:~" -- sh -c 'echo up; exec sleep 60') > "$WORK/bg.out" 2> "$WORK/bg.err" &
BG=$!
defer "kill $BG 2> /dev/null; wait $BG 2> /dev/null"
for _ in $(seq 600); do
    grep -q up "$WORK/bg.out" 2> /dev/null && break
    kill -0 $BG 2> /dev/null || break
    sleep 0.1
done
grep -q up "$WORK/bg.out" || die "the first session did not start: $(cat "$WORK/bg.err")"
as_user -- true
assert_eq 0 "$RC" "another session without the volume runs meanwhile (positive control)"
as_user --volume "$NAME:~" -- true
assert_eq 125 "$RC" "a second session on a volume in use is refused"
assert_contains "$ERR" "volume $NAME is in use by another session" "the refusal says so"
listing=$(SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER "$REAL_MVM" volume ls)
assert_contains "$listing" "in use" "mvm volume ls shows it in use"
rm_err=$(SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER "$REAL_MVM" volume rm "$NAME" 2>&1)
assert_contains "$rm_err" "in use" "mvm volume rm refuses a volume in use"
kill "$BG"
wait "$BG" 2> /dev/null
assert_no_leftovers "after the session holding the volume"

# Another account naming the same volume gets one of its own.
run_mvm -q --volume "$NAME:/data" -- sh -c 'ls /data'
assert_eq 0 "$RC" "root's own volume of that name works"
assert_not_contains "$OUT" ".login" "another account cannot attach the user's volume"
[ -f "$IMAGE" ] && ok "the user's volume is untouched" || fail "the user's volume is gone"

# Bad input: one line, nothing made.
as_user --volume "../x:~" -- true
assert_eq 125 "$RC" "a bad volume name is refused"
assert_eq 1 "$(printf '%s\n' "$ERR" | grep -c .)" "the refusal is one line"
as_user --volume "$NAME" -- true
assert_contains "$ERR" "use NAME:GUEST[:SIZE]" "a volume without a place is refused with the syntax"

rm_out=$(SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER "$REAL_MVM" volume rm "$NAME" 2>&1)
assert_eq 0 "$?" "mvm volume rm removes an idle volume"
[ -e "$IMAGE" ] && fail "the image is still there after rm" || ok "the image is gone after rm"
rm_err=$(SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER "$REAL_MVM" volume rm "$NAME" 2>&1)
assert_contains "$rm_err" "no volume $NAME" "removing it again says there is none"
