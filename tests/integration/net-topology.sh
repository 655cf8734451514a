# A hermetic network for the networking tests, sourced after lib.sh:
#   $NS_HOST  the simulated host, where mvm runs:
#             wan0 203.0.113.2/24 (default via 203.0.113.1), lan0 192.168.77.1/24,
#             a service on 203.0.113.2:8000 and a Docker-style DNAT of
#             203.0.113.2:8080 to the LAN's web server
#   $NS_WAN   the "internet": 203.0.113.1, a web server on 198.51.100.80:80
#             and dnsmasq on 198.51.100.53 (web.test and its subdomains ->
#             198.51.100.80, cdn.test -> 198.51.100.81, api.test a CNAME of
#             cdn.test, lan.test -> 192.168.77.10, lan11.test -> 192.168.77.11,
#             api.anthropic.com -> 198.51.100.90 and other-api.test ->
#             198.51.100.91, where api-key.sh runs its stand-in APIs)
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
ip -n "$NS_WAN" addr add 198.51.100.81/32 dev lo
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
    mkdir -p "$WORK/www-$1-$2-$3"
    echo "$4" > "$WORK/www-$1-$2-$3/index.html"
    ip netns exec "$1" python3 -m http.server --bind "$2" --directory "$WORK/www-$1-$2-$3" "$3" \
        > "$WORK/serve-$2-$3.log" 2>&1 &
    defer "kill $! 2> /dev/null"
}
serve "$NS_WAN" 198.51.100.80 80 wan-page
serve "$NS_LAN" 192.168.77.10 80 lan-page
serve "$NS_HOST" 203.0.113.2 8000 host-page
ip netns exec "$NS_WAN" dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
    --listen-address=198.51.100.53 --address=/web.test/198.51.100.80 --log-queries \
    --host-record=cdn.test,198.51.100.81 --cname=api.test,cdn.test \
    --address=/lan.test/192.168.77.10 --address=/lan11.test/192.168.77.11 \
    --host-record=api.anthropic.com,198.51.100.90 --host-record=other-api.test,198.51.100.91 \
    --log-facility="$WORK/dnsmasq.log" --pid-file="$WORK/dnsmasq.pid" --user=root &
defer "kill $! 2> /dev/null"
# Docker-style: a host port published to the LAN through DNAT.
ip netns exec "$NS_HOST" nft -f - << 'NFT'
table ip dockerish {
  chain prerouting { type nat hook prerouting priority dstnat; fib daddr type local tcp dport 8080 dnat to 192.168.77.10:80; }
}
NFT
ip netns exec "$NS_HOST" sysctl -qw net.ipv4.ip_forward=1
for _ in $(seq 50); do
    inh python3 -c 'import urllib.request as u; u.urlopen("http://198.51.100.80/", timeout=1)' 2> /dev/null && break
    sleep 0.1
