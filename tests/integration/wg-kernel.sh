#!/bin/bash
# --wireguard's kernel way (net/wggenl.c under net/uplink-wg.c), which
# this host's kernel may lack: in one guest, as root, wg-genl-check runs
# the uplink's steps on a wg-quick file -- the link made in the guest's
# own namespace (standing for the host's), configured over generic
# netlink, moved into namespace A as wg0 -- and a peer answers from
# namespace B behind a veth.  A user's checks: `wg show` in A shows the
# file's keys, port, peer, endpoint, allowed IPs and keepalive; ping and
# TCP go through the tunnel, nothing goes around it, and nothing once
# the peer is removed; the UDP socket is in the namespace that made the
# link, none in A; failures after the link exists, and a bad file, leave
# no link behind, and the sweep removes a killed session's; the
# namespace's end takes the link and its socket.
. "$(dirname "$0")/lib.sh"

WG_GENL_CHECK=${WG_GENL_CHECK:?WG_GENL_CHECK must point at the wg-genl-check binary}
cp "$WG_GENL_CHECK" "$PROJECT/wg-genl-check"
cat > "$PROJECT/guest.sh" << 'GUEST'
set -u
failed=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failed=1; }
check() { # expected actual what
    if [ "$1" = "$2" ]; then ok "$3"; else bad "$3: expected [$1], got [$2]"; fi
}
modprobe -q wireguard
ip link add wgprobe type wireguard 2> /dev/null || { echo "SKIP: the guest kernel has no WireGuard"; exit 77; }
ip link del wgprobe
for t in wg ss ip /usr/bin/python3 busybox; do
    command -v "$t" > /dev/null || { echo "SKIP: no $t in the guest"; exit 77; }
done
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2> /dev/null; done
    ip netns del A 2> /dev/null
    ip netns del B 2> /dev/null
    ip link del vh 2> /dev/null
    for l in mvmwgtest mvmwgfail mvmwgbad mvmwgalive1234 mvmwgdead5678 mvmwgdum0; do
        ip link del "$l" 2> /dev/null
    done
}
trap cleanup EXIT
D=$(mktemp -d)
umask 077
wg genkey > "$D/a.key" && wg pubkey < "$D/a.key" > "$D/a.pub"
wg genkey > "$D/b.key" && wg pubkey < "$D/b.key" > "$D/b.pub"
wg genpsk > "$D/psk"
APUB=$(cat "$D/a.pub") BPUB=$(cat "$D/b.pub") PSK=$(cat "$D/psk") AKEY=$(cat "$D/a.key")

# B: the peer, behind a veth from this namespace; its own link, made in B.
ip netns add A && ip netns add B || { bad "ip netns add"; exit 1; }
ip link add vh type veth peer name vb && ip link set vb netns B
ip addr add 10.99.0.1/24 dev vh && ip link set vh up
ip -n B addr add 10.99.0.2/24 dev vb && ip -n B link set vb up && ip -n B link set lo up
ip -n B link add wgb type wireguard
ip netns exec B wg set wgb private-key "$D/b.key" listen-port 51821 peer "$APUB" \
    preshared-key "$D/psk" allowed-ips 10.9.0.1/32 endpoint 10.99.0.1:51820
ip -n B addr add 10.9.0.2/24 dev wgb && ip -n B link set wgb up
ip netns exec B /usr/bin/python3 -c '
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.9.0.2", 8080))
s.listen(4)
while True:
    c, _ = s.accept()
    c.sendall(b"through-the-tunnel\n")
    c.close()' &
pids="$pids $!"

cat > "$D/a.conf" << EOF
[Interface]
PrivateKey = $AKEY
Address = 10.9.0.1/24
ListenPort = 51820
DNS = 10.9.0.2
[Peer]
PublicKey = $BPUB
PresharedKey = $PSK
Endpoint = 10.99.0.2:51821
AllowedIPs = 10.9.0.0/24, 192.0.2.0/25
PersistentKeepalive = 17
EOF

out=$(./wg-genl-check up "$D/a.conf" /run/netns/A mvmwgtest 2>&1)
rc=$?
echo "$out"
[ "$rc" = 77 ] && { echo "SKIP: $out"; exit 77; }
check 0 "$rc" "wg-genl-check made, configured and moved the kernel's link"
check kernel "$out" "it took the kernel's way"
case "$out" in *"$AKEY"*) bad "the private key is in wg-genl-check's output" ;; *) ok "the private key is not in the output" ;; esac

# What a user checks with wg show.
dev=$(ip netns exec A wg show wg0 dump | head -1 | cut -f2-4)
check "$APUB	51820	off" "$dev" "wg0 in A: the file's public key and ListenPort"
peer=$(ip netns exec A wg show wg0 dump | sed -n 2p)
check "$BPUB" "$(echo "$peer" | cut -f1)" "the peer's public key"
check "$PSK" "$(echo "$peer" | cut -f2)" "the peer's preshared key"
check "10.99.0.2:51821" "$(echo "$peer" | cut -f3)" "the peer's endpoint"
check "10.9.0.0/24,192.0.2.0/25" "$(echo "$peer" | cut -f4 | tr , '\n' | sort | paste -sd, -)" \
    "the peer's allowed IPs"
check 17 "$(echo "$peer" | cut -f8)" "the peer's persistent keepalive"
check 1 "$(ip netns exec A wg show wg0 peers | wc -l)" "one peer, the file's"
check "inet 10.9.0.1/24" "$(ip -n A -4 -o addr show dev wg0 | awk '{print $3, $4}')" "wg0's address"
check "mtu 1420" "$(ip -n A -o link show dev wg0 | grep -o 'mtu [0-9]*')" "wg0's MTU"
case "$(ip -n A route show default)" in "default dev wg0"*) ok "A's default route is the tunnel" ;;
*) bad "A's default route: $(ip -n A route show default)" ;; esac
ip link show mvmwgtest > /dev/null 2>&1 && bad "mvmwgtest is still in the namespace that made it" ||
    ok "the link left the namespace that made it"

