#!/bin/bash
# mvm image build: one real build (mmdebstrap from the host's Debian
# mirror, --packages jq, a --script that writes a marker and records what
# only the VM knows: its root device and kernel release); mvm run --image
# NAME then shows jq installed, the marker, and that the script ran in the
# VM; image ls lists it; inspect shows the recipe and a digest equal to
# sha256sum of the file; rm removes it and a later --image NAME fails.
# The refusals, each after that positive control: a bad NAME, an unknown
# --from, bad --packages, a script the invoking user cannot read, an
# existing NAME without --force, and a script that exits 3 (on the cached
# tarball: no second download), which leaves the existing image as it was
# and no build directory, image, process or mount behind.
. "$(dirname "$0")/lib.sh"
image_build_setup
NAME=mvm-it-build-$$
OTHER=mvm-it-fail-$$
defer "'$REAL_MVM' image rm $NAME > /dev/null 2>&1; '$REAL_MVM' image rm $OTHER > /dev/null 2>&1"
build_dirs() { ls -A "$STORE" 2> /dev/null | grep '^\.build-' || true; }
mounts_in_store() { grep -c " $STORE" /proc/mounts || true; }

# The script: a marker, and what only the VM knows.
cat > "$WORK/provision.sh" << 'EOF'
#!/bin/sh
set -e
echo provisioned-by-mvm > /etc/mvm-it-marker
uname -r > /etc/mvm-it-kernel
grep ' / ' /proc/mounts | cut -d' ' -f1 > /etc/mvm-it-rootdev
jq --version
EOF
chmod 644 "$WORK/provision.sh"

build() { # args...: the build's stdout/stderr/rc into OUT/ERR/RC
    (cd "$PROJECT" && "$MVM" image build "$@") > "$WORK/out" 2> "$WORK/err"
    RC=$?
    OUT=$(cat "$WORK/out")
    ERR=$(cat "$WORK/err")
}

# --- the build (--refresh: this run's own mmdebstrap, not a cached tarball)
start=$(date +%s)
build "$NAME" --from debian:bookworm --packages jq --script "$WORK/provision.sh" --net none --refresh
took=$(($(date +%s) - start))
assert_eq 0 "$RC" "mvm image build $NAME succeeds (stderr: $ERR)"
echo "note: the build took ${took}s; its steps:" >&2
grep "^mvm image build $NAME: \[" <<< "$ERR" >&2
assert_contains "$ERR" "mvm image build $NAME: [0m00s] mmdebstrap bookworm" "a progress line names the step (mmdebstrap)"
assert_contains "$ERR" "running $WORK/provision.sh in a VM" "a progress line for the provisioning VM"
assert_contains "$OUT" "jq-1.6" "the script's output is shown (on stdout)"
[ -f "$STORE/$NAME.qcow2" ] && ok "the image is stored as $STORE/$NAME.qcow2" || fail "no $STORE/$NAME.qcow2"
assert_eq "-rw-r--r-- root" "$(stat -c '%A %U' "$STORE/$NAME.qcow2" 2> /dev/null)" "the image is root's, readable by every user"
assert_eq "" "$(build_dirs)" "no build directory is left"

# --- --image NAME
host_kernel=$(uname -r)
run_mvm -q --image "$NAME" -- sh -c 'jq --version; cat /etc/mvm-it-marker; echo "recorded $(cat /etc/mvm-it-kernel) $(cat /etc/mvm-it-rootdev)"; echo "running $(uname -r)"; [ -e /root/.mvm-provision ] && echo script-left || echo script-gone'
assert_eq 0 "$RC" "mvm run --image $NAME runs a command (stderr: $ERR)"
assert_contains "$OUT" "jq-1.6" "--packages jq is installed in the image"
assert_contains "$OUT" "provisioned-by-mvm" "the script's marker is in the image"
guest_kernel=$(sed -n 's/^running //p' <<< "$OUT")
assert_contains "$OUT" "recorded $guest_kernel /dev/vd" "the script ran in the VM: its kernel release and root device (a virtio disk) were the guest's"
if [ "$guest_kernel" != "$host_kernel" ]; then
    assert_not_contains "$OUT" "recorded $host_kernel " "and not the host's kernel ($host_kernel)"
fi
assert_contains "$OUT" "script-gone" "the script itself is not left in the image"
as_user run_mvm -q --image "$NAME" -- sh -c 'cat /etc/mvm-it-marker; id -u'
assert_eq "provisioned-by-mvm
$TEST_UID" "$OUT" "a user (through sudo) boots the stored image by name too (stderr: $ERR)"

# Without a kernel among its packages, --boot image has none to boot.
run_mvm --image "$NAME" --boot image -- true
assert_eq 125 "$RC" "--boot image on an image without a kernel fails with 125"
assert_contains "$ERR" "image $NAME has no kernel, systemd and cloud-init of its own; build it with --packages linux-image-amd64" "the refusal says how to build one"

