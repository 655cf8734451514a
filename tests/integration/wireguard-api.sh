#!/bin/bash
# --api-key with --wireguard: the gateway's upstream is the tunnel too.
# The stand-in for api.anthropic.com (api-standin.sh) listens behind the
# tunnel only, at 192.0.2.90 in the WireGuard server's namespace
# (wg-server.sh), whose resolver answers the name with that address; the
# WAN's resolver answers it with a decoy stand-in on the WAN, which must
# get nothing.  The guest's request reaches the stand-in through the
# gateway, with the real key and the provider's Host; its name was asked
# at the tunnel's resolver alone; wan0 carries nothing but the tunnel's
# UDP; an upstream in the LAN is refused to the gateway; allow= naming
# the provider works through the tunnel.  Then the server is killed: the
# guest's next request ends with the gateway's 502 line within a bound,
# and still nothing but the tunnel's UDP leaves.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/net-topology.sh"
. "$(dirname "$0")/wg-server.sh"
. "$(dirname "$0")/api-standin.sh"
conf "$WORK/wg.conf" 600
standin "$NS_WG" 192.0.2.90
wg_served 192.0.2.90:443
wan_count

KEY=sk-ant-api03-REAL-$$-$RANDOM-secret
export KEY
# The gateway gives up a dead upstream within this many seconds (its TCP
# user timeout, then a fresh connection's connect timeout); the guest
# waits longer, so a hang shows as its own timeout.
BOUND=50
# call.py NAME [PORT]: one request to the gateway (at the base URL's
# port, or PORT), "NAME STATUS TEXT in=SECONDS".
cat > "$PROJECT/call.py" << PY
import json, os, sys, time, urllib.error, urllib.request
base = os.environ["ANTHROPIC_BASE_URL"]
if len(sys.argv) > 2:
    base = base.rsplit(":", 1)[0] + ":" + sys.argv[2]
req = urllib.request.Request(base + "/v1/messages", data=b'{"model": "m"}',
                             headers={"x-api-key": os.environ["ANTHROPIC_API_KEY"],
                                      "content-type": "application/json"})
t = time.monotonic()
try:
    r = "200 " + json.load(urllib.request.urlopen(req, timeout=$((BOUND + 40))))["content"][0]["text"]
except urllib.error.HTTPError as e:
    r = "%d %s" % (e.code, e.read().decode().strip())
except Exception as e:
    r = "failed %s" % e
print(sys.argv[1], r, "in=%d" % (time.monotonic() - t), flush=True)
PY
chmod 644 "$PROJECT/call.py"
LOG=$WORK/standin-192.0.2.90.log

ANTHROPIC_API_KEY=$KEY LAN_KEY=lan-$KEY bg_mvm a -q --wireguard "$WORK/wg.conf" --api-key anthropic \
    --api-ca "$WORK/ca.pem" --api-key custom:https://192.168.77.10:80:x-lan-key=LAN_KEY -- sh -c '
python3 call.py first; python3 call.py lan 7481; echo up
while [ ! -e go2 ]; do sleep 0.2; done
python3 call.py dead; echo done2; exec sleep 120'
a=$BG
A=$WORK/a.out
case "$(line first "$A")" in
"first 200 standin-reply in="*) ok "through the tunnel the guest's request gets the stand-in's reply" ;;
*) fail "the request through the tunnel: [$(line first "$A")] (stderr: $(cat "$WORK/a.err"))" ;;
esac
standin_saw "$LOG" 1 "the stand-in behind the tunnel got the request"
assert_eq 0 "$(wc -l < "$WORK/standin-198.51.100.90.log")" "the WAN's api.anthropic.com got nothing"
assert_contains "$(cat "$WORK/dnsmasq-wg.log")" "query[A] api.anthropic.com from 10.66.0.2" \
    "the gateway's name was asked at the tunnel's resolver, through the tunnel"
assert_not_contains "$(cat "$WORK/dnsmasq.log")" "query[" "and nothing at the WAN's resolver"
case "$(line lan "$A")" in
"lan 502 mvm api gateway: https://192.168.77.10:80: "*"onnect"*) ok "an upstream in the LAN is refused to the gateway ($(line lan "$A"))" ;;
*) fail "an upstream in the LAN: [$(line lan "$A")]" ;;
esac
tunnel=$(count tunnel)
if [ "$tunnel" -gt 0 ]; then ok "the tunnel's UDP left through wan0 ($tunnel packets)"; else fail "no tunnel packet on wan0"; fi
assert_tunnel_only "nothing but the tunnel's UDP left through wan0 (no TCP 443 outside it)"

# allow= naming the provider, inside the tunnel (the same peer, from a
# port of its own).
ANTHROPIC_API_KEY=$KEY in_host_mvm -q --wireguard "$WORK/wg.conf" --net allow=api.anthropic.com \
    --api-key anthropic --api-ca "$WORK/ca.pem" -- python3 call.py allow
case "$RC $OUT" in
"0 allow 200 standin-reply in="*) ok "with --net allow=api.anthropic.com the gateway reaches the provider through the tunnel" ;;
*) fail "allow= through the tunnel: [$RC $OUT]" ;;
esac
standin_saw "$LOG" 2 "that request reached the stand-in behind the tunnel"
assert_tunnel_only "and nothing but the tunnel's UDP left through wan0"

# The server gone: the gateway's connection to the stand-in is dead and
# no new one can be made; the guest gets the 502 line within the bound.
kill "$WGS"
wait "$WGS" 2> /dev/null
touch "$PROJECT/go2"
for _ in $(seq $(((BOUND + 60) * 10))); do grep -q done2 "$A" && break; sleep 0.1; done
dead=$(line dead "$A")
case "$dead" in
"dead 502 mvm api gateway: https://api.anthropic.com:443: "*) ok "with the tunnel dead the guest gets the gateway's 502 ($dead)" ;;
*) fail "with the tunnel dead: [$dead]" ;;
esac
secs=${dead##*in=}
if [ -n "$secs" ] && [ "$secs" -le "$BOUND" ] 2> /dev/null; then
    ok "within ${BOUND}s (${secs}s)"
else
    fail "the 502 took [$secs] s, over ${BOUND}s"
fi
assert_eq 2 "$(wc -l < "$LOG")" "nothing reached the stand-in"
assert_tunnel_only "still nothing but the tunnel's UDP left through wan0"
assert_not_contains "$(cat "$WORK/dnsmasq.log")" "query[" "nor reached the WAN's resolver"

kill -TERM "$a"
wait "$a"
assert_eq 143 "$?" "the session ends on SIGTERM with status 143"
assert_no_leftovers "after the --wireguard --api-key sessions"
