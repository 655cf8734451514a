# A hermetic network for the networking tests, sourced after lib.sh:
#   $NS_HOST  the simulated host, where mvm runs:
#             wan0 203.0.113.2/24 (default via 203.0.113.1), lan0 192.168.77.1/24,
#             a service on 203.0.113.2:8000 and a Docker-style DNAT of
#             203.0.113.2:8080 to the LAN's web server
#   $NS_WAN   the "internet": 203.0.113.1, a web server on 198.51.100.80:80
#             and dnsmasq on 198.51.100.53 (web.test -> 198.51.100.80)
#   $NS_LAN   the LAN: a web server on 192.168.77.10:80
# Nothing is sent to an address outside these namespaces; the routes are
# checked before any test traffic, and everything is removed on exit.
command -v ip > /dev/null || skip "ip (iproute2) is missing: contrib/install-deps.sh installs it"
command -v dnsmasq > /dev/null || skip "dnsmasq is missing: contrib/install-deps.sh installs it"
NS_HOST=mvmt-host-$$ NS_WAN=mvmt-wan-$$ NS_LAN=mvmt-lan-$$
for ns in $NS_HOST $NS_WAN $NS_LAN; do
    ip netns add "$ns" || die "ip netns add $ns"
    defer "ip netns del $ns 2> /dev/null"
    ip -n "$ns" link set lo up
done
inh() { ip netns exec "$NS_HOST" "$@"; }
ip link add wan0 netns "$NS_HOST" type veth peer name up0 netns "$NS_WAN"
ip link add lan0 netns "$NS_HOST" type veth peer name eth0 netns "$NS_LAN"
ip -n "$NS_HOST" addr add 203.0.113.2/24 dev wan0
ip -n "$NS_HOST" addr add 192.168.77.1/24 dev lan0
ip -n "$NS_WAN" addr add 203.0.113.1/24 dev up0
ip -n "$NS_WAN" addr add 198.51.100.80/32 dev lo
ip -n "$NS_WAN" addr add 198.51.100.53/32 dev lo
ip -n "$NS_LAN" addr add 192.168.77.10/24 dev eth0
for l in "$NS_HOST wan0" "$NS_HOST lan0" "$NS_WAN up0" "$NS_LAN eth0"; do
    set -- $l
    ip -n "$1" link set "$2" up
done
ip -n "$NS_HOST" route add default via 203.0.113.1
ip -n "$NS_WAN" route add 192.0.2.0/24 via 203.0.113.2 2> /dev/null || true # nothing uses it
ip -n "$NS_LAN" route add default via 192.168.77.1

# Every route of the simulated host leads into our namespaces.
routes=$(ip -n "$NS_HOST" -4 route show | sort | tr '\n' ';')
[ "$routes" = "192.168.77.0/24 dev lan0 proto kernel scope link src 192.168.77.1 ;203.0.113.0/24 dev wan0 proto kernel scope link src 203.0.113.2 ;default via 203.0.113.1 dev wan0 ;" ] ||
    die "unexpected routes in the simulated host: $routes"

serve() { # ns addr port text: a web server answering "text"
    mkdir -p "$WORK/www-$1-$3"
    echo "$4" > "$WORK/www-$1-$3/index.html"
    ip netns exec "$1" python3 -m http.server --bind "$2" --directory "$WORK/www-$1-$3" "$3" \
        > /dev/null 2>&1 &
    defer "kill $! 2> /dev/null"
}
serve "$NS_WAN" 198.51.100.80 80 wan-page
serve "$NS_LAN" 192.168.77.10 80 lan-page
serve "$NS_HOST" 203.0.113.2 8000 host-page
ip netns exec "$NS_WAN" dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
    --listen-address=198.51.100.53 --address=/web.test/198.51.100.80 --log-queries \
    --log-facility="$WORK/dnsmasq.log" --pid-file="$WORK/dnsmasq.pid" --user=root &
defer "kill $! 2> /dev/null"
# Docker-style: a host port published to the LAN through DNAT.
ip netns exec "$NS_HOST" nft -f - << 'NFT'
table ip dockerish {
  chain prerouting { type nat hook prerouting priority dstnat; tcp dport 8080 dnat to 192.168.77.10:80; }
}
NFT
ip netns exec "$NS_HOST" sysctl -qw net.ipv4.ip_forward=1
for _ in $(seq 50); do
    inh python3 -c 'import urllib.request as u; u.urlopen("http://198.51.100.80/", timeout=1)' 2> /dev/null && break
    sleep 0.1
done
[ "$(inh python3 -c 'import urllib.request as u; print(u.urlopen("http://198.51.100.80/", timeout=2).read().decode().strip())')" = wan-page ] ||
    die "the simulated WAN's web server does not answer"
