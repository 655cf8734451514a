#!/bin/bash
# The holes mvm opens on request, in the simulated host of the network
# tests (net-topology.sh): --publish reaches a server in the guest from the
# host's loopback (TCP and UDP) and nothing else; a second session asking
# for the same port fails at once and leaves nothing; --allow-host and
# --allow-lan open exactly their port and host -- each hole checked with
# its neighbour refused right after it; teardown and kill -9 leave no hole.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/net-topology.sh"
host_links() { ip -n "$NS_HOST" -o link show | grep -c ' mvm-' || true; }
holes() { ip netns exec "$NS_HOST" nft -j list set inet mvm host_ports 2> /dev/null | python3 -c '
import json, sys
for item in json.load(sys.stdin)["nftables"]:
    for e in item.get("set", {}).get("elem", []):
        print("%s.%s" % tuple(e["concat"]))' | tr '\n' ' '; }

# Neighbours that listen, so that a refusal can only be mvm's: a second
# LAN host, another port on the LAN host, and two ports on the host.
ip -n "$NS_LAN" addr add 192.168.77.11/24 dev eth0
serve "$NS_LAN" 192.168.77.11 80 lan11-page
serve "$NS_LAN" 192.168.77.10 81 lan81-page
serve "$NS_HOST" 0.0.0.0 8002 host8002-page
serve "$NS_HOST" 0.0.0.0 8003 host8003-page
wait_served 192.168.77.11:80 192.168.77.10:81 203.0.113.2:8002 203.0.113.2:8003

cat > "$PROJECT/udpecho.py" << 'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(b"echo:" + data, peer)
PY
mkdir -p "$PROJECT/www"
echo guest-page > "$PROJECT/www/index.html"
chmod -R a+rX "$PROJECT"

# Session A: every kind of hole.  In the guest, each hole next to its
# neighbour, then a web server and a UDP echo for --publish.
links_before=$(host_links)
bg_mvm a -q --dns 198.51.100.53 --publish 8081:8000 --publish 5353:5353/udp --allow-host 8002 \
    --allow-lan 192.168.77.10:80 -- sh -c '
python3 probe.py tcp=198.51.100.80:80 tcp=203.0.113.2:8002 http=http://10.0.2.2:8002/ \
    tcp=203.0.113.2:8003 tcp=10.0.2.2:8003 http=http://192.168.77.10/ tcp=192.168.77.11:80 \
    tcp=192.168.77.10:81 name=lan.test name=lan11.test
python3 -m http.server --directory www 8000 > /dev/null 2>&1 &
python3 udpecho.py &
echo up; exec sleep 60'
a=$BG
A="$WORK/a.out"
assert_eq "tcp=198.51.100.80:80 ok fast" "$(line tcp=198.51.100.80:80 "$A")" "positive control: the WAN"
assert_eq "tcp=203.0.113.2:8002 ok fast" "$(line tcp=203.0.113.2:8002 "$A")" "--allow-host 8002 reaches the host by its address"
assert_eq "http=http://10.0.2.2:8002/ host8002-page" "$(line http=http://10.0.2.2:8002/ "$A")" "--allow-host 8002 reaches the host at the gateway address"
refused "$(line tcp=203.0.113.2:8003 "$A")" "the host's next port stays refused"
refused "$(line tcp=10.0.2.2:8003 "$A")" "the gateway's next port stays refused"
assert_eq "http=http://192.168.77.10/ lan-page" "$(line http=http://192.168.77.10/ "$A")" "--allow-lan 192.168.77.10:80 reaches it"
refused "$(line tcp=192.168.77.11:80 "$A")" "the next LAN host stays refused"
refused "$(line tcp=192.168.77.10:81 "$A")" "the LAN host's next port stays refused"
assert_eq "name=lan.test 192.168.77.10" "$(line name=lan.test "$A")" "a name may resolve to an --allow-lan address"
assert_eq "name=lan11.test unresolved" "$(line name=lan11.test "$A")" "a name resolving to another LAN address is still dropped"

# --publish: the guest's server from the host's loopback, TCP and UDP.
for _ in $(seq 100); do
    page=$(inh python3 -c 'import urllib.request as u; print(u.urlopen("http://127.0.0.1:8081/", timeout=2).read().decode().strip())' 2> /dev/null) && break
    sleep 0.1
done
assert_eq guest-page "${page:-}" "--publish 8081:8000 reaches the guest's web server from 127.0.0.1"
echo_reply=$(inh python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
for _ in range(20):
    s.sendto(b"ping", ("127.0.0.1", 5353))
    try:
        print(s.recv(100).decode()); break
    except OSError:
        pass')
assert_eq "echo:ping" "$echo_reply" "--publish 5353:5353/udp reaches the guest's UDP server and back"
# Only on loopback: the host's other addresses do not have it.
lan_try=$(ip netns exec "$NS_LAN" python3 -c '
import socket
try:
    socket.create_connection(("192.168.77.1", 8081), timeout=2); print("open")
except OSError as e:
    print(socket.errno.errorcode.get(e.errno, "error"))')
assert_eq ECONNREFUSED "$lan_try" "the published port is not on the host's LAN address"
relay=$(pgrep -P "$a" -f __port-relay)
if [ -n "$relay" ]; then
    assert_jailed_helper "$relay" "the port relay"
    qemu=$(pgrep -P "$a" -f qemu-system | head -1)
    [ -n "$qemu" ] && [ "$(readlink "/proc/$relay/ns/net")" = "$(readlink "/proc/$qemu/ns/net")" ] &&
        ok "the port relay is in the session's network namespace" || fail "the port relay is not in QEMU's namespace"
else
    fail "no port relay below mvm $a"
fi
assert_contains "$(holes)" "mvm-" "the session's --allow-host hole is in the host table"

# A second session asking for the same port: one clear line, at once,
# nothing left behind.
runs=$(ls /run/mvm | wc -l)
in_host_mvm -q --publish 8081:80 -- true
assert_eq 125 "$RC" "a second session on a published port fails"
assert_contains "$ERR" "127.0.0.1:8081/tcp is in use (another session or program has it); pick another host port" "and says why"
assert_eq 1 "$(echo "$ERR" | wc -l)" "in one line"
assert_eq "$runs $((links_before + 1))" "$(ls /run/mvm | wc -l) $(host_links)" "and leaves no session directory or veth"
in_host_mvm -q --publish 8082:80/sctp -- true
assert_eq 125 "$RC" "a bad --publish fails"
assert_contains "$ERR" "bad --publish '8082:80/sctp': use [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp]" "and shows the form"
in_host_mvm -q --net none --allow-host 80 -- true
assert_contains "$RC $ERR" "125 mvm: --net none has no network" "--net none refuses holes"

kill -TERM "$a"
wait "$a" 2> /dev/null
assert_eq "" "$(holes)" "teardown removed the session's hole from the host table"
assert_eq "$links_before" "$(host_links)" "teardown removed the veth"
freed=$(inh python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 8081)); u = socket.socket(2, 2); u.bind(("127.0.0.1", 5353)); print("free")')
assert_eq free "$freed" "the published ports are free again"

# kill -9: the hole stays behind under a number that no interface has, so
# it opens nothing, and mvm cleanup removes it.
bg_mvm c -q --dns 198.51.100.53 --allow-host 8002 --publish 8081:8000 -- sh -c 'echo up; exec sleep 60'
c=$BG
kill -KILL "$c"
wait "$c" 2> /dev/null
for _ in $(seq 50); do [ "$(host_links)" = "$links_before" ] && break; sleep 0.1; done
assert_eq "$links_before" "$(host_links)" "after kill -9 the veth went with the namespace"
case "$(holes)" in
[0-9]*.8002\ ) ok "the killed session's hole names a gone interface ($(holes))" ;;
*) fail "after kill -9 the host table holds [$(holes)]" ;;
esac
ip netns exec "$NS_HOST" "$REAL_MVM" cleanup > /dev/null
assert_eq "" "$(holes)" "mvm cleanup removed the stale hole"
freed=$(inh python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 8081)); print("free")')
assert_eq free "$freed" "the killed session's published port is free again"
assert_no_leftovers "after the sessions with holes"
