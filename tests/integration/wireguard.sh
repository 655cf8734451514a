#!/bin/bash
# --wireguard: the guest's only way out is the tunnel, in the simulated
# host of the network tests (net-topology.sh).  A WireGuard server
# (wireguard-go) in a namespace of its own behind the simulated WAN, which
# forwards only the tunnel's UDP to it, serves a page and a resolver on
# addresses reachable only through the tunnel.  The guest reaches them;
# it does not reach the WAN's own servers or the LAN; the simulated
# host's wan0 carries nothing but the tunnel's UDP, and after the server
# is gone nothing else either; DNS arrives at the tunnel's resolver and
# nowhere else; --net allow= applies inside the tunnel.  Bad configs
# fail with 125 and leave nothing.  The session's tunnel is the kernel's
# WireGuard where this host's kernel has it, else wireguard-go, whose
# process and UAPI socket are checked then (this host's and CI's kernels
# have none: wg-kernel.sh checks the kernel's way in a guest).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/net-topology.sh"

# As net/uplink-wg.c and mvm doctor decide it: whether a link of kind
# wireguard can be made (in a throwaway namespace).
WAY=wireguard-go
unshare -n ip link add mvmwgprobe type wireguard 2> /dev/null && WAY=kernel
echo "note: --wireguard takes the $WAY way on this host"

. "$(dirname "$0")/wg-server.sh"
conf "$WORK/wg.conf" 600 "" "ListenPort = 51821"

wan_count

