#!/bin/bash
# What networking costs and how fast it is, in the hermetic topology of the
# network tests (tests/integration/net-topology.sh: a simulated host, WAN
# and LAN in namespaces of their own; nothing leaves them):
#   - what --net isolated adds to `mvm run -- true` over --net none,
#   - guest -> WAN download throughput (200 MB over HTTP),
#   - DNS latency through mvm's relay (guest -> relay -> dnsmasq).
# Usage: sudo bench/net.sh [RUNS] [MVM_BINARY]   (defaults: 7, build/mvm)
# Prints medians and the ratio to each goal.
set -uo pipefail
RUNS=${1:-7}
MVM=$(realpath "${2:-$(dirname "$0")/../build/mvm}")
export MVM
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }
. "$(dirname "$0")/../tests/integration/lib.sh"
. "$(dirname "$0")/../tests/integration/net-topology.sh"
. "$(dirname "$0")/lib.sh"
guest() { (cd "$PROJECT" && ip netns exec "$NS_HOST" "$REAL_MVM" run -q --dns 198.51.100.53 "$@"); }

guest --net none -- true # warm both initramfs variants
guest -- true
: > "$WORK/none"
: > "$WORK/net"
for _ in $(seq "$RUNS"); do # alternated, so drift hits both alike
    t0=$(now); guest --net none -- true; t1=$(now); guest -- true; t2=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >> "$WORK/none"
    awk -v a="$t1" -v b="$t2" 'BEGIN {print b - a}' >> "$WORK/net"
done
none=$(median < "$WORK/none")
net=$(median < "$WORK/net")
added=$(awk -v a="$none" -v b="$net" 'BEGIN {printf "%.0f", (b - a) * 1000}')
echo "mvm run -- true: --net none ${none}s, --net isolated ${net}s (medians of $RUNS): networking adds ${added} ms; goal 100 ms: $(awk -v x="$added" 'BEGIN {printf "%.2f", x / 100}')x of goal"

head -c 200M /dev/zero > "$WORK/www-$NS_WAN-198.51.100.80-80/big"
cat > "$PROJECT/dl.py" << 'PY'
import socket, sys, time, urllib.request
if sys.argv[1] == "dl":
    t = time.monotonic(); n = 0
    with urllib.request.urlopen("http://198.51.100.80/big", timeout=60) as r:
        while True:
            b = r.read(1 << 20)
            if not b: break
            n += len(b)
    assert n == 200 << 20, n
    print("%.1f" % (n / (time.monotonic() - t) / 1e6))
else:
    ts = []
    for i in range(int(sys.argv[2])):
        t = time.monotonic(); socket.gethostbyname("web.test"); ts.append((time.monotonic() - t) * 1000)
    ts.sort(); print("%.2f" % ts[len(ts) // 2])
PY
chmod 644 "$PROJECT/dl.py"
for _ in 1 2 3; do guest -- python3 dl.py dl; done > "$WORK/tput"
echo "guest -> WAN download: median $(median < "$WORK/tput") MB/s over 3 runs of 200 MB"
echo "DNS through the relay: median $(guest -- python3 dl.py dns 200) ms per lookup (200 lookups)"
