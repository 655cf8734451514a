#!/bin/bash
# mvm doctor: on this machine every check passes or warns and it exits 0,
# naming the accelerator's state (a paravirtual KVM here: TCG); with a
# piece taken away -- a QEMU that is not there, a kernel directory without
# modules, a malformed config -- it names that piece and exits 1.  It
# boots no VM and leaves the host's nftables and mvm's cache as they were.
. "$(dirname "$0")/lib.sh"

command -v python3 > /dev/null || skip "python3 is needed to read doctor --json"

CHECKS="root config kvm qemu qemu-devices virtiofsd kernel modules mkfs.ext4 mmdebstrap tun nftables"
CHECKS="$CHECKS forwarding firewall cgroup idmap wireguard state-space cache-space"
line() { printf '%s\n' "$1" | grep -E "^(ok|warn|FAIL) +$2 " | head -1; }
tables() { nft list tables 2> /dev/null | sort; }
cache() { find /var/cache/mvm -maxdepth 1 2> /dev/null | sort; }

tables_before=$(tables)
cache_before=$(cache)
OUT=$("$MVM" doctor 2>&1)
RC=$?
assert_eq 0 "$RC" "doctor exits 0 on this machine"
for c in $CHECKS; do
    if [ -n "$(line "$OUT" "$c")" ]; then ok "a line for $c"; else fail "no line for $c in: $OUT"; fi
done
assert_not_contains "$OUT" "FAIL" "no check fails here"
assert_contains "$OUT" "mvm run can work here" "the summary says mvm run can work"
kvm=$(line "$OUT" kvm)
if [ -e /sys/module/kvm_pvm ] && [ ! -e /sys/module/kvm_intel ] && [ ! -e /sys/module/kvm_amd ]; then
    assert_contains "$kvm" "warn" "a paravirtual KVM is a warning, not a failure"
    assert_contains "$kvm" "paravirtual KVM (kvm_pvm)" "the kvm line names PVM"
    assert_contains "$kvm" "TCG" "the kvm line says TCG is used instead"
else
    ok "no PVM here; kvm line: $kvm"
fi
assert_contains "$(line "$OUT" qemu)" "QEMU " "the qemu line gives the version"
assert_contains "$(line "$OUT" nftables)" "ok" "mvm's rulesets load"
assert_eq "$tables_before" "$(tables)" "the host's nftables tables are as they were"
assert_eq "$cache_before" "$(cache)" "the cache is as it was (the kernel is extracted in memory)"

