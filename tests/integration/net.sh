#!/bin/bash
# The guest's network, in a simulated host with a WAN and a LAN (see
# net-topology.sh): the internet by address and by name yes; the LAN, the
# host, its DNAT'd ports, the metadata address and foreign resolvers no --
# each refusal right after a positive control, refused in under a second.
# --net none has only lo; --net open reaches the LAN; nothing is left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/net-topology.sh"

# The guest's python3, whatever the invoking user's PATH holds (a pyenv
# shim there leads to an installation the guest does not have).
PY=/usr/bin/python3

in_host_mvm -q --dns 198.51.100.53 -- "$PY" probe.py http=http://198.51.100.80/ name=web.test \
    http=http://web.test/ tcp=198.51.100.80:80 tcp=192.168.77.10:80 tcp=198.51.100.80:80 \
    tcp=203.0.113.2:8000 tcp=203.0.113.2:8080 tcp=203.0.113.1:80 tcp=192.168.77.1:80 \
    tcp=169.254.169.254:80 tcp=10.0.2.2:22 dns=198.51.100.53 tcp=198.51.100.80:80 \
    tcpdns=10.0.2.2 tcpdns=198.51.100.53
assert_eq 0 "$RC" "the isolated session ran ($ERR)"
outline() { echo "$OUT" | grep -F -- "$1" | head -1; }
assert_eq "http=http://198.51.100.80/ wan-page" "$(outline http=http://198.51.100.80/)" "the WAN by address"
assert_eq "name=web.test 198.51.100.80" "$(outline name=web.test)" "a name resolves through mvm's relay"
assert_eq "http=http://web.test/ wan-page" "$(outline http=http://web.test/)" "the WAN by name"
assert_eq "tcp=198.51.100.80:80 ok fast" "$(outline tcp=198.51.100.80:80)" "positive control: a WAN connection"
for t in 192.168.77.10:80 203.0.113.2:8000 203.0.113.2:8080 203.0.113.1:80 192.168.77.1:80 169.254.169.254:80 10.0.2.2:22; do
    got=$(outline "tcp=$t")
    case "$got" in
    "tcp=$t ECONNREFUSED fast" | "tcp=$t EHOSTUNREACH fast") ok "tcp $t refused fast ($got)" ;;
    *) fail "tcp $t: expected a fast refusal, got [$got]" ;;
    esac
done
case "$(outline dns=198.51.100.53)" in
*"ECONNREFUSED fast"* | *"EHOSTUNREACH fast"*) ok "DNS straight to a WAN resolver is refused fast ($(outline dns=198.51.100.53))" ;;
*) fail "DNS to the WAN resolver: [$(outline dns=198.51.100.53)]" ;;
esac
assert_contains "$(cat "$WORK/dnsmasq.log")" "web.test" "the relay forwarded the guest's query upstream"
assert_eq "tcpdns=10.0.2.2 ok 1" "$(outline tcpdns=10.0.2.2)" "the relay answers over TCP too"
case "$(outline tcpdns=198.51.100.53)" in
*ECONNREFUSED | *EHOSTUNREACH) ok "DNS over TCP straight to a WAN resolver is refused ($(outline tcpdns=198.51.100.53))" ;;
*) fail "DNS over TCP to the WAN resolver: [$(outline tcpdns=198.51.100.53)]" ;;
esac

# The DNS relay of a running session: jailed -- a helper id, no
# capabilities, no_new_privs, seccomp, a network namespace of its own.
(cd "$PROJECT" && exec ip netns exec "$NS_HOST" "$REAL_MVM" run -q --dns 198.51.100.53 -- sh -c 'echo up; exec sleep 30') \
    > "$WORK/bg.out" 2> "$WORK/bg.err" &
bg=$!
defer "kill -KILL $bg 2> /dev/null"
for _ in $(seq 600); do grep -q up "$WORK/bg.out" 2> /dev/null && break; kill -0 "$bg" 2> /dev/null || break; sleep 0.1; done
relay=$(pgrep -P "$bg" -f __dns-relay)
if [ -n "$relay" ]; then
    assert_jailed_helper "$relay" "the DNS relay"
    [ "$(readlink "/proc/$relay/ns/net")" != "$(ip netns exec "$NS_HOST" readlink /proc/self/ns/net)" ] &&
        ok "the relay is in a network namespace of its own" || fail "the relay is in the host's network namespace"
else
    fail "no DNS relay below mvm $bg ($(cat "$WORK/bg.err"))"
