#!/bin/bash
# Agents installed where people install them -- in their home, not in
# /usr -- run in the guest: mvm finds them on the user's PATH and shares
# only their installation, read-only; the rest of the home stays unseen.
. "$(dirname "$0")/lib.sh"

ensure_test_user
chown "$TEST_USER:" "$PROJECT"
H=$TEST_HOME
as_user() { SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER run_mvm "$@"; }

# What every fake agent does: say who runs it, write into the project, and
# try the secret that sits elsewhere in the same home.
echo "top secret" > "$H/secret.txt"
chmod 600 "$H/secret.txt"
defer "rm -f '$H/secret.txt'"
for d in .local .npm-global .nvm; do
    [ -e "$H/$d" ] && die "$H/$d exists already: this test needs a home it may fill"
    defer "rm -rf '$H/$d'"
done
sh_agent() { # path name
    mkdir -p "$(dirname "$1")"
    printf '#!/bin/sh\necho "%s ran as $(id -un)"\necho %s > "%s/%s.out"\ncat "$HOME/secret.txt" 2>&1 || echo "secret: unreadable"\n' \
        "$2" "$2" "$PROJECT" "$2" > "$1"
    chmod 755 "$1"
}
node_agent() { # path name
    mkdir -p "$(dirname "$1")"
    cat > "$1" << EOF
#!/usr/bin/env node
const fs = require('fs');
console.log('$2 ran as ' + require('os').userInfo().username + ' node=' + (process.env.FAKE_NVM_NODE || 'system'));
fs.writeFileSync('$PROJECT/$2.out', '$2\n');
try { fs.readFileSync(process.env.HOME + '/secret.txt'); console.log('secret: READ'); }
catch (e) { console.log('secret: unreadable'); }
console.log('unrelated: ' + (fs.existsSync(__dirname + '/../../unrelated.txt') ? 'SEEN' : 'unseen'));
try { fs.writeFileSync(__dirname + '/planted', 'x'); console.log('package: WRITABLE'); }
catch (e) { console.log('package: ' + (e.code === 'EROFS' ? 'read-only' : e.code)); }
EOF
    chmod 755 "$1"
}

# 1. The native installer's layout: ~/.local/bin/NAME -> a version file.
sh_agent "$H/.local/share/fake-native/versions/1.2.3" fake-native
mkdir -p "$H/.local/bin"
ln -s ../share/fake-native/versions/1.2.3 "$H/.local/bin/fake-native"
# 2. npm's user prefix: a node script in its package, linked from bin.
node_agent "$H/.npm-global/lib/node_modules/@fake/npm-agent/cli.js" fake-npm
mkdir -p "$H/.npm-global/bin"
ln -s ../lib/node_modules/@fake/npm-agent/cli.js "$H/.npm-global/bin/fake-npm"
echo "not for the guest" > "$H/.npm-global/lib/node_modules/unrelated.txt"
# 3. nvm: a node installation of its own, whose node the script must use.
NVM=$H/.nvm/versions/node/v99.1.0
mkdir -p "$NVM/bin"
printf '#!/bin/sh\nFAKE_NVM_NODE=nvm exec /usr/bin/node "$@"\n' > "$NVM/bin/node"
chmod 755 "$NVM/bin/node"
node_agent "$NVM/lib/node_modules/fake-nvm/cli.js" fake-nvm
ln -s ../lib/node_modules/fake-nvm/cli.js "$NVM/bin/fake-nvm"
# 4. pipx: a virtual environment, its script linked from ~/.local/bin.
VENV=$H/.local/share/pipx/venvs/fake-pipx
mkdir -p "$VENV/bin"
printf 'home = /usr/bin\ninclude-system-site-packages = false\n' > "$VENV/pyvenv.cfg"
ln -s /usr/bin/python3 "$VENV/bin/python"
cat > "$VENV/bin/fake-pipx" << EOF
#!$VENV/bin/python
import getpass, os, sys
print("fake-pipx ran as", getpass.getuser(), "prefix", sys.prefix)
open("$PROJECT/fake-pipx.out", "w").write("fake-pipx\n")
try:
    open(os.environ["HOME"] + "/secret.txt").read(); print("secret: READ")
except OSError:
    print("secret: unreadable")
