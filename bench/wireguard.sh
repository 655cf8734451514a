#!/bin/bash
# What --wireguard costs, in the hermetic topology of the network tests
# (tests/integration/net-topology.sh and wg-server.sh: a simulated host,
# WAN and LAN, and a WireGuard server behind the WAN; nothing leaves
# them):
#   - what the tunnel adds to `mvm run -- true` over the host's uplink,
#   - guest download throughput through the tunnel (SIZE_MB over HTTP),
#     and the same download over the host's uplink.
# Usage: sudo bench/wireguard.sh [RUNS] [SIZE_MB] [MVM_BINARY]
#        (defaults: 5, 50, build/mvm).  Prints medians.
set -uo pipefail
RUNS=${1:-5}
SIZE=${2:-50}
MVM=$(realpath "${3:-$(dirname "$0")/../build/mvm}")
export MVM
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }
. "$(dirname "$0")/../tests/integration/lib.sh"
. "$(dirname "$0")/../tests/integration/net-topology.sh"
. "$(dirname "$0")/../tests/integration/wg-server.sh"
conf "$WORK/wg.conf" 600
. "$(dirname "$0")/lib.sh"
guest() { (cd "$PROJECT" && ip netns exec "$NS_HOST" "$REAL_MVM" run -q "$@"); }
host_up=(--dns 198.51.100.53)
tunnel=(--wireguard "$WORK/wg.conf")

guest "${host_up[@]}" -- true # warm the caches
guest "${tunnel[@]}" -- true
: > "$WORK/host"
: > "$WORK/wg"
for _ in $(seq "$RUNS"); do # alternated, so drift hits both alike
    t0=$(now); guest "${host_up[@]}" -- true; t1=$(now); guest "${tunnel[@]}" -- true; t2=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >> "$WORK/host"
    awk -v a="$t1" -v b="$t2" 'BEGIN {print b - a}' >> "$WORK/wg"
done
h=$(median < "$WORK/host")
w=$(median < "$WORK/wg")
echo "mvm run -- true: host uplink median ${h}s, --wireguard median ${w}s over $RUNS runs each: the tunnel adds $(awk -v a="$h" -v b="$w" 'BEGIN {printf "%.3f", b - a}')s"

head -c "$((SIZE << 20))" /dev/urandom > "$WORK/www-$NS_WG-192.0.2.80-80/big"
cp "$WORK/www-$NS_WG-192.0.2.80-80/big" "$WORK/www-$NS_WAN-198.51.100.80-80/big"
cat > "$PROJECT/dl.py" << 'PY'
import sys, time, urllib.request
for url in sys.argv[1:]:
    t = time.monotonic()
    n = 0
    with urllib.request.urlopen(url, timeout=60) as r:
        while True:
            b = r.read(1 << 20)
            if not b:
                break
            n += len(b)
    dt = time.monotonic() - t
    print("%s %d bytes %.2f s %.1f MB/s" % (url, n, dt, n / dt / 1e6), flush=True)
PY
echo "through the tunnel: $(guest "${tunnel[@]}" -- /usr/bin/python3 dl.py http://192.0.2.80/big http://192.0.2.80/big | tail -1)"
echo "over the host's uplink: $(guest "${host_up[@]}" -- /usr/bin/python3 dl.py http://198.51.100.80/big http://198.51.100.80/big | tail -1)"