# The UDP socket stays where the link was made.
sock=$(ss -Hunl 'sport = :51820' | wc -l)
[ "$sock" -ge 1 ] && ok "the tunnel's UDP port 51820 is bound in the namespace that made the link" ||
    bad "no UDP socket on 51820 in the namespace that made the link"
check "" "$(ip netns exec A ss -Hunla)" "namespace A has no UDP socket"

# Through the tunnel (positive control), and around it nothing.
ip netns exec A busybox ping -c 3 -W 3 10.9.0.2 > /dev/null 2>&1 && ok "A pings B through the tunnel" ||
    bad "A does not ping B through the tunnel"
tcp() {
    ip netns exec A /usr/bin/python3 -c '
import socket, sys
try:
    s = socket.create_connection(("10.9.0.2", 8080), timeout=3)
    print(s.recv(64).decode().strip())
except OSError as e:
    print("refused:", e)' 2>&1
}
check through-the-tunnel "$(tcp)" "A reaches B's TCP server through the tunnel"
hs=$(ip netns exec A wg show wg0 latest-handshakes | cut -f2)
[ "${hs:-0}" -gt 0 ] && ok "a handshake happened" || bad "no handshake: [$hs]"
ip netns exec A busybox ping -c 1 -W 2 10.99.0.2 > /dev/null 2>&1 && bad "A reached B's veth around the tunnel" ||
    ok "A does not reach B's veth address (not in AllowedIPs, no other way out)"

# The peer gone: nothing gets through.
ip netns exec B wg set wgb peer "$APUB" remove
ip netns exec A busybox ping -c 2 -W 2 10.9.0.2 > /dev/null 2>&1 && bad "A still pings B after B removed it" ||
    ok "after B removed the peer, pings do not get through"
case "$(tcp)" in refused:*) ok "nor TCP" ;; *) bad "TCP still gets through: $(tcp)" ;; esac

# Failures after the link exists leave nothing here.
for mode in fail-move fail-set; do
    out=$(./wg-genl-check $mode "$D/a.conf" mvmwgfail 2>&1)
    rc=$?
    echo "$out"
    check 0 "$rc" "$mode: wg-genl-check fails as meant and removes the link"
    ip link show mvmwgfail > /dev/null 2>&1 && bad "$mode: mvmwgfail is left" || ok "$mode: no link left"
done
case "$(./wg-genl-check fail-set "$D/a.conf" mvmwgfail 2>&1)" in
*"is not resolved"*) ok "fail-set failed in the set request" ;; *) bad "fail-set failed elsewhere" ;; esac

# A killed session's link (made, not yet moved) is swept; a live
# session's, and a link of another kind, are not.
mkdir -p "$D/run/alive1234"
ip link add mvmwgalive1234 type wireguard && ip link add mvmwgdead5678 type wireguard &&
    ip link add mvmwgdum0 type dummy
check 1 "$(./wg-genl-check sweep "$D/run")" "the sweep removed one leftover"
ip link show mvmwgdead5678 > /dev/null 2>&1 && bad "the dead session's link is left" ||
    ok "the dead session's link is swept"
ip link show mvmwgalive1234 > /dev/null 2>&1 && ok "a live session's link stays" ||
    bad "a live session's link was swept"
ip link show mvmwgdum0 > /dev/null 2>&1 && ok "a link of another kind stays" ||
    bad "a dummy link was swept"
ip link del mvmwgalive1234
ip link del mvmwgdum0

# A bad key: refused with its line, not quoted, nothing made.
sed "s|^PrivateKey = .*|PrivateKey = c2hvcnQ=|" "$D/a.conf" > "$D/bad.conf"
out=$(./wg-genl-check up "$D/bad.conf" /run/netns/A mvmwgbad 2>&1)
rc=$?
check 1 "$rc" "a config with a bad key fails"
case "$out" in *"bad.conf:2: PrivateKey is not a base64 WireGuard key"*) ok "the bad key is refused with its line" ;;
*) bad "the bad key's message: $out" ;; esac
case "$out" in *c2hvcnQ*) bad "the bad key is quoted" ;; *) ok "the bad key is not quoted" ;; esac
ip link show mvmwgbad > /dev/null 2>&1 && bad "mvmwgbad was made" || ok "no link for the bad config"

# The namespace's end takes the link, and its socket here.
ip netns del A
for i in $(seq 50); do
    [ "$(ss -Hunl 'sport = :51820' | wc -l)" = 0 ] && break
    sleep 0.1
done
check 0 "$(ss -Hunl 'sport = :51820' | wc -l)" "deleting A closed the tunnel's UDP socket"
check "" "$(ip -o link show type wireguard)" "no WireGuard link left in the namespace that made it"
exit $failed
GUEST

run_mvm --root -- sh ./guest.sh
echo "$OUT"
[ "$RC" = 77 ] && skip "$(echo "$OUT" | grep '^SKIP:' | head -1)"
assert_eq 0 "$RC" "the guest's checks pass (each FAIL line above says which did not)"
assert_not_contains "$OUT" "FAIL:" "no check failed"
assert_contains "$OUT" "ok: no WireGuard link left in the namespace that made it" "the guest ran to its end"
assert_no_leftovers "after the kernel WireGuard checks"