done
[ "$(inh python3 -c 'import urllib.request as u; print(u.urlopen("http://198.51.100.80/", timeout=2).read().decode().strip())')" = wan-page ] ||
    die "the simulated WAN's web server does not answer"

# mvm run in the simulated host, from the project directory.
in_host_mvm() { (cd "$PROJECT" && ip netns exec "$NS_HOST" "$REAL_MVM" run "$@") > "$WORK/out" 2> "$WORK/err"; RC=$?; OUT=$(cat "$WORK/out"); ERR=$(cat "$WORK/err"); }
# mvm run ARGS in the background in the simulated host, until the guest
# prints "up" (output in $WORK/NAME.out and .err); $BG is mvm's pid.
bg_mvm() { # name args...
    local name=$1
    shift
    (cd "$PROJECT" && exec ip netns exec "$NS_HOST" "$REAL_MVM" run "$@") > "$WORK/$name.out" 2> "$WORK/$name.err" &
    BG=$!
    defer "kill -KILL $BG 2> /dev/null"
    for _ in $(seq 900); do grep -q up "$WORK/$name.out" 2> /dev/null && break; kill -0 "$BG" 2> /dev/null || break; sleep 0.1; done
    grep -q up "$WORK/$name.out" || die "session $name did not start: $(cat "$WORK/$name.err")"
}
# A relay (pid $1, named $2) is jailed: a helper id, no capabilities,
# no_new_privs and a seccomp filter.
assert_jailed_helper() {
    local st
    st=$(awk '$1 == "CapEff:" || $1 == "CapBnd:" || $1 == "NoNewPrivs:" || $1 == "Seccomp:" {printf "%s ", $2}' "/proc/$1/status")
    in_helper_range "$(host_ids "$1")" && ok "$2 runs as a helper id" || fail "$2 runs as $(host_ids "$1")"
    assert_eq "0000000000000000 0000000000000000 1 2 " "$st" "$2 has no capabilities, no_new_privs and a seccomp filter"
}
# Dies unless every ADDRESS:PORT answers from the simulated host within
# 30 s, saying what its server printed if it does not (CI once saw a
# LAN server not answer within 5 s).
wait_served() { # addr:port...
    local t end
    for t in "$@"; do
        end=$((SECONDS + 30))
        while :; do
            inh python3 -c "import socket; socket.create_connection(('${t%:*}', ${t#*:}), timeout=1)" 2> /dev/null && break
            [ "$SECONDS" -ge "$end" ] &&
                die "nothing answers at $t in the simulated network (its server: $(tail -3 "$WORK/serve-${t%:*}-${t#*:}.log" 2> /dev/null | tr '\n' ' '))"
            sleep 0.1
        done
    done
}
# A line of the probe's output (file $2) that starts with $1.
line() { grep -F -- "$1" "$2" | head -1; }
# A probe line that says "refused at once" (a TCP reset or an ICMP error).
refused() { # line what
    case "$1" in
    *" ECONNREFUSED fast" | *" EHOSTUNREACH fast") ok "$2 ($1)" ;;
    *) fail "$2: expected a fast refusal, got [$1]" ;;
    esac
}
# probe.py in the project, for the guest: each argument KIND=TARGET prints
# one line "KIND=TARGET RESULT": http=URL (the page, or "failed ..."),
# name=NAME (its address or "unresolved"), tcp=HOST:PORT and dns=SERVER
# ("ok" or the errno's name, then "fast" or "slow": under a second or not),
# tcpdns=SERVER (web.test asked over TCP: "ok N" with N answers, or the
# errno's name).
cat > "$PROJECT/probe.py" << 'PY'
import socket, sys, time, urllib.request
def errname(e):
    return socket.errno.errorcode.get(e.errno, type(e).__name__) if e.errno else type(e).__name__
for arg in sys.argv[1:]:
    kind, target = arg.split("=", 1)
    t = time.monotonic()
    if kind == "http":
        try:
            r = urllib.request.urlopen(target, timeout=5).read().decode().strip()
        except OSError as e:
            r = "failed " + str(e)
        print(arg, r, flush=True)
    elif kind == "name":
        try:
            r = socket.gethostbyname(target)
        except OSError:
            r = "unresolved"
        print(arg, r, flush=True)
    elif kind in ("tcp", "dns"):
        try:
            if kind == "tcp":
                h, p = target.rsplit(":", 1)
                socket.create_connection((h, int(p)), timeout=5).close()
            else:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
                s.connect((target, 53))
                s.send(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03web\x04test\x00\x00\x01\x00\x01")
                s.recv(512)
            r = "ok"
        except OSError as e:
            r = errname(e)
        print(arg, r, "fast" if time.monotonic() - t < 1 else "slow", flush=True)
    elif kind == "tcpdns":
        q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03web\x04test\x00\x00\x01\x00\x01"
        try:
            s = socket.create_connection((target, 53), timeout=5)
            s.sendall(len(q).to_bytes(2, "big") + q)
            f = s.makefile("rb")
            n = int.from_bytes(f.read(2), "big")
            a = f.read(n)
            r = "ok %d" % int.from_bytes(a[6:8], "big") if a[:2] == q[:2] else "bad id"
        except OSError as e:
            r = errname(e)
        print(arg, r, flush=True)
PY
chmod 644 "$PROJECT/probe.py"
