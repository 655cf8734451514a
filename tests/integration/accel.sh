#!/bin/bash
# KVM detection: where /dev/kvm cannot run a normal guest (missing, or the
# paravirtual kvm_pvm of the development machines), mvm says so in one
# line and uses TCG; --accel kvm fails clearly.  On a machine with a
# working KVM this test has nothing to check (label kvm: CI may skip it).
. "$(dirname "$0")/lib.sh"

if [ -e /dev/kvm ] && { [ -e /sys/module/kvm_intel ] || [ -e /sys/module/kvm_amd ]; }; then
    skip "this machine has a hardware KVM; the fallback path cannot be observed here"
fi
run_mvm -- true
assert_eq 0 "$RC" "the run succeeds under TCG"
notices=$(printf '%s\n' "$ERR" | grep -c 'KVM is not usable' || true)
assert_eq 1 "$notices" "exactly one notice line about KVM"
assert_contains "$ERR" "using TCG" "the notice says TCG is used"
run_mvm -q -- true
assert_eq "" "$ERR" "-q silences the notice"
run_mvm --accel kvm -- true
assert_eq 125 "$RC" "--accel kvm fails where KVM cannot run a guest"
assert_contains "$ERR" "--accel kvm" "the error names the option"
run_mvm --accel tcg -- true
assert_eq 0 "$RC" "--accel tcg works"
assert_not_contains "$ERR" "KVM" "--accel tcg prints no KVM notice"
assert_no_leftovers "after the accel runs"
