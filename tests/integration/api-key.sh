#!/bin/bash
# --api-key: the guest talks plain HTTP to the session's gateway, which
# adds the real key and speaks TLS to the provider -- here a stand-in for
# api.anthropic.com on the simulated WAN (net-topology.sh), its
# certificate from a test CA that only --api-ca names (the guest never
# gets it).  The guest's request gets the stand-in's reply, the stand-in
# sees the real key and never the placeholder, a streamed reply arrives
# in pieces, a forged Host or absolute URL still reaches only the
# configured upstream, and the key is nowhere in the guest.  Then the
# refusals: a missing key, an unknown provider, --net none, a key file
# others may read, an upstream allow= does not name.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/net-topology.sh"
. "$(dirname "$0")/api-standin.sh"

KEY=sk-ant-api03-REAL-$$-$RANDOM-secret
export KEY

# The guest's client: plain HTTP to the base URL mvm set, with the key it
# was given.  Each line: "NAME RESULT".
cat > "$PROJECT/gwprobe.py" << 'PY'
import json, os, socket, time, urllib.error, urllib.request
base, key = os.environ["ANTHROPIC_BASE_URL"], os.environ["ANTHROPIC_API_KEY"]
print("base", base, flush=True)
print("key", key, flush=True)
def post(body):
    req = urllib.request.Request(base + "/v1/messages", data=json.dumps(body).encode(),
                                 headers={"x-api-key": key, "content-type": "application/json",
                                          "anthropic-version": "2023-06-01"})
    return urllib.request.urlopen(req, timeout=30)
try:
    print("reply", json.load(post({"model": "m"}))["content"][0]["text"], flush=True)
except Exception as e:
    print("reply failed", e, flush=True)
try:
    t0 = time.monotonic(); times = []; text = ""
    for line in post({"model": "m", "stream": True}):
        if line.startswith(b"data:"):
            times.append(time.monotonic() - t0)
            d = json.loads(line[5:]).get("delta", {})
            text += d.get("text", "")
    print("stream %s events=%d first=%.1f last=%.1f" % (text, len(times), times[0], times[-1]), flush=True)
except Exception as e:
    print("stream failed", e, flush=True)
host, port = base[len("http://"):].split(":")
# The second --api-key's upstream is in the LAN: the gateway's connection
# meets the guest's refusals (a reset), not the LAN's web server.
try:
    req = urllib.request.Request("http://%s:%d/" % (host, int(port) + 1), headers={"x-lan-key": "x"})
    print("lan", urllib.request.urlopen(req, timeout=30).status, flush=True)
except urllib.error.HTTPError as e:
    print("lan", e.code, e.read().decode().strip(), flush=True)
