#!/bin/bash
# What --api-key's gateway costs, in the hermetic topology of the network
# tests (tests/integration/net-topology.sh) with the TLS stand-in for
# api.anthropic.com of the --api-key tests (api-standin.sh).  In one
# guest, alternating, each on a new connection as an SDK opening one per
# request would:
#   - a small request (POST /v1/messages, a JSON reply): straight to the
#     stand-in over TLS from the guest, and through the gateway (plain
#     HTTP to it; it keeps its TLS connection upstream open);
#   - a streamed reply: the time to its first event, both ways;
#   - the small request again on one kept-alive connection each way:
#     what the gateway's hop itself costs, without handshakes.
# The guest checks no certificate on the direct path (it has no CA for
# the stand-in; the gateway checks it).  Prints medians and the
# difference.  Usage: sudo bench/gateway.sh [REQUESTS] [MVM_BINARY]
# (defaults: 50, build/mvm).  The guest runs under TCG on machines
# without usable KVM: both paths pay the same emulated TCP stack.
set -uo pipefail
N=${1:-50}
MVM=$(realpath "${2:-$(dirname "$0")/../build/mvm}")
export MVM
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }
. "$(dirname "$0")/../tests/integration/lib.sh"
. "$(dirname "$0")/../tests/integration/net-topology.sh"
. "$(dirname "$0")/../tests/integration/api-standin.sh"

cat > "$PROJECT/gwbench.py" << 'PY'
import http.client, json, os, socket, ssl, statistics, sys, time
n = int(sys.argv[1])
host, port = os.environ["ANTHROPIC_BASE_URL"][len("http://"):].split(":")
ctx = ssl._create_unverified_context()
body = json.dumps({"model": "m", "max_tokens": 1}).encode()
stream = json.dumps({"model": "m", "stream": True}).encode()
def conn(direct):
    if direct:
        return http.client.HTTPSConnection("198.51.100.90", 443, context=ctx, timeout=30)
    return http.client.HTTPConnection(host, int(port), timeout=30)
def small(direct):
    c = conn(direct); t = time.monotonic()
    c.request("POST", "/v1/messages", body, {"content-type": "application/json", "host": "api.anthropic.com"})
    c.getresponse().read(); c.close()
    return time.monotonic() - t
def first_event(direct):
    c = conn(direct); t = time.monotonic()
    c.request("POST", "/v1/messages", stream, {"content-type": "application/json", "host": "api.anthropic.com"})
    r = c.getresponse()
    while not r.readline().startswith(b"data:"):
        pass
    d = time.monotonic() - t; c.close()
    return d
kept = {}
def small_kept(direct):
    c = kept.get(direct) or kept.setdefault(direct, conn(direct)); t = time.monotonic()
    c.request("POST", "/v1/messages", body, {"content-type": "application/json", "host": "api.anthropic.com"})
    c.getresponse().read()
    return time.monotonic() - t
for f in (small, first_event, small_kept):
    f(True); f(False)  # warm: the gateway's upstream connection, caches
    a, b = [], []
    for _ in range(n):
        a.append(f(True)); b.append(f(False))
    da, db = statistics.median(a) * 1000, statistics.median(b) * 1000
    print("%s direct %.1f gateway %.1f" % (f.__name__, da, db), flush=True)
PY
chmod 644 "$PROJECT/gwbench.py"
out=$(cd "$PROJECT" && ANTHROPIC_API_KEY=sk-bench-not-a-key ip netns exec "$NS_HOST" "$REAL_MVM" run -q \
    --dns 198.51.100.53 --api-key anthropic --api-ca "$WORK/ca.pem" -- python3 gwbench.py "$N") ||
    die "the benchmark's session failed: $out"
while read -r what _ direct _ gw; do
    case $what in
    small) label="a small request (POST, JSON reply), new connection each" ;;
    first_event) label="a streamed reply's first event, new connection each" ;;
    *) label="a small request on a kept-alive connection" ;;
    esac
    echo "$label: direct TLS ${direct} ms, through the gateway ${gw} ms (medians of $N): the gateway adds $(awk -v a="$direct" -v b="$gw" 'BEGIN {printf "%.1f", b - a}') ms"
done <<< "$out"
