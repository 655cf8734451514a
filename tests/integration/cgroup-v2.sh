#!/bin/bash
# cgroup v2, for real: the development machines have the v1 layout, so the
# cgroup test runs inside a VM, whose kernel offers memory and pids in
# cgroup2 (the test mounts it).  TEST_CGROUP is the test-cgroup binary.
. "$(dirname "$0")/lib.sh"
: "${TEST_CGROUP:?TEST_CGROUP must point at the test-cgroup binary}"

dir=$(dirname "$TEST_CGROUP")
run_mvm -q --root --share "$dir:/mvmtest:ro" -- /mvmtest/test-cgroup --mount-v2 /tmp/cg2
echo "$OUT"
assert_eq 0 "$RC" "test-cgroup passes inside the VM"
assert_contains "$OUT" "cgroup v2" "the v2 code path was exercised"
assert_contains "$OUT" "a child over the memory limit is killed" "the v2 memory limit was checked"
assert_no_leftovers "after the cgroup v2 run"