runs_before
# The UAPI sockets but the server's.
wgsocks() { local f; for f in /var/run/wireguard/*.sock; do [ -e "$f" ] && [ "$f" != "/var/run/wireguard/$WG_IF.sock" ] && echo "$f"; done; true; }
socks_before=$(wgsocks)

# Bad configs: nothing starts, nothing is left.
conf "$WORK/open.conf" 644
in_host_mvm -q --wireguard "$WORK/open.conf" -- true
assert_contains "$RC $ERR" "125 mvm: $WORK/open.conf holds a private key but others than its owner may read it (mode 0644)" \
    "a config others may read is refused"
ensure_test_user
SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER in_host_mvm -q --wireguard "$WORK/wg.conf" -- true
assert_contains "$RC $ERR" "125 mvm: reading $WORK/wg.conf: Permission denied" \
    "a config the invoking user cannot read is refused (root's, mode 600)"
conf "$WORK/badkey.conf" 600 "c2hvcnQ="
in_host_mvm -q --wireguard "$WORK/badkey.conf" -- true
assert_contains "$RC $ERR" "125 mvm: $WORK/badkey.conf:2: PrivateKey is not a base64 WireGuard key" \
    "a key of the wrong length is refused with its line"
assert_not_contains "$ERR" "c2hvcnQ" "the bad key is not quoted"
grep -v '^DNS' "$WORK/wg.conf" > "$WORK/nodns.conf"
chmod 600 "$WORK/nodns.conf"
in_host_mvm -q --wireguard "$WORK/nodns.conf" -- true
assert_contains "$RC $ERR" "125 mvm: $WORK/nodns.conf: no IPv4 DNS line: give --dns ADDR" \
    "without a DNS line, --dns is required"
in_host_mvm -q --net none --wireguard "$WORK/wg.conf" -- true
assert_contains "$RC $ERR" "125 mvm: --net none has no network: --wireguard" "--net none is refused"
in_host_mvm -q --allow-host 8000 --wireguard "$WORK/wg.conf" -- true
assert_contains "$RC $ERR" "125 mvm: --allow-host needs the host's uplink: with --wireguard" \
    "--allow-host is refused: there is no way to the host"
assert_no_leftovers "after the refused configs"
assert_eq "$socks_before" "$(wgsocks)" "no UAPI socket left by them"

bg_mvm a -q --wireguard "$WORK/wg.conf" -- sh -c '
/usr/bin/python3 probe.py name=wg.test http=http://wg.test/ http=http://192.0.2.80/ \
    tcp=192.168.77.10:80 dns=198.51.100.53 dns=10.66.0.1 tcp=198.51.100.80:80
echo up
while [ ! -e go2 ]; do sleep 0.2; done
/usr/bin/python3 probe.py http=http://192.0.2.80/ name=x.wg.test
echo done2; exec sleep 60'
a=$BG
A="$WORK/a.out"
assert_eq "name=wg.test 192.0.2.80" "$(line name=wg.test "$A")" "a name resolves through the tunnel"
assert_eq "http=http://wg.test/ tunnel-page" "$(line http=http://wg.test/ "$A")" "the guest reaches the page behind the tunnel by name"
assert_eq "http=http://192.0.2.80/ tunnel-page" "$(line http=http://192.0.2.80/ "$A")" "and by address"
refused "$(line tcp=192.168.77.10:80 "$A")" "the LAN is refused"
refused "$(line dns=198.51.100.53 "$A")" "DNS straight to the WAN resolver is refused"
refused "$(line dns=10.66.0.1 "$A")" "DNS straight to the tunnel's resolver is refused (the relay asks it)"
case "$(line tcp=198.51.100.80:80 "$A")" in
*" ok "*) fail "the guest reached the WAN's own server" ;;
*) ok "the WAN's own server is out of reach ($(line tcp=198.51.100.80:80 "$A"))" ;;
esac

if [ "$WAY" = kernel ]; then
    assert_eq "" "$(pgrep -P "$a" -f 'wireguard-go -f mvmwg')" "the kernel's WireGuard: no wireguard-go for the session"
    assert_eq "$socks_before" "$(wgsocks)" "and no UAPI socket"
    assert_contains "$(ip netns exec "$NS_HOST" ss -Hunl 'sport = :51821')" ":51821" \
        "the tunnel's UDP socket is in the host's namespace"
else
    wgpid=$(pgrep -P "$a" -f 'wireguard-go -f mvmwg' | head -1)
    if [ -n "$wgpid" ]; then
        st=$(awk '$1 == "CapEff:" || $1 == "CapBnd:" || $1 == "NoNewPrivs:" || $1 == "Seccomp:" {printf "%s ", $2}' "/proc/$wgpid/status")
        if in_helper_range "$(host_ids "$wgpid")"; then ok "wireguard-go runs as a helper id"; else fail "wireguard-go runs as $(host_ids "$wgpid")"; fi
        assert_eq "0000000000001000 0000000000001000 1 2 " "$st" "wireguard-go holds CAP_NET_ADMIN alone, no_new_privs and a seccomp filter"
        assert_not_contains "$(tr '\0' ' ' < "/proc/$wgpid/cmdline"; tr '\0' '\n' < "/proc/$wgpid/environ")" \
            "$(cat "$WORK/client.key")" "the private key is not in wireguard-go's command line or environment"
    else
        fail "no wireguard-go process for the session"
    fi
    sock=$(wgsocks)
    if [ -n "$sock" ] && [ -n "$wgpid" ]; then
        assert_eq "600 $(host_ids "$wgpid" | cut -d' ' -f1)" "$(stat -c '%a %u' "$sock")" "the session's UAPI socket is wireguard-go's alone"
    else
        fail "no UAPI socket for the session"
    fi
fi
qemu=$(pgrep -P "$a" -f qemu-system | head -1)
links=$(nsenter -t "$qemu" -n ip -o link show | awk -F': ' '{print $2}' | sort | tr '\n' ' ')
assert_eq "lo tap0 wg0 " "$links" "the session namespace has the tunnel and the tap alone"
assert_eq "" "$(nsenter -t "$qemu" -n ip -6 -o addr show dev wg0)" "the tunnel has no IPv6 address"
if [ "$WAY" = kernel ]; then
    assert_contains "$(nsenter -t "$qemu" -n ip -d -o link show dev wg0)" "wireguard" "wg0 is the kernel's WireGuard"
fi
# As written (base64) or as wireguard-go's UAPI text has it (hex).
keyhex=$(base64 -d < "$WORK/client.key" | od -An -tx1 | tr -d ' \n')
if grep -rqsF -e "$(cat "$WORK/client.key")" -e "$keyhex" /run/mvm; then
    fail "the private key is under /run/mvm"
else
    ok "nothing under /run/mvm holds the private key"
fi

assert_contains "$(ip netns exec "$NS_WG" wg show "$WG_IF" endpoints)" "203.0.113.2:51821" \
    "the tunnel leaves from the config's ListenPort"
tunnel=$(count tunnel)
if [ "$tunnel" -gt 0 ]; then ok "the tunnel's UDP left through wan0 ($tunnel packets)"; else fail "no tunnel packet on wan0"; fi
assert_tunnel_only "nothing but the tunnel's UDP left through wan0"
log=$(cat "$WORK/dnsmasq-wg.log")
assert_contains "$log" "query[A] wg.test from 10.66.0.2" "DNS arrived at the tunnel's resolver, through the tunnel"
assert_not_contains "$(cat "$WORK/dnsmasq.log")" "query[" "and nothing at the WAN's resolver"

# --net allow= inside the tunnel: the allowed name, nothing else.
# A named Endpoint, resolved on the host before boot: from the simulated
# host's own hosts file (ip netns exec binds /etc/netns/NS/ over /etc),
# its resolver the WAN's dnsmasq, which must never be asked.
mkdir -p "/etc/netns/$NS_HOST"
defer "rm -rf /etc/netns/$NS_HOST"
printf '127.0.0.1 localhost\n198.51.100.202 wg-server.test\n' > "/etc/netns/$NS_HOST/hosts"
echo "nameserver 198.51.100.53" > "/etc/netns/$NS_HOST/resolv.conf"
# A port of its own: the first session holds 51821.
ENDPOINT=wg-server.test conf "$WORK/wg2.conf" 600
in_host_mvm -q --wireguard "$WORK/wg2.conf" --net allow=wg.test -- \
    /usr/bin/python3 probe.py http=http://wg.test/ tcp=192.0.2.81:80 tcp=192.168.77.10:80 name=other.test
B="$WORK/out"
assert_eq "http=http://wg.test/ tunnel-page" "$(line http=http://wg.test/ "$B")" "allow= inside the tunnel: the allowed name works"
refused "$(line tcp=192.0.2.81:80 "$B")" "allow= inside the tunnel: another address behind it is refused"
refused "$(line tcp=192.168.77.10:80 "$B")" "allow= inside the tunnel: the LAN is refused"
assert_eq "name=other.test unresolved" "$(line name=other.test "$B")" "allow= inside the tunnel: another name gets no answer"
assert_not_contains "$(cat "$WORK/dnsmasq-wg.log")" "other.test" "which the tunnel's resolver never sees"
assert_tunnel_only "nothing but the tunnel's UDP left through wan0 in allow= mode either"
# The first session leaves from 51821, this one from a port of its own.
ep=$(ip netns exec "$NS_WG" wg show "$WG_IF" endpoints | cut -f2)
case "$ep" in
203.0.113.2:51821 | "") fail "the session with a named Endpoint never reached the server ($ep)" ;;
203.0.113.2:*) ok "the named Endpoint led to the server ($ep)" ;;
*) fail "the server saw the peer at $ep" ;;
esac
assert_not_contains "$(cat "$WORK/dnsmasq.log")" "wg-server.test" "resolved from the host's hosts file alone"

# The server gone: the guest gets nothing out, and still nothing but the
# tunnel's UDP leaves.
kill "$WGS"
wait "$WGS" 2> /dev/null
touch "$PROJECT/go2"
for _ in $(seq 600); do grep -q done2 "$A" && break; sleep 0.1; done
assert_contains "$(cat "$A")" "done2" "the guest's second round ran"
case "$(grep -F http=http://192.0.2.80/ "$A" | tail -1)" in
*tunnel-page) fail "the page answered with the server gone" ;;
*) ok "with the server gone the page is out of reach" ;;
esac
assert_eq "name=x.wg.test unresolved" "$(line name=x.wg.test "$A")" "and names do not resolve"
assert_tunnel_only "still nothing but the tunnel's UDP left through wan0"
assert_not_contains "$(cat "$WORK/dnsmasq.log")" "query[" "nor reached the WAN's resolver"

kill -TERM "$a"
wait "$a" 2> /dev/null
assert_no_leftovers "after the WireGuard session"
assert_eq "$socks_before" "$(wgsocks)" "its UAPI socket is removed"

if [ "$WAY" = wireguard-go ]; then
    # wireguard-go killed under a session: it ends with 125, saying why.
    bg_mvm w -q --wireguard "$WORK/wg2.conf" -- sh -c 'echo up; exec sleep 60'
    wgpid=$(pgrep -P "$BG" -f "wireguard-go -f mvmwg")
    [ -n "$wgpid" ] || die "no wireguard-go under the session's mvm"
    kill -KILL "$wgpid"
    wait "$BG"
    RC=$?
    assert_eq 125 "$RC" "a session whose wireguard-go died exits 125"
    assert_contains "$(cat "$WORK/w.err")" "mvm: wireguard-go (--wireguard) exited unexpectedly (signal 9); the VM was destroyed" \
        "saying why"
    assert_no_leftovers "after wireguard-go died"
    assert_eq "$socks_before" "$(wgsocks)" "its UAPI socket is removed"
fi

# kill -9 of mvm: wireguard-go dies with it (its parent-death signal);
# the UAPI socket it leaves goes with mvm cleanup, like the session
# directory.  The kernel's link, moved in, goes with the namespace.
bg_mvm k -q --wireguard "$WORK/wg2.conf" -- sh -c 'echo up; exec sleep 60'
if [ "$WAY" = wireguard-go ]; then
    wgpid=$(pgrep -P "$BG" -f "wireguard-go -f mvmwg")
    [ -n "$wgpid" ] || die "no wireguard-go under the session's mvm"
else
    port=$(nsenter -t "$(pgrep -P "$BG" -f qemu-system | head -1)" -n wg show wg0 listen-port)
    [ -n "$port" ] || die "no listen port for the session's wg0"
fi
kill -KILL "$BG"
wait "$BG" 2> /dev/null
if [ "$WAY" = wireguard-go ]; then
    for _ in $(seq 50); do kill -0 "$wgpid" 2> /dev/null || break; sleep 0.1; done
    if kill -0 "$wgpid" 2> /dev/null; then fail "wireguard-go outlived mvm's kill -9"; else ok "wireguard-go died with mvm"; fi
    if [ -n "$(wgsocks)" ]; then ok "mvm's kill -9 left its UAPI socket"; else fail "no UAPI socket left to sweep: the check below proves nothing"; fi
else
    udp() { ip netns exec "$NS_HOST" ss -Hunl "sport = :$port"; }
    for _ in $(seq 50); do [ -z "$(udp)" ] && break; sleep 0.1; done
    assert_eq "" "$(udp)" "mvm's kill -9: the tunnel's UDP socket went with the session namespace"
    assert_eq "" "$(ip netns exec "$NS_HOST" ip -o link show type wireguard)" "no WireGuard link left in the host's namespace"
fi
"$REAL_MVM" cleanup > /dev/null
assert_no_leftovers "after kill -9 and mvm cleanup"
assert_eq "$socks_before" "$(wgsocks)" "mvm cleanup removed the UAPI socket"
