# Sourced after net-topology.sh: stand-ins for a provider's API on the
# simulated WAN, for the --api-key tests.  A test CA ($WORK/ca.pem, for
# --api-ca only: the guest never gets it) signs one certificate for
# api.anthropic.com and other-api.test; api-standin.py serves it at
# 198.51.100.90:443 (api.anthropic.com in the WAN's DNS) and
# 198.51.100.91:443 (other-api.test), each logging the requests it gets
# to $WORK/standin-ADDRESS.log.  standin NS ADDR starts one more at
# ADDR:443 in namespace NS (not yet answering when it returns);
# standin_saw LOG N WHAT checks that it got N requests, each with the real
# key $KEY, never the placeholder, and api.anthropic.com as the Host.
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
standin() { # ns addr
    ip -n "$1" addr add "$2/32" dev lo
    ip netns exec "$1" python3 "$STANDIN" "$2" 443 "$WORK/srv.pem" "$WORK/srv.key" \
        "$WORK/standin-$2.log" > "$WORK/serve-$2-443.log" 2>&1 &
    defer "kill $! 2> /dev/null"
    touch "$WORK/standin-$2.log"
}
standin "$NS_WAN" 198.51.100.90
standin "$NS_WAN" 198.51.100.91
wait_served 198.51.100.90:443 198.51.100.91:443
standin_saw() { # log n what
    local n real
    n=$(wc -l < "$1")
    real=$(python3 -c 'import json, os, sys; print(sum(json.loads(l)["headers"].get("x-api-key") == os.environ["KEY"] for l in open(sys.argv[1])))' "$1")
    assert_eq "$2 $2" "$n $real" "$3 with the real key in x-api-key"
    assert_not_contains "$(cat "$1")" "placeholder" "and never the placeholder"
    assert_contains "$(cat "$1")" '"host": "api.anthropic.com"' "and its own name as the Host"
}
