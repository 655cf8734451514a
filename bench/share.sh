#!/bin/bash
# virtiofs throughput of a read-write share: one large file written and
# read (MB/s), many small files created and read (files/s), in the guest
# and on the host, on the same directory.  The guest runs the same Python
# script as the host; it drops its own page cache between writing and
# reading (so reads go through virtiofs), the host keeps its cache (so
# both sides read what the host has cached: the difference is virtiofs).
# Writes are not synced on either side.  The guest runs twice per round:
# with the disk guard of the default --min-free (its seccomp filter and
# sampling) and with --min-free 0 (no guard), to show what the guard costs.
# Then the disk guard's overshoot: on a tmpfs of its own, --share-limit
# 64M and 1 or 8 guest writers (dd, 1 MiB blocks, and O_DIRECT with 8 MiB
# blocks) that never stop; what the host filesystem holds beyond 64 MiB
# when mvm has stopped the session.
# Usage: sudo bench/share.sh [RUNS] [SIZE_MIB] [FILES] [BUILD_DIR]
#        (defaults: 5, 256, 1000, build).  Prints medians (and maxima).
set -euo pipefail
RUNS=${1:-5}
SIZE=${2:-256}
FILES=${3:-1000}
BUILD=$(realpath "${4:-$(dirname "$0")/../build}")
MVM=$BUILD/mvm
[ -x "$MVM" ] || { echo "no $MVM: build mvm first (cmake --build $BUILD)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run it as root (sudo): mvm starts QEMU and virtiofsd" >&2; exit 1; }
work=$(mktemp -d /tmp/mvm-bench-share.XXXXXX)
chmod 755 "$work"
fs=$work/fs
mkdir -p "$fs"
trap 'umount -l "$fs" 2> /dev/null; rm -rf "$work"' EXIT
cat > "$work/io.py" << 'EOF'
import os, sys, time
phase, d, size_mib, nfiles = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
chunk = b"\0" * (1 << 20)
small = b"x" * 4096
big, sd = os.path.join(d, "big"), os.path.join(d, "small")
def timed(f):
    t = time.monotonic(); f(); return time.monotonic() - t
def write_big():
    with open(big, "wb") as f:
        for _ in range(size_mib): f.write(chunk)
def read_big():
    with open(big, "rb", buffering=0) as f:
        while f.read(1 << 20): pass
def create():
    os.makedirs(sd, exist_ok=True)
    for i in range(nfiles):
        with open(os.path.join(sd, "f%d" % i), "wb") as f: f.write(small)
def read_small():
    for i in range(nfiles):
        with open(os.path.join(sd, "f%d" % i), "rb") as f: f.read()
mb = size_mib * 1048576 / 1e6
if phase == "write":
    print("write_mbps %.1f" % (mb / timed(write_big)))
    print("create_fps %.0f" % (nfiles / timed(create)))
else:
    print("read_mbps %.1f" % (mb / timed(read_big)))
    print("read_fps %.0f" % (nfiles / timed(read_small)))
EOF
proj=$work/project
round() { # where: host | guard | noguard
    rm -rf "$proj"
    mkdir -p "$proj"
    cp "$work/io.py" "$proj/"
    local args="$SIZE $FILES" sh
    sh="python3 io.py write . $args && echo 3 > /proc/sys/vm/drop_caches && python3 io.py read . $args"
    case $1 in
    host) (cd "$proj" && python3 io.py write . $args && python3 io.py read . $args) ;;
    guard) (cd "$proj" && "$MVM" run -q --net none --no-resolve --root -- sh -c "$sh") ;;
    noguard) (cd "$proj" && "$MVM" run -q --net none --no-resolve --root --min-free 0 -- sh -c "$sh") ;;
    esac
}
for _ in $(seq "$RUNS"); do
    for where in host guard noguard; do round "$where" | sed "s/^/$where /"; done
done > "$work/results"
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else printf "%.1f\n", (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
get() { awk -v w="$1" -v k="$2" '$1 == w && $2 == k {print $3}' "$work/results" | median; }
echo "virtiofs on $(df --output=source,fstype "$work" | tail -1 | tr -s ' '), medians of $RUNS:"
printf '%-34s %10s %10s %10s\n' "" host guest "guest, no guard"
printf '%-34s %10s %10s %10s\n' "write one ${SIZE} MiB file (MB/s)" "$(get host write_mbps)" "$(get guard write_mbps)" "$(get noguard write_mbps)"
printf '%-34s %10s %10s %10s\n' "read it (MB/s)" "$(get host read_mbps)" "$(get guard read_mbps)" "$(get noguard read_mbps)"
printf '%-34s %10s %10s %10s\n' "create ${FILES} 4 KiB files (files/s)" "$(get host create_fps)" "$(get guard create_fps)" "$(get noguard create_fps)"
printf '%-34s %10s %10s %10s\n' "read them (files/s)" "$(get host read_fps)" "$(get guard read_fps)" "$(get noguard read_fps)"

# The overshoot.  setsid: no terminal, so mvm stops the session (122).
mount -t tmpfs -o size=1G,mode=755 mvm-bench-share "$fs"
overshoot() { # writers dd-args
    local n=$1 used
    shift
    rm -rf "${fs:?}"/*
    mkdir "$fs/p"
    (cd "$fs/p" && setsid -w "$MVM" run -q --net none --no-resolve --root --share-limit 64M -- \
        sh -c "for i in \$(seq $n); do dd if=/dev/zero of=w\$i $* 2> /dev/null & done; wait" < /dev/null > /dev/null 2>&1) || true
    used=$(stat -f -c '%b %f %S' "$fs" | awk '{print ($1 - $2) * $3}')
    echo $(((used - 64 * 1048576) / 1024))
}
echo
echo "disk guard overshoot beyond --share-limit 64M (KiB; median / max of $RUNS):"
for spec in "1 bs=1M" "8 bs=1M" "8 bs=8M oflag=direct"; do
    for _ in $(seq "$RUNS"); do overshoot $spec; done > "$work/over"
    printf '  %-36s %8s / %s\n' "$(echo "$spec" | sed 's/^\([0-9]*\) /\1 writer(s), /')" "$(median < "$work/over")" "$(sort -n "$work/over" | tail -1)"
done
