#!/bin/bash
# Bad input: a clear one-line error naming the thing, exit 125, and nothing
# left behind.
. "$(dirname "$0")/lib.sh"

check_error() { # what needle args...
    local what=$1 needle=$2
    shift 2
    run_mvm "$@"
    assert_eq 125 "$RC" "$what: exit 125"
    assert_contains "$ERR" "$needle" "$what: error names it"
    local lines
    lines=$(printf '%s\n' "$ERR" | grep -c '^mvm' || true)
    assert_eq 1 "$lines" "$what: one error line"
    assert_eq "" "$OUT" "$what: nothing on stdout"
}
check_error "unknown flag" "--frobnicate" --frobnicate -- true
check_error "unknown short flag" "-Z" -Z -- true
check_error "missing value" "--cpus" --cpus
check_error "bad --memory" "12X" --memory 12X -- true
check_error "too little --memory" "out of range" --memory 1M -- true
check_error "bad --cpus" "zero" --cpus zero -- true
check_error "bad --timeout" "soon" --timeout soon -- true
check_error "bad --accel" "hyper" --accel hyper -- true
check_error "unknown --net mode" "frob" --net frob -- true
check_error "bad --dns" "not-an-ip" --dns not-an-ip -- true
check_error "missing --kernel" "/nonexistent/vmlinuz" --kernel /nonexistent/vmlinuz -- true
echo "not a kernel" > "$WORK/fake-kernel"
check_error "a --kernel that is not a kernel" "fake-kernel" --kernel "$WORK/fake-kernel" -- true

check_error "an argument over 64 KiB" "longer than 64 KiB" -- echo "$(head -c 70000 /dev/zero | tr '\0' a)"

mkdir -p "$WORK/etc"
echo "cpus = many" > "$WORK/etc/config"
MVM_SYSTEM_CONFIG="$WORK/etc/config" run_mvm -q -- true
assert_eq 125 "$RC" "a malformed config file: exit 125"
assert_contains "$ERR" "$WORK/etc/config:1" "the error names the file and line"
echo "color = blue" > "$WORK/etc/config"
MVM_SYSTEM_CONFIG="$WORK/etc/config" run_mvm -q -- true
assert_contains "$ERR" "unknown key 'color'" "an unknown config key is named"
printf '# defaults\ncpus = 1\nmemory = 256M\n' > "$WORK/etc/config"
MVM_SYSTEM_CONFIG="$WORK/etc/config" run_mvm -q -- sh -c 'nproc; grep MemTotal /proc/meminfo'
assert_eq 0 "$RC" "a valid config file is used"
assert_eq 1 "$(echo "$OUT" | head -1)" "config cpus = 1 reaches the guest"
MVM_SYSTEM_CONFIG="$WORK/etc/config" run_mvm -q --cpus 2 -- nproc
assert_eq 2 "$OUT" "the command line wins over the config file"

# Without root: one line saying to use sudo.
if command -v setpriv > /dev/null; then
    (cd "$PROJECT" && setpriv --reuid=nobody --regid=nogroup --clear-groups "$MVM" run -- true) > /dev/null 2> "$WORK/err"
    assert_eq 125 "$?" "mvm run without root: exit 125"
    assert_contains "$(cat "$WORK/err")" "sudo mvm run" "the error says to use sudo"
fi

# Closed standard descriptors are /dev/null to mvm, never one of its own
# sockets taken for stdin or stderr.
run_mvm_in - -q -- sh -c 'cat; echo done'
assert_eq "0 done" "$RC $OUT" "stdin closed: the command reads EOF, exit 0 (stderr: $ERR)"
(cd "$PROJECT" && "$MVM" run -q -- sh -c 'echo out; echo err >&2' 2>&-) > "$WORK/out"
assert_eq "0 out" "$? $(cat "$WORK/out")" "stderr closed: the command runs, stdout intact"

# --kernel is read with the invoking user's rights: a kernel they can read
# boots, a symlink to a root-only file is refused.
ensure_test_user
kernel=$(ls /boot/vmlinuz-* 2> /dev/null | head -1)
[ -n "$kernel" ] || die "no /boot/vmlinuz-* (install-deps.sh installs one)"
chown "$TEST_USER:" "$PROJECT"
SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID run_mvm -q --kernel "$kernel" -- echo booted
assert_eq "0 booted" "$RC $OUT" "the user's readable --kernel boots"
install -m 0600 "$kernel" "$WORK/root-only-kernel"
ln -s "$WORK/root-only-kernel" "$PROJECT/kernel-link"
SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID run_mvm -q --kernel "$PROJECT/kernel-link" -- echo booted
assert_eq 125 "$RC" "a --kernel symlink to a root-only file: exit 125"
assert_contains "$ERR" "Permission denied" "the refusal says the user cannot read it"
assert_not_contains "$OUT" "booted" "no guest ran"

# mvm config: where each setting comes from, for the user who typed sudo:
# /etc/mvm/config, then their own file, then the command line.
cfgdir="$TEST_HOME/.config/mvm"
[ -e "$cfgdir" ] && die "$cfgdir exists already: this test needs to write it"
defer "rm -rf '$TEST_HOME/.config/mvm'"
runuser -u "$TEST_USER" -- mkdir -p "$cfgdir"
printf 'memory = 3G\n# a comment\npublish = 9000:90\n' | runuser -u "$TEST_USER" -- tee "$cfgdir/config" > /dev/null
SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID "$MVM" config --cpus 3 --publish 8000:80 > "$WORK/out" 2> "$WORK/err"
assert_eq 0 "$?" "mvm config: exit 0"
cfg=$(cat "$WORK/out")
assert_contains "$cfg" "memory = 3G  # $cfgdir/config:1" "mvm config: the user's file sets memory, and is named with its line"
assert_contains "$cfg" "cpus = 3  # command line" "mvm config: the command line wins"
assert_contains "$cfg" "publish = 9000:90  # $cfgdir/config:3" "mvm config: a list key keeps the file's value"
assert_contains "$cfg" "publish = 8000:80  # command line" "mvm config: ... and adds the command line's"
assert_contains "$cfg" "audit = warn  # default" "mvm config: an unset key shows its default"
echo "memory = lots" | runuser -u "$TEST_USER" -- tee -a "$cfgdir/config" > /dev/null
SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID "$MVM" config > "$WORK/out" 2> "$WORK/err"
assert_eq 125 "$?" "mvm config with a malformed user file: exit 125"
assert_contains "$(cat "$WORK/err")" "$cfgdir/config:4" "mvm config: the error names the user's file and line"

"$MVM" frobnicate > "$WORK/out" 2> "$WORK/err"
assert_eq 125 "$?" "unknown command: exit 125"
assert_contains "$(cat "$WORK/err")" "unknown command 'frobnicate'" "unknown command is named"
"$MVM" run --help > "$WORK/out"
assert_eq 0 "$?" "mvm run --help exits 0"
for opt in --cpus --memory --kernel --modules --accel --machine --env --share --no-cwd --net --root \
    --timeout --console --tty --no-tty --quiet --help; do
    grep -q -- "$opt" "$WORK/out" || fail "mvm run --help does not document $opt"
done
"$MVM" --help | grep -q "run" && ok "mvm --help lists run" || fail "mvm --help"
assert_contains "$("$MVM" --version)" "mvm " "mvm --version"
assert_no_leftovers "after the bad inputs"