# --json: an array of {check, status, detail, fix}, the same checks.
JSON=$("$MVM" doctor --json)
assert_eq 0 "$?" "doctor --json exits 0"
got=$(printf '%s' "$JSON" | python3 -c '
import json, sys
a = json.load(sys.stdin)
assert isinstance(a, list)
for c in a:
    assert set(c) == {"check", "status", "detail", "fix"}, c
    assert c["status"] in ("ok", "warn", "fail"), c
    assert c["status"] == "ok" or c["fix"], c
print(" ".join(c["check"] for c in a if c["status"] != "fail"))') || fail "doctor --json: $JSON"
assert_eq "$CHECKS" "$got" "--json lists the same checks, none failing"

# A QEMU that is not there.
OUT=$("$MVM" doctor --qemu "$WORK/no-qemu" 2>&1)
assert_eq 1 "$?" "doctor exits 1 without QEMU"
assert_contains "$(line "$OUT" qemu)" "FAIL" "the qemu check fails"
assert_contains "$(line "$OUT" qemu)" "$WORK/no-qemu is not an executable file" "it names the QEMU"
assert_contains "$(line "$OUT" qemu)" "apt-get install qemu-system-x86" "it says what to install"
assert_contains "$OUT" "mvm run cannot work here" "the summary says mvm run cannot work"
# A QEMU that is there but is not QEMU: asked, its answer read.
printf '#!/bin/sh\necho "not qemu"\n' > "$WORK/fake-qemu"
chmod 755 "$WORK/fake-qemu"
OUT=$("$MVM" doctor --qemu "$WORK/fake-qemu" 2>&1)
assert_eq 1 "$?" "doctor exits 1 with a binary that is not QEMU"
assert_contains "$(line "$OUT" qemu)" "names no QEMU version" "it says the version is missing"

# A kernel directory without modules.
kernel=$(printf '%s\n' "$(line "$("$MVM" doctor)" kernel)" | sed -n 's/^ok *kernel *\([^ ]*\) .*/\1/p')
[ -n "$kernel" ] || die "cannot find the kernel doctor uses"
mkdir -p "$WORK/nomods"
OUT=$("$MVM" doctor --kernel "$kernel" --modules "$WORK/nomods" 2>&1)
assert_eq 1 "$?" "doctor exits 1 with a modules directory without modules"
assert_contains "$(line "$OUT" modules)" "FAIL" "the modules check fails"
assert_contains "$(line "$OUT" modules)" "$WORK/nomods/modules.dep" "it names the missing modules.dep"
assert_contains "$(line "$OUT" kernel)" "ok" "the kernel itself is fine"
# modules.dep there, the modules not: it names the first one missing.
: > "$WORK/nomods/modules.dep"
OUT=$("$MVM" doctor --kernel "$kernel" --modules "$WORK/nomods" 2>&1)
assert_eq 1 "$?" "doctor exits 1 with an empty modules.dep"
assert_contains "$(line "$OUT" modules)" "kernel module virtio_mmio is neither built in nor listed" \
    "it names the missing module"
# modules.dep lists a file that is not there: it names the file.
echo "kernel/virtio_mmio.ko:" > "$WORK/nomods/modules.dep"
for m in virtio_console virtiofs virtio_net virtio_blk ext4 crc32c_generic overlay; do
    echo "kernel/$m.ko"
done > "$WORK/nomods/modules.builtin"
OUT=$("$MVM" doctor --kernel "$kernel" --modules "$WORK/nomods" 2>&1)
assert_eq 1 "$?" "doctor exits 1 when a module file is missing"
assert_contains "$(line "$OUT" modules)" "$WORK/nomods/kernel/virtio_mmio.ko: No such file" \
    "it names the missing file"
# Not a kernel at all.
OUT=$("$MVM" doctor --kernel /etc/hostname 2>&1)
assert_eq 1 "$?" "doctor exits 1 when the kernel is no kernel"
assert_contains "$(line "$OUT" kernel)" "FAIL" "the kernel check fails"
assert_contains "$(line "$OUT" kernel)" "/etc/hostname" "it names the kernel file"

# A malformed config file (MVM_SYSTEM_CONFIG: honoured for root itself).
printf 'cpus = 2\nno-such-key = 1\n' > "$WORK/config"
OUT=$(MVM_SYSTEM_CONFIG="$WORK/config" "$MVM" doctor 2>&1)
assert_eq 1 "$?" "doctor exits 1 with a malformed config"
assert_contains "$(line "$OUT" config)" "$WORK/config:2" "it names the file and line"

# Usage errors are mvm's 125; --help is 0.
"$MVM" doctor --frobnicate > /dev/null 2>&1
assert_eq 125 "$?" "an unknown option exits 125"
"$MVM" doctor --kernel > /dev/null 2>&1
assert_eq 125 "$?" "--kernel without a value exits 125"
assert_contains "$("$MVM" doctor --help)" "Usage: mvm doctor" "doctor --help"

# Not root: told so, and the root-only checks are not claimed.
if command -v setpriv > /dev/null; then
    OUT=$(cd / && setpriv --reuid=65534 --regid=65534 --clear-groups "$REAL_MVM" doctor 2>&1)
    assert_contains "$(line "$OUT" root)" "warn" "as nobody, the root check warns"
    assert_contains "$(line "$OUT" nftables)" "not checked: needs root" "and nftables is not claimed"
fi
