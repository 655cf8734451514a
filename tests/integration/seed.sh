#!/bin/bash
# The cloud-init seed (disk/seed.c) read by a guest kernel's isofs: the
# reader --boot image's guests use, which the host's kernel may lack.
# test-seed's loop-mount cases run in the guest, as root: names, bytes,
# the label, read-only.
. "$(dirname "$0")/lib.sh"

TEST_SEED=${TEST_SEED:?TEST_SEED must point at the test-seed binary}
cp "$TEST_SEED" "$PROJECT/test-seed"
run_mvm --root -- sh -c 'modprobe -q loop; modprobe -q isofs;
    grep -qw iso9660 /proc/filesystems || { echo "no iso9660 in the guest kernel"; exit 77; }
    ./test-seed mount'
[ "$RC" = 77 ] && skip "the guest kernel: $OUT"
assert_eq 0 "$RC" "test-seed mount passes in the guest"
assert_contains "$OUT$ERR" "[  PASSED  ] 2 test(s)." "both loop-mount cases ran (none skipped)"
assert_no_leftovers "after the seed mount"