fi
kill -TERM "$bg"
wait "$bg" 2> /dev/null

# While one session runs, a second session's guest cannot reach it (its
# namespace's address is in the refused ranges), and the relay sends
# nothing but queries to its upstream: a counter in the simulated host.
ip netns exec "$NS_HOST" nft -f - << 'NFT'
table inet mvmtest {
  chain output { type filter hook output priority 0; policy accept;
    meta l4proto { tcp, udp } th dport 53 ip daddr != 198.51.100.53 counter name stray
    ip daddr 198.51.100.53 th dport != 53 counter name stray
  }
  counter stray { }
}
NFT
defer "ip netns exec $NS_HOST nft delete table inet mvmtest 2> /dev/null"
bg_mvm a -q --dns 198.51.100.53 -- \
    sh -c 'python3 -m http.server --bind 0.0.0.0 8000 > /dev/null 2>&1 & echo up; exec sleep 60'
a=$BG
host_end=$(ip netns exec "$NS_HOST" ip -4 -o addr show | awk '$2 ~ /^mvm-/ {split($4, x, "/"); print x[1]}' | head -1)
ns_end=$(awk -v h="$host_end" 'BEGIN {split(h, o, "."); printf "%s.%s.%s.%d", o[1], o[2], o[3], o[4] + 1}')
in_host_mvm -q --dns 198.51.100.53 -- "$PY" probe.py tcp=198.51.100.80:80 "tcp=$ns_end:8000" "tcp=$host_end:8000" \
    name=printer name=nas.local name=web.test
assert_eq "tcp=198.51.100.80:80 ok fast" "$(outline tcp=198.51.100.80:80)" "second session: positive control"
for t in "$ns_end:8000" "$host_end:8000"; do
    case "$(outline "tcp=$t")" in
    *"ECONNREFUSED fast" | *"EHOSTUNREACH fast") ok "the second session cannot reach the first ($t)" ;;
    *) fail "second session to the first ($t): [$(outline "tcp=$t")]" ;;
    esac
done
# The sessions share the host table: one that ends leaves it to the one
# still running; the last one out removes it.
host_table_in() { ip netns exec "$NS_HOST" nft list table inet mvm > /dev/null 2>&1 && echo present || echo absent; }
assert_eq present "$(host_table_in)" "the second session ended: the first one still has the host table"
ip netns exec "$NS_HOST" "$REAL_MVM" cleanup > "$WORK/out" 2>&1
assert_eq "0 present" "$? $(host_table_in)" "mvm cleanup leaves the table of a running session ($(cat "$WORK/out"))"
ip netns exec "$NS_HOST" "$REAL_MVM" cleanup --all > "$WORK/out" 2>&1
assert_eq "125 present" "$? $(host_table_in)" "mvm cleanup --all refuses while a session runs"
assert_contains "$(cat "$WORK/out")" "a session is still running" "and says why"
kill -TERM "$a"
wait "$a" 2> /dev/null
assert_eq absent "$(host_table_in)" "the last session out removed the host table"
assert_eq "name=printer unresolved name=nas.local unresolved name=web.test 198.51.100.80" \
    "$(echo "$OUT" | grep '^name=' | tr '\n' ' ' | sed 's/ $//')" "single-label and .local names are refused, a public one resolves"
assert_not_contains "$(cat "$WORK/dnsmasq.log")" "printer" "a single-label name never reached the upstream resolver"
assert_not_contains "$(cat "$WORK/dnsmasq.log")" "nas.local" "a .local name never reached the upstream resolver"
stray=$(ip netns exec "$NS_HOST" nft list counter inet mvmtest stray | awk '/packets/ {print $2}')
assert_eq 0 "$stray" "the relay sent nothing but DNS to its upstream"
ip netns exec "$NS_HOST" python3 -c 'import socket; socket.socket(2, 2).sendto(b"x", ("198.51.100.53", 9))'
stray=$(ip netns exec "$NS_HOST" nft list counter inet mvmtest stray | awk '/packets/ {print $2}')
assert_eq 1 "$stray" "positive control: the counter sees a stray datagram"

