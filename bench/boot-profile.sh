#!/bin/bash
# Where the time of `mvm run -- true` goes (issue 14), medians of RUNS:
#  1. mvm's own steps (MVM_TRACE=1): the host's clock for mvm's lines,
#     the guest's for mvm-init's.
#  2. The same kernel and command line booted alone by QEMU (microvm,
#     TCG, no devices but the serial port) into a busybox init that
#     powers off: the host's time of landmark messages (earlyprintk),
#     each segment named after what the kernel does in it.
#  3. The same, with initcall_debug: the initcalls' sum and the slowest.
# Usage: sudo [MVM_KERNEL=K] bench/boot-profile.sh [RUNS] [MVM_BINARY]
# (defaults: 5, build/mvm; MVM_KERNEL: mvm run --kernel K, such as the
# kernel made for mvm from contrib/kernel/build.sh).
# Needs busybox-static, cpio and Debian's python3 (to timestamp the
# console's lines as they arrive).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS=${1:-5}
MVM=$(realpath "${2:-$(dirname "$0")/../build/mvm}")
bench_setup "$MVM"
for t in /bin/busybox cpio /usr/bin/python3 qemu-system-x86_64; do
    command -v "$t" > /dev/null ||
        { echo "boot-profile.sh needs $t: apt-get install busybox-static cpio python3 qemu-system-x86" >&2; exit 1; }
