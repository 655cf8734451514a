#!/bin/bash
# The headline: the real Claude Code, installed the way most people
# install it (npm's user prefix, in the home), runs in the guest and draws
# its screen; neither needs the network.  Then, in the simulated network
# of net-topology.sh, `claude -p` with --api-key anthropic completes a
# round trip to a stand-in for api.anthropic.com (api-standin.sh) through
# mvm's gateway, its base URL and placeholder key set by mvm (api-key.sh
# shows that no guest process has the real one).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/net-topology.sh"
. "$(dirname "$0")/api-standin.sh"

command -v npm > /dev/null || skip "npm is not installed (apt-get install npm)"
command -v tmux > /dev/null || skip "tmux is not installed"
ensure_test_user
chown "$TEST_USER:" "$PROJECT"
PREFIX=$TEST_HOME/.npm-global
[ -e "$PREFIX" ] && die "$PREFIX exists already: this test needs a home it may fill"
defer "rm -rf '$PREFIX' '$TEST_HOME/.npm' '$TEST_HOME/.npmrc'"

# npm as the test account; it needs the machine's CA settings passed on.
# Through sudo the environment is reset: then the system bundle, where a
# machine's own CA (a TLS-inspecting proxy's) is installed.
ca=${NODE_EXTRA_CA_CERTS:-}
[ -z "$ca" ] && [ -r /etc/ssl/certs/ca-certificates.crt ] && ca=/etc/ssl/certs/ca-certificates.crt
if ! runuser -u "$TEST_USER" -- env HOME="$TEST_HOME" ${ca:+NODE_EXTRA_CA_CERTS=$ca} \
    npm install -g --prefix "$PREFIX" --no-audit --no-fund @anthropic-ai/claude-code > "$WORK/npm.log" 2>&1; then
    tail -5 "$WORK/npm.log"
    skip "npm could not install @anthropic-ai/claude-code (no registry?)"
fi
version=$(runuser -u "$TEST_USER" -- "$PREFIX/bin/claude" --version 2> /dev/null | awk '{print $1}')
[ -n "$version" ] || die "claude --version does not run on the host"

SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER run_mvm -- claude --version
assert_eq 0 "$RC" "claude --version runs in the guest"
assert_contains "$OUT" "$version" "the guest's claude is the one installed in the home ($version)"
assert_contains "$ERR" "sharing ~/.npm-global/lib/node_modules/@anthropic-ai/claude-code read-only" \
    "mvm says it shared the package"

# The interactive screen, under tmux: its welcome draws within a minute.
SOCK=$WORK/tmux.sock
tmux -S "$SOCK" new-session -d -x 120 -y 40 \
    "cd '$PROJECT' && SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER '$MVM' run -q -- claude; echo MVM-EXIT=\$?; sleep 60"
defer "tmux -S '$SOCK' kill-server 2> /dev/null"
screen=""
for _ in $(seq 120); do
    screen=$(tmux -S "$SOCK" capture-pane -p 2> /dev/null)
    case "$screen" in *"Claude Code"*) break ;; esac
    sleep 0.5
done
assert_contains "$screen" "Claude Code v$version" "claude's interactive screen draws in the guest"
tmux -S "$SOCK" kill-server 2> /dev/null
# mvm tears down on the terminal's hangup; wait for it to finish.
for _ in $(seq 100); do pgrep -f -- "run --net none -q -- claude" > /dev/null || break; sleep 0.1; done
assert_no_leftovers "after claude"

# claude -p through the gateway.  The CA is read with the user's rights:
# a copy they may read.  Nonessential traffic (telemetry, update checks)
# off: the simulated WAN has nothing for it.
KEY=sk-ant-api03-REAL-claude-$$-$RANDOM
CA=$TEST_HOME/mvm-test-ca.pem
cp "$WORK/ca.pem" "$CA" && chown "$TEST_USER:" "$CA"
defer "rm -f '$CA'"
ANTHROPIC_API_KEY=$KEY SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER in_host_mvm -q -T \
    --dns 198.51.100.53 --api-key anthropic --api-ca "$CA" --env CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 -- \
    claude -p "Say hi" < /dev/null
assert_eq 0 "$RC" "claude -p exited 0 (stderr: $(tail -3 "$WORK/err" | tr '\n' ' '))"
assert_contains "$OUT" "standin-reply" "and printed the stand-in's reply, which came through the gateway"
log=$WORK/standin-198.51.100.90.log
msgs=$(grep -c '"path": "/v1/messages' "$log")
[ "$msgs" -ge 1 ] && ok "the stand-in got claude's $msgs request(s) to /v1/messages" || fail "the stand-in got no /v1/messages request: $(head -c 600 "$log")"
real=$(KEY=$KEY python3 -c 'import json, os, sys; print(all(json.loads(l)["headers"].get("x-api-key") == os.environ["KEY"] for l in open(sys.argv[1])))' "$log")
assert_eq True "$real" "each with the real key"
assert_not_contains "$(cat "$log")" "mvm-gateway-placeholder" "and never the placeholder"
assert_no_leftovers "after claude -p through the gateway"
