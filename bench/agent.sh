#!/bin/bash
# What the agent-ready guest costs: `mvm run -- true` with and without
# program resolution, the scratch disk and a volume, as medians of RUNS
# runs each, run through SUDO_UID as a throwaway user (resolution looks at
# a user's PATH); and the disk space a session's scratch disk and a new
# volume take at rest.
# Usage: sudo bench/agent.sh [RUNS] [MVM_BINARY]     (defaults: 7, build/mvm)
set -euo pipefail
RUNS=${1:-7}
MVM=$(realpath "${2:-$(dirname "$0")/../build/mvm}")
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }
[ -x "$MVM" ] || { echo "no mvm binary at $MVM" >&2; exit 1; }
USER_NAME=mvm-bench
work=$(mktemp -d /tmp/mvm-bench.XXXXXX)
made_user=no
VOL=bench-$$
cleanup() {
    SUDO_UID=${BUID:-} SUDO_GID=${BGID:-} SUDO_USER=$USER_NAME "$MVM" volume rm "$VOL" > /dev/null 2>&1 || true
    [ "$made_user" = yes ] && userdel -r "$USER_NAME" > /dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
if ! id "$USER_NAME" > /dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$USER_NAME"
    made_user=yes
fi
BUID=$(id -u "$USER_NAME")
BGID=$(id -g "$USER_NAME")
chmod 755 "$work"
chown "$USER_NAME:" "$work"
cd "$work"

stats() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.3f\n\", $1 }"; }
run() { SUDO_UID=$BUID SUDO_GID=$BGID SUDO_USER=$USER_NAME "$MVM" run -q --net none "$@"; }
# The variants take turns, run by run, so a machine that slows down
# slows them all alike.
variants=(base resolve disk volume)
args_base=(--no-resolve --disk none -- true)
args_resolve=(--disk none -- true)
args_disk=(--no-resolve -- true)
args_volume=(--no-resolve --disk none --volume "$VOL:/data" -- true)
for v in "${variants[@]}"; do # warm the initramfs cache of each module set
    eval "run \"\${args_$v[@]}\"" > /dev/null
done
for _ in $(seq "$RUNS"); do
    for v in "${variants[@]}"; do
        t0=$(now)
        eval "run \"\${args_$v[@]}\"" > /dev/null
        t1=$(now)
        calc "$t1 - $t0" >> "$work/$v"
    done
done
base=$(stats < "$work/base")
resolve=$(stats < "$work/resolve")
disk=$(stats < "$work/disk")
volume=$(stats < "$work/volume")
echo "mvm run -- true, medians of $RUNS runs (--net none):"
echo "  base (--no-resolve --disk none):  ${base}s"
echo "  + program resolution:             ${resolve}s  (+$(calc "($resolve - $base) * 1000") ms, $(calc "$resolve / $base")x)"
echo "  + 8G scratch disk (the default):  ${disk}s  (+$(calc "($disk - $base) * 1000") ms, $(calc "$disk / $base")x)"
echo "  + a volume:                       ${volume}s  (+$(calc "($volume - $base) * 1000") ms, $(calc "$volume / $base")x)"

# At rest: the scratch disk of a running session (QEMU holds it, unlinked)
# and the new volume's image.
run --no-resolve -- sleep 8 > /dev/null &
bg=$!
img_kib=""
for _ in $(seq 100); do
    for q in $(pgrep -f qemu-system-x86_64); do
        for fd in /proc/$q/fd/*; do
            case "$(readlink "$fd")" in */scratch/*.img*) img_kib=$(($(stat -L -c %b "$fd") / 2)) ;; esac
        done
    done
    [ -n "$img_kib" ] && break
    sleep 0.1
done
wait "$bg"
vol_kib=$(du -k "/var/lib/mvm/volumes/$BUID/$VOL.ext4" | cut -f1)
echo "disk space at rest: scratch disk (8G, sparse) ${img_kib:-?} KiB; new volume (4G) ${vol_kib} KiB"