# --- ls, inspect
LS=$("$MVM" image ls 2>&1)
assert_contains "$LS" "$NAME " "image ls lists it"
assert_contains "$(grep "^$NAME " <<< "$LS")" "debian:bookworm" "image ls shows what it was built from"
JSON=$("$MVM" image inspect "$NAME" 2>&1)
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" <<< "$JSON"; }
sum=$(sha256sum "$STORE/$NAME.qcow2" | cut -d' ' -f1)
assert_eq "sha256:$sum" "$(field 'd["digest"]')" "inspect's digest is the file's sha256sum"
assert_eq "debian:bookworm ['jq']" "$(field 'd["from"]+" "+str(d["packages"])')" "inspect shows --from and --packages"
assert_eq "$(sha256sum < "$WORK/provision.sh" | cut -d' ' -f1)" "$(field 'd["script"]["sha256"]')" "inspect shows the script's sha256"
assert_contains "$(field 'd["script"]["text"]')" "echo provisioned-by-mvm" "inspect shows the script's text"

# --- refusals (none reaches mmdebstrap or the VM, but the last)
build Bad/Name
assert_eq 125 "$RC" "a bad NAME is refused with 125"
assert_contains "$ERR" "bad image name 'Bad/Name'" "the refusal names the name and the rule"
build "$OTHER" --from debian:sid
assert_eq 125 "$RC" "an unknown --from is refused with 125"
assert_contains "$ERR" "--from debian:sid: mvm builds debian:bookworm or debian:trixie" "the refusal says what --from takes"
build "$OTHER" --packages 'jq;rm'
assert_eq 125 "$RC" "a bad --packages is refused with 125"
echo 'exit 0' > "$WORK/secret.sh"
chmod 600 "$WORK/secret.sh"
as_user build "$OTHER" --script "$WORK/secret.sh"
assert_eq 125 "$RC" "a script the invoking user cannot read is refused with 125"
assert_contains "$ERR" "--script $WORK/secret.sh: Permission denied" "the refusal names the script"
build "$NAME" --packages jq
assert_eq 125 "$RC" "an existing NAME is refused without --force"
assert_contains "$ERR" "image $NAME exists; remove it first (sudo mvm image rm $NAME) or replace it (--force)" "the refusal says what to do"
[ "$(ls -A "$STORE" | grep -c "^$OTHER")" = 0 ] && ok "no refused build left anything" || fail "a refused build left $(ls -A "$STORE")"

# A failing script, replacing NAME: the cached tarball, no image change.
printf 'echo about to fail\nexit 3\n' > "$WORK/fail.sh"
build "$NAME" --force --packages jq --script "$WORK/fail.sh" --net none
assert_eq 125 "$RC" "a script that exits 3 fails the build with 125"
assert_contains "$ERR" "--script $WORK/fail.sh exited with status 3 in the VM" "the error gives the script's status"
assert_contains "$ERR" "reusing mmdebstrap's tarball" "the second build reused the first one's tarball"
assert_not_contains "$ERR" "] mmdebstrap bookworm" "and did not bootstrap again"
assert_eq "$sum" "$(sha256sum "$STORE/$NAME.qcow2" | cut -d' ' -f1)" "the failed build left the existing image as it was"
assert_eq "" "$(build_dirs)" "no build directory is left after the failure"
assert_eq 0 "$(mounts_in_store)" "no mount is left in the store"
assert_eq "" "$(ls -A /var/lib/mvm/overlays 2> /dev/null)" "no overlay is left"

# --- rm: another user may not remove (or replace) the image root built
assert_eq 0 "$(field 'd["builder_uid"]')" "inspect records who built it (root here)"
out=$(as_user "$MVM" image rm "$NAME" 2>&1)
assert_eq 125 "$?" "another user's image rm is refused with 125"
assert_contains "$out" "image $NAME was built by another user (uid 0): only they or root may remove it" "the refusal says whose it is"
as_user build "$NAME" --force --packages jq
assert_eq 125 "$RC" "another user's --force is refused with 125"
assert_contains "$ERR" "only they or root may replace it" "the refusal says so"
[ -e "$STORE/$NAME.qcow2" ] && ok "the image is still there" || fail "a refused rm or --force removed it"
out=$("$MVM" image rm "$NAME" 2>&1)
assert_eq "removed image $NAME" "$out" "image rm removes it"
[ ! -e "$STORE/$NAME.qcow2" ] && [ ! -e "$STORE/$NAME.json" ] && [ ! -e "$STORE/.$NAME.lock" ] &&
    ok "the image, its recipe and its lock are gone" || fail "rm left $(ls -A "$STORE")"
[ "$(ls -A "$STORE" | grep -c -- "$OTHER")" = 0 ] && ok "the failed builds left no lock" || fail "left: $(ls -A "$STORE")"
run_mvm -q --image "$NAME" -- true
assert_eq 125 "$RC" "--image of a removed NAME fails with 125"
assert_contains "$ERR" "no image $NAME (see sudo mvm image ls; build it with sudo mvm image build $NAME)" "the error suggests mvm image ls and build"
"$MVM" image rm "$NAME" > /dev/null 2>&1
assert_eq 125 "$?" "image rm of a missing NAME fails with 125"
assert_no_leftovers "image build"