done
work=$(mktemp -d /tmp/mvm-bench-profile.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cd "$work"

# 1. mvm's steps.
kernel=(${MVM_KERNEL:+--kernel "$MVM_KERNEL"})
"$MVM" run -q "${kernel[@]}" -- true # warm the caches
for i in $(seq "$RUNS"); do
    MVM_TRACE=1 "$MVM" run -q "${kernel[@]}" -- true 2> "trace.$i"
done
line=$(grep -h -m1 ', command line ' trace.1) ||
    { echo "$MVM printed no kernel command line under MVM_TRACE=1" >&2; exit 1; }
vmlinux=${line#*: +*ms kernel }
vmlinux=${vmlinux%%, command line *}
cmdline=${line#*, command line }
echo "mvm run -- true, MVM_TRACE=1, medians of $RUNS (ms since mvm started; mvm-init: since the guest kernel started):"
cat trace.* | sed -n -E 's/^(mvm|mvm-init): \+([0-9]+)ms (.*)$/\1\t\3\t\2/p' |
    grep -v -F ', command line ' | grep -v -E ': \+[0-9]+ms .*: \+[0-9]+ms' |
    awk -F'\t' '{k=$1": "$2; if (!(k in seen)) {seen[k]=1; order[++n]=k} v[k]=v[k]" "$3}
        END {for (i=1; i<=n; i++) print order[i] "\t" v[order[i]]}' |
    while IFS=$'\t' read -r what values; do
        printf '  %6s ms  %s\n' "$(tr ' ' '\n' <<< "$values" | grep . | median 0)" "$what"
    done

# 2 and 3: the kernel alone.
mkdir -p root/bin root/dev root/proc
cp /bin/busybox root/bin/busybox
mknod -m 600 root/dev/console c 5 1
cat > root/init << 'EOF'
#!/bin/busybox sh
/bin/busybox echo MVM-PROFILE-INIT
/bin/busybox mount -t proc proc /proc
/bin/busybox grep -q initcall_debug /proc/cmdline && /bin/busybox dmesg
/bin/busybox poweroff -f
EOF
chmod 755 root/init
(cd root && find . | cpio -o -H newc --quiet) > initrd
cat > stamp.py << 'EOF'
import subprocess, sys, time
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
for raw in p.stdout:
    print("%.4f %s" % (time.monotonic() - t0, raw.decode(errors="replace").rstrip()))
p.wait()
print("%.4f MVM-PROFILE-EXIT" % (time.monotonic() - t0))
EOF
alone=${cmdline/ quiet/}
alone=${alone/ mvm.trace/}
boot() {
    /usr/bin/python3 stamp.py qemu-system-x86_64 -nodefaults -no-user-config -display none \
        -no-reboot -machine microvm,memory-backend=mem \
        -object memory-backend-memfd,id=mem,size=1024M,share=on -m 1024M -smp 2 \
        -accel tcg,tb-size=128 -cpu max -kernel "$vmlinux" -initrd initrd \
        -append "$alone $1" -serial stdio
}
# Landmarks in the order the kernel prints them: a segment ends at its
# landmark and is named after the work between it and the one before.
landmarks=(
    "Linux version|QEMU starts, enters the kernel"
    "ftrace: allocating|memory map, ACPI tables, page allocator"
    "ftrace: allocated|ftrace: mcount call sites made nops"
    "x86/fpu: Enabled xstate|RCU, IRQs, console, clocks, CPU checks"
    "Freeing SMP alternatives|alternatives patched into the kernel text"
    "calibrating APIC timer|LSMs, vfs caches"
    "smpboot: CPU0|local APIC timer calibrated against the PIT (HZ/10)"
    "smp: Brought up|second vCPU brought up"
    "Freeing unused kernel image|initcalls: drivers, subsystems (3. below)"
    "Run /init|init memory freed"
    "MVM-PROFILE-INIT|busybox init's first write"
    "MVM-PROFILE-EXIT|power-off, QEMU exits"
)
boot "earlyprintk=serial,ttyS0 loglevel=7 apic=debug" > /dev/null # warm the page cache
for i in $(seq "$RUNS"); do
    boot "earlyprintk=serial,ttyS0 loglevel=7 apic=debug" > "console.$i"
    grep -q MVM-PROFILE-INIT "console.$i" || { echo "the kernel alone did not reach init:" >&2; tail -5 "console.$i" >&2; exit 1; }
    prev=0
    for l in "${landmarks[@]}"; do
        t=$(grep -m1 -F -- "${l%%|*}" "console.$i" | cut -d' ' -f1) || continue
        echo "$(awk -v a="$prev" -v b="$t" 'BEGIN {printf "%.0f", (b - a) * 1000}') ${l#*|}" >> segments
        prev=$t
    done
    echo "$(awk -v b="$prev" 'BEGIN {printf "%.0f", b * 1000}') total" >> segments
done
echo "the kernel alone ($vmlinux, mvm's command line, microvm, TCG), host clock, medians of $RUNS:"
for l in "${landmarks[@]}" "|total"; do
    what=${l#*|}
    vals=$(awk -v w="$what" '{n = $1; $1 = ""; sub(/^ /, ""); if ($0 == w) print n}' segments)
    [ -n "$vals" ] && printf '  %6s ms  %s\n' "$(median 0 <<< "$vals")" "$what"
done

for i in $(seq "$RUNS"); do
    boot "initcall_debug log_buf_len=4M" > "initcalls.$i"
    sed -n -E 's/.*initcall ([^ ]+)\+0x[0-9a-f]+\/0x[0-9a-f]+ returned .* after ([0-9]+) usecs.*/\1 \2/p' \
        "initcalls.$i" > "ic.$i"
    [ -s "ic.$i" ] || { echo "no initcall_debug lines from the kernel alone" >&2; exit 1; }
    awk '{s += $2} END {printf "%.0f\n", s / 1000}' "ic.$i" >> ic.sum
done
echo "its initcalls (initcall_debug, guest clock, medians of $RUNS): $(median 0 < ic.sum) ms in" \
    "$(wc -l < ic.1) calls; the slowest:"
cat ic.* | awk '{v[$1]=v[$1]" "$2} END {for (k in v) print k "\t" v[k]}' |
    while IFS=$'\t' read -r name values; do
        echo "$(tr ' ' '\n' <<< "$values" | grep . | median 0) $name"
    done | sort -rn | head -12 | awk '{printf "  %6.1f ms  %s\n", $1 / 1000, $2}'
