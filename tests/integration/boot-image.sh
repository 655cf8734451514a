#!/bin/bash
# --boot image: one image built with a kernel, systemd and cloud-init
# (--packages) and a --script that enables a service of its own; run
# through sudo with --boot image, the command runs under the image's
# systemd (PID 1) and kernel (the release the recipe names), after that
# service ran, as the user in the project directory (a file it writes is
# the user's on the host), and its exit status comes back; the stored
# image's bytes are unchanged and nothing is left.  The same image with
# mvm's own boot has mvm-init as PID 1 (the service never ran; the
# kernel may well be the same release as the image's).  (Without dbus in the image, systemctl works for
# root only: the test asks /run and /proc instead.)  The refusals, after that positive control:
# --boot image without --image, with an image file, with --kernel, and
# a bad --boot value.  A killed agent powers the VM off: the session ends
# with an error instead of waiting.
. "$(dirname "$0")/lib.sh"
image_build_setup
NAME=mvm-it-boot-$$
defer "'$REAL_MVM' image rm $NAME > /dev/null 2>&1"

# A service only the image's own systemd starts.
cat > "$WORK/provision.sh" << 'EOF'
#!/bin/sh
set -e
cat > /etc/systemd/system/mvm-it-hello.service << 'UNIT'
[Unit]
Description=mvm test: a service of the image's own
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo hello-from-the-image-service > /run/mvm-it-hello'
[Install]
WantedBy=multi-user.target
UNIT
systemctl enable mvm-it-hello.service
echo provisioned > /etc/mvm-it-marker
EOF
chmod 644 "$WORK/provision.sh"

(cd "$PROJECT" && "$MVM" image build "$NAME" --packages systemd-sysv,udev,linux-image-amd64,cloud-init \
    --script "$WORK/provision.sh" --net none) > "$WORK/out" 2> "$WORK/err"
assert_eq 0 "$?" "mvm image build $NAME with a kernel, systemd and cloud-init succeeds (stderr: $(tail -3 "$WORK/err"))"
grep "^mvm image build $NAME: \[" "$WORK/err" >&2
release=$("$MVM" image inspect "$NAME" | python3 -c 'import json, sys; print(json.load(sys.stdin)["kernel"] or "")')
case "$release" in
[0-9]*) ok "the recipe names the kernel kept for --boot image ($release)" ;;
*) fail "the recipe names no kernel: [$release]" ;;
esac
assert_contains "$(cat "$WORK/err")" "keeping its kernel $release for --boot image" "a progress line says so"
for f in vmlinuz initrd; do
    [ -s "$STORE/$NAME.$f" ] && ok "its $f is stored beside the image" || fail "no $STORE/$NAME.$f"
done
sum=$(sha256sum < "$STORE/$NAME.qcow2")

# --- the image's own boot, as the user through sudo
start=$(date +%s)
as_user run_mvm -q --image "$NAME" --boot image -- sh -c 'echo "pid1 $(cat /proc/1/comm)"; echo "kernel $(uname -r)"
    cat /etc/mvm-it-marker /run/mvm-it-hello; echo "user $(id -u) $(pwd)"
    echo "netcfg $(ls /etc/systemd/network /etc/network/interfaces.d /etc/netplan 2> /dev/null | grep -c cloud-init)"
    echo "seed-mounts $(grep -c mvm-seed /proc/mounts)"
    echo data > written-by-guest; echo to-stderr >&2; exit 7'
took=$(($(date +%s) - start))
echo "note: the --boot image session took ${took}s" >&2
assert_eq 7 "$RC" "the command's exit status comes back (stderr: $(tail -c 600 <<< "$ERR"))"
assert_contains "$OUT" "pid1 systemd" "PID 1 is the image's systemd"
assert_contains "$OUT" "kernel $release" "the kernel is the image's own"
assert_contains "$OUT" "provisioned" "the script's marker is there"
assert_contains "$OUT" "hello-from-the-image-service" "the image's own service ran before the command"
assert_contains "$OUT" "user $TEST_UID $PROJECT" "the command runs as the user in the project directory"
assert_contains "$ERR" "to-stderr" "its stderr comes back apart"
assert_contains "$OUT" "netcfg 0" "cloud-init wrote no network configuration (mvm-init set the interface up)"
assert_contains "$OUT" "seed-mounts 0" "the seed is no longer mounted when the command runs"
assert_eq "data $TEST_USER" "$(cat "$PROJECT/written-by-guest" 2> /dev/null) $(stat -c %U "$PROJECT/written-by-guest" 2> /dev/null)" \
    "a file it wrote in the project is on the host, the user's"
assert_eq "$sum" "$(sha256sum < "$STORE/$NAME.qcow2")" "the stored image is unchanged"
assert_eq "" "$(ls -A /var/lib/mvm/overlays 2> /dev/null)" "no overlay is left"
assert_no_leftovers "after --boot image"

# --- the agent killed (guest root may): the VM powers itself off and the
# session ends with an error, not at --timeout
start=$(date +%s)
run_mvm -q --root --timeout 240 --image "$NAME" --boot image -- sh -c 'kill -9 $PPID; sleep 600'
took=$(($(date +%s) - start))
assert_eq 125 "$RC" "a killed agent ends the session with 125 (after ${took}s; stderr: $(tail -c 300 <<< "$ERR"))"
assert_contains "$ERR" "the VM stopped before the command finished" "the error says the VM stopped"
assert_no_leftovers "after the killed agent"

# --- the same image with mvm's boot: mvm-init, the host's kernel
run_mvm -q --image "$NAME" -- sh -c 'echo "pid1 $(cat /proc/1/comm)"; echo "kernel $(uname -r)"; cat /run/mvm-it-hello 2>&1 || true'
assert_eq 0 "$RC" "the image also boots with mvm's kernel and init (stderr: $ERR)"
assert_not_contains "$OUT" "pid1 systemd" "there PID 1 is not systemd (it is mvm-init)"
assert_not_contains "$OUT" "hello-from-the-image-service" "and the image's service did not run"

# --- refusals, each one line with 125 and nothing left
refused() { # what expected args...
    local what=$1 expected=$2
    shift 2
    run_mvm "$@" -- true
    assert_eq 125 "$RC" "$what: 125"
    assert_contains "$ERR" "$expected" "$what: the error says why"
    assert_eq 1 "$(grep -c '^mvm: ' <<< "$ERR")" "$what: one line"
}
refused "--boot image without --image" "--boot image needs --image NAME" --boot image
mkfs.ext4 -q "$WORK/file.img" 16M
refused "--boot image with an image file" "is an image file; it boots only images that mvm image build made" \
    --boot image --image "$WORK/file.img"
refused "--boot image with --kernel" "--boot image boots the image's own kernel: drop --kernel" \
    --boot image --image "$NAME" --kernel "/boot/vmlinuz-$(uname -r)"
refused "a bad --boot" "boot mode" --boot firmware
assert_eq "" "$(ls -A /var/lib/mvm/overlays 2> /dev/null)" "no overlay is left after the refusals"
assert_no_leftovers "after the refusals"
