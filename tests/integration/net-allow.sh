#!/bin/bash
# --net allow=: egress only to the listed names, addresses and prefixes,
# in the simulated host of the network tests (net-topology.sh).  Allowed
# names (through a CNAME chain, below a wildcard), a literal address and a
# prefix work -- the positive controls -- and right after them, in the same
# guest: another name gets no answer and the WAN's dnsmasq never sees it,
# a WAN address that is not allowed, the next port, the LAN and DNS to the
# WAN resolver are refused fast.  The relay's answers sit in the set with
# their TTL bounded below.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/net-topology.sh"

# The WAN's other servers: api.test's CNAME target, one address no rule
# names, a literal rule's port and its neighbour, one in the allowed
# prefix, and a port of web.test's address that no rule opens.
for a in 198.51.100.82 198.51.100.83 198.51.100.100; do ip -n "$NS_WAN" addr add "$a/32" dev lo; done
serve "$NS_WAN" 198.51.100.81 80 cdn-page
serve "$NS_WAN" 198.51.100.82 80 other-page
serve "$NS_WAN" 198.51.100.83 8080 literal-page
serve "$NS_WAN" 198.51.100.83 80 literal80-page
serve "$NS_WAN" 198.51.100.100 80 prefix-page
serve "$NS_WAN" 198.51.100.80 8080 wan8080-page
wait_served 198.51.100.81:80 198.51.100.82:80 198.51.100.83:8080 198.51.100.83:80 198.51.100.100:80 \
    198.51.100.80:8080

# Bad rules fail at once, before anything is made.
in_host_mvm -q --net allow=192.168.77.10 -- true
assert_contains "$RC $ERR" "125 mvm: --net allow= rule '192.168.77.10' is in the LAN, which allow= never opens: use --allow-lan ADDRESS:PORT" \
    "a LAN address in allow= is refused with what to do"
in_host_mvm -q --net allow=api.test,bad_name!.test -- true
assert_contains "$RC $ERR" "125 mvm: bad --net allow= rule 'bad_name!.test'" "a malformed rule is refused"

RULES=api.test,*.web.test,198.51.100.83:8080,198.51.100.96/28
bg_mvm a -q --dns 198.51.100.53 --net "allow=$RULES" -- sh -c '
/usr/bin/python3 probe.py http=http://api.test/ http=http://x.web.test/ http=http://198.51.100.83:8080/ \
    http=http://198.51.100.100/ name=web.test name=secret-data.exfil.test name=cdn.test \
    tcp=198.51.100.82:80 tcp=198.51.100.83:80 tcp=198.51.100.80:8080 tcp=192.168.77.10:80 \
    dns=198.51.100.53 http=http://api.test/
echo up; exec sleep 60'
a=$BG
A="$WORK/a.out"
assert_eq "http=http://api.test/ cdn-page" "$(line http=http://api.test/ "$A")" "an allowed name works, through its CNAME chain"
assert_eq "http=http://x.web.test/ wan-page" "$(line http=http://x.web.test/ "$A")" "a name below an allowed *.NAME works"
assert_eq "http=http://198.51.100.83:8080/ literal-page" "$(line http=http://198.51.100.83:8080/ "$A")" "an allowed address:port works"
assert_eq "http=http://198.51.100.100/ prefix-page" "$(line http=http://198.51.100.100/ "$A")" "an address in an allowed prefix works"
assert_eq "name=web.test unresolved" "$(line name=web.test "$A")" "*.NAME does not allow NAME itself"
assert_eq "name=secret-data.exfil.test unresolved" "$(line name=secret-data.exfil.test "$A")" "another name gets no answer"
assert_eq "name=cdn.test unresolved" "$(line name=cdn.test "$A")" "a CNAME's target is no allowed name of its own"
refused "$(line tcp=198.51.100.82:80 "$A")" "a WAN address no rule allows is refused"
refused "$(line tcp=198.51.100.83:80 "$A")" "an allowed address's other port is refused"
refused "$(line tcp=198.51.100.80:8080 "$A")" "an answered address is allowed on its rule's ports only"
refused "$(line tcp=192.168.77.10:80 "$A")" "the LAN is refused"
refused "$(line dns=198.51.100.53 "$A")" "DNS straight to the WAN resolver is refused"

log=$(cat "$WORK/dnsmasq.log")
assert_contains "$log" "query[A] api.test from" "the allowed name reached the upstream resolver"
assert_not_contains "$log" "exfil" "the other name never reached the upstream resolver"
assert_not_contains "$log" "query[A] web.test from" "nor the wildcard's own name"
assert_not_contains "$log" "query[A] cdn.test from" "nor the CNAME's target asked for itself"

# The answers in the namespace's set: dnsmasq's TTL of 0 raised to the
# floor, on the rule's ports; the literal rules in the fixed set.
qemu=$(pgrep -P "$a" -f qemu-system | head -1)
set_dns=$(nsenter -t "$qemu" -n nft list set inet mvm allowdns4 2> /dev/null | tr -s ' \t\n' ' ')
case "$set_dns" in
*"198.51.100.81 . 80 timeout 1m expires "*) ok "an answered address is in the set for the bounded TTL (60 s)" ;;
*) fail "allowdns4 holds: [$set_dns]" ;;
esac
assert_contains "$set_dns" "198.51.100.81 . 443 timeout 1m" "on both default ports"
assert_not_contains "$set_dns" "198.51.100.82" "no address that no allowed name answered"
set_fixed=$(nsenter -t "$qemu" -n nft list set inet mvm allow4 2> /dev/null | tr -s ' \t\n' ' ')
assert_contains "$set_fixed" "198.51.100.83 . 8080" "the literal address rule is in the fixed set"
assert_contains "$set_fixed" "198.51.100.96/28 . 80" "and the prefix"
kill -TERM "$a"
wait "$a" 2> /dev/null
assert_no_leftovers "after the allow= session"