# A route the host gains during the session (a VPN, a new LAN) is refused
# from then on: the WAN web server's prefix becomes a non-default route.
(cd "$PROJECT" && exec ip netns exec "$NS_HOST" "$REAL_MVM" run -q --dns 198.51.100.53 -- "$PY" -c '
import socket, time
for i in range(60):
    try:
        socket.create_connection(("198.51.100.80", 80), timeout=2).close(); print("ok", flush=True)
    except OSError as e:
        print(socket.errno.errorcode.get(e.errno, "error"), flush=True)
    time.sleep(0.2)
') > "$WORK/r.out" 2> "$WORK/r.err" &
r=$!
defer "kill -KILL $r 2> /dev/null"
for _ in $(seq 600); do grep -q ok "$WORK/r.out" 2> /dev/null && break; kill -0 "$r" 2> /dev/null || break; sleep 0.1; done
grep -q ok "$WORK/r.out" || die "the route session never connected: $(cat "$WORK/r.err")"
ip -n "$NS_HOST" route add 198.51.100.0/24 via 203.0.113.1
defer "ip -n $NS_HOST route del 198.51.100.0/24 2> /dev/null"
wait "$r"
seq_seen=$(uniq < "$WORK/r.out" | tr '\n' ' ')
case "$seq_seen" in
"ok ECONNREFUSED " | "ok EHOSTUNREACH ") ok "a route added during the session is refused from then on ($seq_seen)" ;;
*) fail "connections before and after the route appeared: [$seq_seen] ($(cat "$WORK/r.err"))" ;;
esac
ip -n "$NS_HOST" route del 198.51.100.0/24

# mvm itself runs no helper program for the network (no ip, nft,
# sysctl...): every execve of a session is mvm's, QEMU's or virtiofsd's,
# or mkfs.ext4 making the scratch disk's file system.
(cd "$PROJECT" && ip netns exec "$NS_HOST" strace -f -qq --seccomp-bpf -e trace=execve -e signal=none \
    -o "$WORK/execve" "$REAL_MVM" run -q --dns 198.51.100.53 -- true) > /dev/null 2>&1
progs=$(grep -o 'execve("[^"]*"' "$WORK/execve" | sed 's/execve("//; s/"$//' | sort -u | tr '\n' ' ')
bad=$(echo "$progs" | tr ' ' '\n' | grep -v -e '^$' -e '^/mvm$' -e "^$REAL_MVM\$" -e '/qemu-system-x86_64$' -e '/virtiofsd$' -e '/mkfs.ext4$' || true)
[ -n "$progs" ] && [ -z "$bad" ] && ok "a session executes only mvm, QEMU, virtiofsd and mkfs.ext4 ($progs)" ||
    fail "a session executed: $progs"

# --net none: only lo.
in_host_mvm -q --net none -- ls /sys/class/net
assert_eq "0 lo" "$RC $OUT" "--net none leaves only lo"

# --net open: NAT only, the LAN too, and mvm says so.
in_host_mvm --net open --dns 198.51.100.53 -- "$PY" probe.py http=http://192.168.77.10/
assert_eq "0 http=http://192.168.77.10/ lan-page" "$RC $OUT" "--net open reaches the LAN"
assert_contains "$ERR" "NO FILTERING" "--net open says so"
assert_not_contains "$ERR" "another firewall" "no firewall warning where none drops forwarded traffic"

# Another firewall (Docker's iptables, ufw) drops forwarded traffic by
# default: mvm says so and what to do, instead of a silently dead network.
ip netns exec "$NS_HOST" nft 'add table ip filter; add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }'
defer "ip netns exec $NS_HOST nft delete table ip filter 2> /dev/null"
in_host_mvm --dns 198.51.100.53 -- true
assert_contains "$ERR" "another firewall drops forwarded traffic by default (ip filter, chain FORWARD" \
    "a foreign forward drop policy is named"
assert_contains "$ERR" "iptables -I FORWARD -i mvm-+ -j ACCEPT" "and what to do about it"
ip netns exec "$NS_HOST" nft delete table ip filter

assert_no_leftovers "after the network sessions"
assert_eq absent "$(host_table_in)" "no host table after the last session, without mvm cleanup"
# mvm cleanup --all with nothing to remove succeeds (forwarding was on
# before mvm here, so it stays on).
ip netns exec "$NS_HOST" "$REAL_MVM" cleanup --all > "$WORK/out" 2>&1
assert_eq 0 "$?" "mvm cleanup --all ($(cat "$WORK/out"))"
assert_eq 1 "$(ip netns exec "$NS_HOST" cat /proc/sys/net/ipv4/ip_forward)" "forwarding stays on"
left=$(ip -n "$NS_HOST" -o link show | grep -c ' mvm-' || true)
assert_eq 0 "$left" "no veth left in the simulated host"
