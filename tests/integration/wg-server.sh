# A WireGuard server for the --wireguard tests, sourced after
# net-topology.sh: $NS_WG behind the simulated WAN at 198.51.100.202
# (the WAN forwards it the tunnel's UDP, port 51820, and nothing else);
# inside the tunnel 10.66.0.1/24 (dnsmasq: wg.test and its subdomains ->
# 192.0.2.80, api.anthropic.com -> 192.0.2.90 for a stand-in API behind
# the tunnel (wireguard-api.sh), queries logged to $WORK/dnsmasq-wg.log)
# and web pages at 192.0.2.80:80 and 192.0.2.81:80, reachable only
# through the tunnel.  The client is 10.66.0.2/32; conf FILE MODE
# [PRIVATEKEY [LINES]] writes its wg-quick file ($ENDPOINT: the server's
# address or name); wg_served ADDR:PORT... waits for servers in $NS_WG;
# wan_count starts counting what the simulated host sends out of wan0
# (count tunnel|other; assert_tunnel_only WHAT).  $WGS is the server's wireguard-go.
command -v wireguard-go > /dev/null || skip "wireguard-go is missing: contrib/install-deps.sh installs it"
command -v wg > /dev/null || skip "wg (wireguard-tools) is missing: contrib/install-deps.sh installs it"
NS_WG=mvmt-wg-$$ WG_IF=wgs-$$
ip netns add "$NS_WG" || die "ip netns add $NS_WG"
defer "ip netns del $NS_WG 2> /dev/null"
ip -n "$NS_WG" link set lo up
ip link add wgpeer netns "$NS_WAN" type veth peer name eth0 netns "$NS_WG"
ip -n "$NS_WAN" addr add 198.51.100.201/30 dev wgpeer
ip -n "$NS_WG" addr add 198.51.100.202/30 dev eth0
ip -n "$NS_WAN" link set wgpeer up
ip -n "$NS_WG" link set eth0 up
ip -n "$NS_WG" route add default via 198.51.100.201
# Like a real VPN server, it never sends its clients' traffic to the
# internet: with the tunnel gone (a test kills it) the stand-ins'
# retransmits to the client would go to the WAN, which has no route for
# them and answers with ICMP by way of the simulated host's wan0.
ip -n "$NS_WG" route add unreachable 10.66.0.0/24 metric 100
ip -n "$NS_WG" addr add 192.0.2.80/32 dev lo
ip -n "$NS_WG" addr add 192.0.2.81/32 dev lo
# The WAN forwards the tunnel's UDP to the server and nothing else.
ip netns exec "$NS_WAN" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$NS_WAN" nft -f - << 'NFT'
table inet wanfw {
  chain forward { type filter hook forward priority filter; policy drop;
    ct state established,related accept
    ip daddr 198.51.100.202 udp dport 51820 accept
  }
}
NFT

umask 077
wg genkey > "$WORK/server.key"
wg genkey > "$WORK/client.key"
SERVER_PUB=$(wg pubkey < "$WORK/server.key")
CLIENT_PUB=$(wg pubkey < "$WORK/client.key")
umask 022
ip netns exec "$NS_WG" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$WG_IF" > "$WORK/wgs.log" 2>&1 &
WGS=$!
defer "kill $WGS 2> /dev/null; rm -f /var/run/wireguard/$WG_IF.sock"
for _ in $(seq 50); do [ -S "/var/run/wireguard/$WG_IF.sock" ] && break; sleep 0.1; done
ip netns exec "$NS_WG" wg set "$WG_IF" private-key "$WORK/server.key" listen-port 51820 \
    peer "$CLIENT_PUB" allowed-ips 10.66.0.2/32 || die "configuring the WireGuard server"
ip -n "$NS_WG" addr add 10.66.0.1/24 dev "$WG_IF"
ip -n "$NS_WG" link set "$WG_IF" up
serve "$NS_WG" 192.0.2.80 80 tunnel-page
serve "$NS_WG" 192.0.2.81 80 other-tunnel-page
ip netns exec "$NS_WG" dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
    --listen-address=10.66.0.1 --address=/wg.test/192.0.2.80 --log-queries \
    --host-record=api.anthropic.com,192.0.2.90 \
    --log-facility="$WORK/dnsmasq-wg.log" --pid-file="$WORK/dnsmasq-wg.pid" --user=root &
defer "kill $! 2> /dev/null"
wg_served() { # addr:port...
    local t
    for t in "$@"; do
        for _ in $(seq 50); do
            ip netns exec "$NS_WG" python3 -c "import socket; socket.create_connection(('${t%:*}', ${t#*:}), timeout=1)" 2> /dev/null && break
            sleep 0.1
        done
    done
}
wg_served 192.0.2.80:80 192.0.2.81:80

# Everything the simulated host sends out of wan0, counted from here on:
# the tunnel's UDP, and the rest.  The host's own "port unreachable" to
# the server is the tunnel's too: the server still sends (keepalives, a
# stand-in's retransmits) to the port of a session that has ended, and
# the answer carries only the head of that encrypted datagram.  The topology's web servers look their
# own names up when they bind (at the host's resolvers, through wan0):
# counting starts once they answer.  No IPv6 on wan0 (its router
# solicitations would count).
wan_count() {
    wait_served 203.0.113.2:8000 192.168.77.10:80
    inh sysctl -qw net.ipv6.conf.wan0.disable_ipv6=1
    inh nft -f - << 'NFT'
table inet wancount {
  counter tunnel {}
  counter other {}
  set seen { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags dynamic; }
  chain out { type filter hook postrouting priority filter; policy accept;
    oifname "wan0" ip daddr 198.51.100.202 udp dport 51820 counter name tunnel accept
    oifname "wan0" ip daddr 198.51.100.202 icmp type destination-unreachable counter name tunnel accept
    oifname "wan0" add @seen { ip saddr . ip daddr . meta l4proto . th dport }
    oifname "wan0" counter name other
  }
}
NFT
    : > "$WORK/dnsmasq.log"
}
count() { inh nft list counter inet wancount "$1" | awk '/packets/ {print $2}'; }
# Nothing but the tunnel's UDP so far; else which flows (source .
# destination . protocol . port).
assert_tunnel_only() { # what
    local n
    n=$(count other)
    [ "$n" = 0 ] && ok "$1" ||
        fail "$1: $n other packets: $(inh nft -j list set inet wancount seen | python3 -c 'import json, sys; print(" ".join(" . ".join(map(str, e["concat"])) for x in json.load(sys.stdin)["nftables"] if "set" in x for e in x["set"].get("elem", [])))')"
}

conf() { # file mode [private key [more Interface lines]]: a client config
    cat > "$1" << EOF
[Interface]
PrivateKey = ${3:-$(cat "$WORK/client.key")}
Address = 10.66.0.2/32
DNS = 10.66.0.1
${4:-}

[Peer]
PublicKey = $SERVER_PUB
Endpoint = ${ENDPOINT:-198.51.100.202}:51820
AllowedIPs = 0.0.0.0/0
EOF
    chmod "$2" "$1"
}
