# Sourced after net-topology.sh: stand-ins for a provider's API on the
# simulated WAN, for the --api-key tests.  A test CA ($WORK/ca.pem, for
# --api-ca only: the guest never gets it) signs one certificate for
# api.anthropic.com and other-api.test; api-standin.py serves it at
# 198.51.100.90:443 (api.anthropic.com in the WAN's DNS) and
# 198.51.100.91:443 (other-api.test), each logging the requests it gets
# to $WORK/standin-ADDRESS.log.
command -v openssl > /dev/null || skip "openssl is missing: contrib/install-deps.sh installs it"

# The test CA and the stand-ins' certificate.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/ca.key" -out "$WORK/ca.pem" -days 2 \
    -subj "/CN=mvm test CA" 2> /dev/null || die "openssl could not make the test CA"
openssl req -newkey rsa:2048 -nodes -keyout "$WORK/srv.key" -out "$WORK/srv.csr" \
    -subj "/CN=api.anthropic.com" 2> /dev/null || die "openssl could not make a request"
printf 'subjectAltName=DNS:api.anthropic.com,DNS:other-api.test\n' > "$WORK/srv.ext"
openssl x509 -req -in "$WORK/srv.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
    -out "$WORK/srv.pem" -days 2 -extfile "$WORK/srv.ext" 2> /dev/null || die "openssl could not sign"
chmod 644 "$WORK/ca.pem"

STANDIN=$(dirname "${BASH_SOURCE[0]}")/api-standin.py
for a in 198.51.100.90 198.51.100.91; do
    ip -n "$NS_WAN" addr add "$a/32" dev lo
    ip netns exec "$NS_WAN" python3 "$STANDIN" "$a" 443 "$WORK/srv.pem" "$WORK/srv.key" \
        "$WORK/standin-$a.log" > "$WORK/serve-$a-443.log" 2>&1 &
    defer "kill $! 2> /dev/null"
done
wait_served 198.51.100.90:443 198.51.100.91:443
touch "$WORK/standin-198.51.100.90.log" "$WORK/standin-198.51.100.91.log"
