#!/bin/bash
# The scratch disk: the guest's writable places (home, /tmp, /var and the
# writable /usr) on a throwaway disk instead of guest RAM, gone at exit --
# also after kill -9 -- and installs that never reach the host's /usr.
. "$(dirname "$0")/lib.sh"

ensure_test_user
chown "$TEST_USER:" "$PROJECT"
as_user() { SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER run_mvm "$@"; }
SCRATCH_DIR=/var/lib/mvm/scratch

# Installs land in the session's /usr: a local wheel with pip, a local
# tarball with npm -g, as the user; the host's /usr stays as it was.
fingerprint() { find /usr/local /usr/lib/python3/dist-packages -maxdepth 3 -printf '%p %s %T@\n' 2> /dev/null | sort | sha256sum; }
before=$(fingerprint)
PKG=$WORK/pkg
mkdir -p "$PKG/npm"
python3 - "$PKG" << 'EOF'
import base64, hashlib, sys, zipfile
d = sys.argv[1]
files = {"mvm_it_probe.py": "VALUE = 'wheel works'\n",
         "mvm_it_probe-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: mvm-it-probe\nVersion: 1.0\n",
         "mvm_it_probe-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: mvm-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
record = []
for name, text in files.items():
    h = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
    record.append(f"{name},sha256={h},{len(text)}")
record.append("mvm_it_probe-1.0.dist-info/RECORD,,")
with zipfile.ZipFile(f"{d}/mvm_it_probe-1.0-py3-none-any.whl", "w") as z:
    for name, text in files.items():
        z.writestr(name, text)
    z.writestr("mvm_it_probe-1.0.dist-info/RECORD", "\n".join(record) + "\n")
EOF
cat > "$PKG/npm/package.json" << 'EOF'
{"name": "mvm-it-probe", "version": "1.0.0", "bin": {"mvm-it-probe": "cli.js"}}
EOF
printf '#!/usr/bin/env node\nconsole.log("npm package works");\n' > "$PKG/npm/cli.js"
chmod 755 "$PKG/npm/cli.js"
(cd "$PKG" && tar czf mvm-it-probe-1.0.0.tgz --transform 's,^npm,package,' npm)
cp "$PKG"/*.whl "$PKG"/*.tgz "$PROJECT/"
chown "$TEST_USER:" "$PROJECT"/*
have_pip=$(command -v pip3 || true)
have_npm=$(command -v npm || true)
script='set -e; cd "$PWD"'
[ -n "$have_pip" ] && script="$script; pip3 install -q --no-index --no-deps --break-system-packages ./mvm_it_probe-1.0-py3-none-any.whl 2>&1 | grep -v WARNING || true; python3 -c 'import mvm_it_probe; print(mvm_it_probe.VALUE)'"
[ -n "$have_npm" ] && script="$script; npm install -g --offline --no-audit --no-fund ./mvm-it-probe-1.0.0.tgz > /dev/null 2>&1; mvm-it-probe"
as_user -q -- sh -c "$script"
if [ -n "$have_pip" ]; then
    assert_contains "$OUT" "wheel works" "pip installs a local wheel in the guest, as the user"
else
    echo "note: no pip3 on this machine; the pip install is not checked"
fi
if [ -n "$have_npm" ]; then
    assert_contains "$OUT" "npm package works" "npm install -g installs a local tarball in the guest, as the user"
else
    echo "note: no npm on this machine; the npm install is not checked"
fi
assert_eq "$before" "$(fingerprint)" "the host's /usr/local and dist-packages are unchanged"
[ -e /usr/local/bin/mvm-it-probe ] && fail "the npm package reached the host" || ok "the npm package did not reach the host"
as_user -q -- sh -c 'command -v mvm-it-probe || echo gone'
assert_eq "gone" "$OUT" "the next session starts without the install"

# Guest root installs a Debian package -- dpkg -i, then apt-get install of
# the same local .deb after removing it -- into the session's /usr and its
# copy of the dpkg database; the host's database and /usr stay as they were.
if command -v dpkg-deb > /dev/null && [ -e /var/lib/dpkg/status ]; then
    deb=$WORK/deb
    mkdir -p "$deb/DEBIAN" "$deb/usr/bin"
    printf 'Package: mvm-it-deb\nVersion: 1.0\nArchitecture: all\nMaintainer: mvm tests <mvm@example.invalid>\nDescription: mvm test package\n' > "$deb/DEBIAN/control"
    printf '#!/bin/sh\necho deb package works\n' > "$deb/usr/bin/mvm-it-deb"
    chmod 755 "$deb/usr/bin/mvm-it-deb"
    dpkg-deb --root-owner-group -b "$deb" "$PROJECT/mvm-it-deb.deb" > /dev/null || die "dpkg-deb failed"
    chown "$TEST_USER:" "$PROJECT/mvm-it-deb.deb"
    dpkg_before=$(sha256sum /var/lib/dpkg/status)
    as_user -q --root -- sh -c 'cd "$PWD"; dpkg -s coreutils | grep ^Status; dpkg -i mvm-it-deb.deb > /dev/null && mvm-it-deb; dpkg -r mvm-it-deb > /dev/null; [ -e /usr/bin/mvm-it-deb ] || echo removed; apt-get install -y ./mvm-it-deb.deb > /dev/null 2>&1; dpkg -s mvm-it-deb | grep ^Status'
    assert_eq "Status: install ok installed
deb package works
removed
Status: install ok installed" "$OUT" "guest root sees the host's packages, installs a .deb with dpkg, removes it and installs it with apt-get (stderr: $ERR)"
    assert_eq "$dpkg_before" "$(sha256sum /var/lib/dpkg/status)" "the host's dpkg database is unchanged"
    [ -e /usr/bin/mvm-it-deb ] && fail "the package reached the host's /usr" || ok "the package did not reach the host's /usr"
    dpkg -s mvm-it-deb > /dev/null 2>&1 && fail "the host's dpkg knows the package" || ok "the host's dpkg does not know the package"
else
    echo "note: no dpkg here; the package install is not checked"
fi

# A 512 MiB guest writes 2 GiB into its home: the disk holds it, not RAM.
as_user -q --memory 512M -- sh -c 'dd if=/dev/zero of=$HOME/big bs=1M count=2048 conv=fsync 2>&1 | tail -1; ls -l $HOME/big | cut -d" " -f5; df -k $HOME | tail -1'
assert_eq 0 "$RC" "a 512 MiB guest writing 2 GiB to its home succeeds"
assert_contains "$OUT" "2147483648" "the 2 GiB file is complete"
as_user -q --disk none --memory 512M -- sh -c 'dd if=/dev/zero of=$HOME/big bs=1M count=2048 2>&1'
assert_contains "$OUT" "No space left on device" "--disk none: the home is RAM, and 2 GiB do not fit"

# The scratch disk is gone at exit, and after kill -9 of mvm.
runs_before
ls "$SCRATCH_DIR" 2> /dev/null | sort > "$WORK/scratch.before"
as_user -q -- sh -c 'echo x > ~/f'
assert_eq 0 "$RC" "a session with a scratch disk runs"
assert_eq "" "$(ls "$SCRATCH_DIR" 2> /dev/null | sort | comm -13 "$WORK/scratch.before" -)" "no scratch image is left after exit"
df_before=$(df -k --output=used /var/lib/mvm | tail -1)
(cd "$PROJECT" && SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID exec "$MVM" run -q -- sh -c 'head -c 300M /dev/urandom > ~/fill; sync; echo up; exec sleep 60') > "$WORK/bg.out" 2>&1 &
BG=$!
defer "kill -9 $BG 2> /dev/null"
for _ in $(seq 900); do grep -q up "$WORK/bg.out" 2> /dev/null && break; kill -0 $BG 2> /dev/null || break; sleep 0.1; done
grep -q up "$WORK/bg.out" || die "the background session did not start: $(cat "$WORK/bg.out")"
df_during=$(df -k --output=used /var/lib/mvm | tail -1)
[ $((df_during - df_before)) -ge 250000 ] && ok "the scratch disk holds the guest's 300 MB ($((df_during - df_before)) KiB used)" ||
    fail "the guest's 300 MB are not on the host disk ($((df_during - df_before)) KiB)"
kill -9 "$BG" # the wrapper execs mvm: $BG is mvm
wait "$BG" 2> /dev/null
for _ in $(seq 100); do pgrep -f qemu-system-x86_64 > /dev/null || break; sleep 0.1; done
"$REAL_MVM" cleanup > /dev/null 2>&1
# The kernel frees an unlinked file's blocks a moment after its last close.
for _ in $(seq 100); do
    df_after=$(df -k --output=used /var/lib/mvm | tail -1)
    [ $((df_after - df_before)) -lt 50000 ] && break
    sleep 0.1
done
[ $((df_after - df_before)) -lt 50000 ] && ok "after kill -9 and mvm cleanup the scratch disk's space is back" ||
    fail "after kill -9 and cleanup $((df_after - df_before)) KiB are still used"
assert_eq "" "$(ls "$SCRATCH_DIR" 2> /dev/null | sort | comm -13 "$WORK/scratch.before" -)" "no scratch image is left after kill -9"
assert_no_leftovers "after kill -9 and cleanup"