EOF
chmod 755 "$VENV/bin/fake-pipx"
ln -s ../share/pipx/venvs/fake-pipx/bin/fake-pipx "$H/.local/bin/fake-pipx"
chown -R "$TEST_USER:" "$H/.local" "$H/.npm-global" "$H/.nvm"
# 5. System-wide, in /usr/local: the guest sees it without any share.
sh_agent /usr/local/bin/mvm-it-fake-usrlocal fake-usrlocal
defer "rm -f /usr/local/bin/mvm-it-fake-usrlocal"

check_agent() { # cmd name expected-share-note [expected-extra]
    as_user -- "$1"
    assert_eq 0 "$RC" "$2: runs in the guest"
    assert_contains "$OUT" "$2 ran as $TEST_USER" "$2: runs as the user"
    assert_contains "$OUT" "secret: unreadable" "$2: cannot read a secret elsewhere in the home"
    assert_eq "$2 $TEST_USER" "$(cat "$PROJECT/$2.out" 2> /dev/null) $(stat -c %U "$PROJECT/$2.out" 2> /dev/null)" \
        "$2: wrote into the project as the user"
    if [ -n "$3" ]; then
        assert_contains "$ERR" "sharing $3 read-only: $1 is installed there" "$2: says what it shared"
    else
        assert_not_contains "$ERR" "sharing" "$2: shares nothing"
    fi
    [ -n "${4:-}" ] && assert_contains "$OUT" "$4" "$2: $4"
}
check_agent fake-native fake-native "~/.local/share/fake-native/versions"
check_agent fake-npm fake-npm "~/.npm-global/lib/node_modules/@fake/npm-agent" "node=system"
OUT_FAKE_NPM=$OUT
check_agent fake-nvm fake-nvm "~/.nvm/versions/node/v99.1.0" "node=nvm"
check_agent fake-pipx fake-pipx "~/.local/share/pipx/venvs/fake-pipx" "prefix $VENV"
check_agent mvm-it-fake-usrlocal fake-usrlocal ""

# Only the package, not the rest of the prefix; and read-only.
assert_contains "$OUT_FAKE_NPM" "unrelated: unseen" "the rest of the npm prefix stays unseen"
assert_contains "$OUT_FAKE_NPM" "package: read-only" "the shared package is read-only"
# A program of /usr shares nothing of the home.
as_user -- node -e "console.log(require('fs').existsSync('$H/.local/share/fake-native') ? 'SEEN' : 'unseen')"
assert_eq "0 unseen" "$RC $OUT" "node from /usr runs, and the home stays unseen"
assert_not_contains "$ERR" "sharing" "a program of /usr shares nothing"

# --no-resolve: the guest looks on its own PATH only.
as_user -q --no-resolve -- fake-native
assert_eq 127 "$RC" "--no-resolve: a program of the home is not found in the guest"
assert_contains "$ERR" "fake-native: command not found" "--no-resolve: the guest says so"

# Refusals: right after the positive controls above, each before boot.
runs_before
mkdir -p "$H/tools"
sh_agent "$H/in-home-agent" in-home
chown -R "$TEST_USER:" "$H/in-home-agent" "$H/tools"
defer "rm -rf '$H/in-home-agent' '$H/tools'"
as_user -- "$H/in-home-agent"
assert_eq 125 "$RC" "a program directly in the home is refused"
assert_contains "$ERR" "it is your home directory" "the refusal says why"
assert_eq 1 "$(printf '%s\n' "$ERR" | grep -c .)" "the refusal is one line"
mkdir -p "$H/tools/.ssh"
sh_agent "$H/tools/leaky" leaky
chown -R "$TEST_USER:" "$H/tools"
ln -s ../../tools/leaky "$H/.local/bin/leaky"
as_user -- leaky
assert_eq 125 "$RC" "a program beside a .ssh directory is refused"
assert_contains "$ERR" "it holds .ssh" "the refusal names .ssh"
assert_contains "$ERR" "--no-resolve" "the refusal says what to do"
# A link the user may not follow is not followed with root's rights.
mkdir -p /root/mvm-it-hidden
sh_agent /root/mvm-it-hidden/agent hidden
defer "rm -rf /root/mvm-it-hidden"
ln -s /root/mvm-it-hidden/agent "$H/.local/bin/hidden"
as_user -- hidden
assert_eq 125 "$RC" "a link into root's files is refused"
assert_contains "$ERR" "Permission denied" "resolved with the user's rights, not root's"
assert_no_leftovers "after the refusals"