for name, req in (("forged-host", "GET /forged-host HTTP/1.1\r\nHost: other-api.test\r\n"),
                  ("absolute", "GET https://198.51.100.91/absolute HTTP/1.1\r\nHost: 198.51.100.91\r\n")):
    try:
        s = socket.create_connection((host, int(port)), timeout=30)
        s.sendall((req + "Connection: close\r\n\r\n").encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        print(name, data.split(b"\r\n")[0].decode(), data.split(b"\r\n\r\n", 1)[1][:200].decode(errors="replace").replace("\n", " "), flush=True)
    except OSError as e:
        print(name, "failed", e, flush=True)
PY
# And where the key could be in the guest: every process's environment
# and command line, the kernel's, and the files mvm or the guest wrote.
cat > "$PROJECT/findkey.sh" << 'SH'
k=$(printf '%s\n' "$1" | rev) # given reversed: the command line holds no copy
found=""
for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline /proc/cmdline; do
    grep -qF -- "$k" "$f" 2> /dev/null && found="$found $f"
done
for d in /etc /tmp /run /var /root /mvm "$HOME"; do
    [ -d "$d" ] && grep -rlF -- "$k" "$d" 2> /dev/null | head -3 | while read -r f; do echo "file $f"; done
done > /tmp/.found
[ -s /tmp/.found ] && found="$found $(tr '\n' ' ' < /tmp/.found)"
echo "findkey ${found:-none}"
echo "env $(env | grep -cF -- "$k")"
SH
chmod 644 "$PROJECT/gwprobe.py" "$PROJECT/findkey.sh"
command -v rev > /dev/null || skip "rev (util-linux) is missing: contrib/install-deps.sh installs it"

ANTHROPIC_API_KEY=$KEY LAN_KEY=lan-$KEY in_host_mvm -q --dns 198.51.100.53 --api-key anthropic --api-ca "$WORK/ca.pem" \
    --api-key custom:https://192.168.77.10:80:x-lan-key=LAN_KEY -- \
    sh -c 'python3 gwprobe.py; sh findkey.sh "$1"' sh "$(rev <<< "$KEY")"
assert_eq 0 "$RC" "the session with --api-key ran (stderr: $ERR)"
gw_line() { printf '%s\n' "$OUT" | grep -m1 "^$1 "; }
assert_eq "base http://10.0.2.2:7480" "$(gw_line base)" "the guest's ANTHROPIC_BASE_URL is the gateway"
assert_eq "key mvm-gateway-placeholder-not-a-key" "$(gw_line key)" "the guest's ANTHROPIC_API_KEY is the placeholder"
assert_eq "reply standin-reply" "$(gw_line reply)" "a request to the base URL gets the stand-in's reply"
stream=$(gw_line stream)
case "$stream" in
"stream standin-reply events=7 "*) ok "the streamed reply came whole ($stream)" ;;
*) fail "the streamed reply: [$stream]" ;;
esac
# The stand-in sends an event every 0.4 s: a reply held to the end would
# bring all seven at once.
first=$(sed -n 's/.* first=\([0-9.]*\) .*/\1/p' <<< "$stream")
last=$(sed -n 's/.* last=\([0-9.]*\)$/\1/p' <<< "$stream")
if [ -n "$first" ] && awk -v f="$first" -v l="$last" 'BEGIN {exit !(l - f >= 1.5)}'; then
    ok "the events arrived as sent, not at the end (first at ${first}s, last at ${last}s)"
else
    fail "the events arrived together (first at ${first}s, last at ${last}s)"
fi
assert_contains "$(gw_line forged-host)" '"path": "/forged-host", "seen": "standin"' \
    "a forged Host still reaches the configured upstream"
assert_contains "$(gw_line absolute)" '"path": "/absolute", "seen": "standin"' \
    "an absolute URL naming another server still reaches the configured upstream"
case "$(gw_line lan)" in
"lan 502 mvm api gateway: https://192.168.77.10:80: "*"onnect"*) ok "an upstream in the LAN is refused to the gateway too ($(gw_line lan))" ;;
*) fail "an upstream in the LAN: [$(gw_line lan)]" ;;
esac
assert_eq "findkey none" "$(gw_line findkey)" "the real key is in no process's environment or command line, /proc/cmdline or the guest's files"
assert_eq "env 0" "$(gw_line env)" "and not in the command's environment"

standin_saw "$WORK/standin-198.51.100.90.log" 4 "the stand-in got every request"
assert_eq 0 "$(wc -l < "$WORK/standin-198.51.100.91.log")" "the server the forged requests named got nothing"
assert_no_leftovers "after the --api-key session"

# Without --api-ca the stand-in's certificate is refused: the guest gets
# a 502 saying so, and nothing reaches the stand-in.  The same gateway is
# a jailed helper, and its death ends the session.
before=$(wc -l < "$WORK/standin-198.51.100.90.log")
cat > "$PROJECT/nocert.py" << 'PY'
import os, urllib.error, urllib.request
try:
    urllib.request.urlopen(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", data=b"{}", timeout=30)
    print("nocert 200")
except urllib.error.HTTPError as e:
    print("nocert", e.code, e.read().decode().strip())
PY
chmod 644 "$PROJECT/nocert.py"
ANTHROPIC_API_KEY=$KEY bg_mvm j -q --dns 198.51.100.53 --api-key anthropic -- sh -c 'python3 nocert.py; echo up; exec sleep 60'
j=$BG
assert_contains "$(grep nocert "$WORK/j.out")" "nocert 502 mvm api gateway: https://api.anthropic.com:443: SSL certificate problem" \
    "without --api-ca the stand-in's certificate is refused, and the guest is told why"
assert_eq "$before" "$(wc -l < "$WORK/standin-198.51.100.90.log")" "and no request reached the stand-in"
gwpid=$(pgrep -P "$j" -f -- __api-gateway | head -1)
[ -n "$gwpid" ] && assert_jailed_helper "$gwpid" "the API gateway" || fail "no API gateway process"
assert_not_contains "$(tr '\0' ' ' < "/proc/$gwpid/cmdline")" "$KEY" "the key is not on the gateway's command line"
assert_not_contains "$(tr '\0' '\n' < "/proc/$gwpid/environ" 2> /dev/null)" "$KEY" "nor in its environment"
# A gateway that dies ends the session, saying so.
kill -KILL "$gwpid"
wait "$j"
assert_eq 125 "$?" "a dead gateway ends the session with status 125"
assert_contains "$(cat "$WORK/j.err")" "mvm: the API gateway (--api-key) exited unexpectedly (signal 9); the VM was destroyed" \
    "and says why"
assert_no_leftovers "after the gateway died"

# --net allow= naming the provider: the gateway resolves through the
# relay, which lets the answer's address into the namespace's set.
cat > "$PROJECT/one.py" << 'PY'
import json, os, urllib.request
req = urllib.request.Request(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", data=b"{}")
print("allow", json.load(urllib.request.urlopen(req, timeout=30))["content"][0]["text"])
PY
chmod 644 "$PROJECT/one.py"
ANTHROPIC_API_KEY=$KEY in_host_mvm -q --dns 198.51.100.53 --net allow=api.anthropic.com --api-key anthropic \
    --api-ca "$WORK/ca.pem" -- python3 one.py
assert_eq "0 allow standin-reply" "$RC $OUT" "with --net allow=api.anthropic.com the gateway reaches the provider (stderr: $ERR)"
assert_no_leftovers "after the allow= session"

# The refusals, each one line, status 125, nothing left.
refuse() { # expected-message what args...
    local want=$1 what=$2
    shift 2
    in_host_mvm -q --dns 198.51.100.53 "$@" -- true
    assert_eq 125 "$RC" "$what: status 125"
    assert_contains "$ERR" "$want" "$what: says so"
    assert_eq 1 "$(printf '%s\n' "$ERR" | wc -l)" "$what: in one line"
}
refuse "mvm: --api-key anthropic: ANTHROPIC_API_KEY is not set in mvm's environment (sudo resets the environment: use sudo --preserve-env=ANTHROPIC_API_KEY" \
    "a missing key" --api-key anthropic
refuse "unknown" "an unknown provider" --api-key acme
ANTHROPIC_API_KEY=$KEY refuse "--api-key needs a network for its gateway: not with --net none" \
    "--net none" --net none --api-key anthropic
printf '%s\n' "$KEY" > "$WORK/key"
chmod 644 "$WORK/key"
refuse "must be yours and readable by you alone: chmod 600 $WORK/key" "a key file others may read" \
    --api-key "anthropic=ANTHROPIC_API_KEY=@$WORK/key"
ANTHROPIC_API_KEY=$KEY refuse "--api-key anthropic: --net allow= does not let the gateway reach api.anthropic.com:443: add api.anthropic.com to the rules" \
    "an upstream allow= does not name" --net allow=web.test --api-key anthropic
ANTHROPIC_API_KEY=$KEY refuse "drop --env ANTHROPIC_API_KEY" "--env of the same key" \
    --api-key anthropic --env ANTHROPIC_API_KEY
assert_no_leftovers "after the refusals"
