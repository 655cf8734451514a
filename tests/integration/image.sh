#!/bin/bash
# --image: a small userland made here (a static busybox tree turned into
# ext4 with mkfs.ext4 -d) runs commands with mvm's kernel and init, as a
# raw filesystem, as qcow2, as the root partition of a GPT disk and as the
# largest partition of an MBR disk, and as xfs (mkfs.xfs -p, a protofile
# of the tree) and btrfs (mkfs.btrfs --rootdir) filesystems, whose
# modules mvm-init loads only for them.  The guest sees the image's own
# userland (not the host's /usr), writes everywhere, and the base's
# checksum does not change; no overlay is left after exit, nor after
# kill -9 of mvm and mvm cleanup.  --rootfs on the same tree runs and
# leaves the tree unchanged.  Then the refusals.
. "$(dirname "$0")/lib.sh"
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] && file -L "$BUSYBOX" 2> /dev/null | grep -q "statically linked" ||
    skip "a static busybox is missing: contrib/install-deps.sh installs busybox-static"
command -v sfdisk > /dev/null || skip "sfdisk is missing: contrib/install-deps.sh installs fdisk"
command -v qemu-img > /dev/null || skip "qemu-img is missing: contrib/install-deps.sh installs qemu-utils"
command -v mkfs.xfs > /dev/null || skip "mkfs.xfs is missing: contrib/install-deps.sh installs xfsprogs"
command -v mkfs.btrfs > /dev/null || skip "mkfs.btrfs is missing: contrib/install-deps.sh installs btrfs-progs"
ensure_test_user
chown "$TEST_USER:" "$PROJECT"
as_user() { SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER "$@"; }

IMG=$WORK/images
mkdir -p "$IMG/tree"/{bin,etc,proc,sys,dev,tmp,root}
cp "$BUSYBOX" "$IMG/tree/bin/busybox"
for c in sh ls cat echo id rm dd sync readlink grep head sha256sum; do ln -s busybox "$IMG/tree/bin/$c"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$IMG/tree/etc/passwd"
echo "mvm-test-image" > "$IMG/tree/etc/mvm-test-release"
mkfs.ext4 -q -d "$IMG/tree" "$IMG/raw.img" 64M || die "mkfs.ext4 -d failed"
qemu-img convert -O qcow2 "$IMG/raw.img" "$IMG/img.qcow2" || die "qemu-img convert failed"
# GPT: a larger Linux data partition first, the root (by its type) second.
truncate -s 160M "$IMG/gpt.img"
printf 'label: gpt\nstart=2048, size=153600, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\nstart=155648, size=131072, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709\n' |
    sfdisk -q "$IMG/gpt.img" || die "sfdisk (GPT) failed"
mkfs.ext4 -q -F -E offset=$((2048 * 512)) "$IMG/gpt.img" 75M > /dev/null 2>&1 || die "mkfs.ext4 of the GPT's first partition failed"
dd if="$IMG/raw.img" of="$IMG/gpt.img" bs=512 seek=155648 conv=notrunc status=none
# MBR: no types to go by; the root is the largest partition with a filesystem.
truncate -s 100M "$IMG/mbr.img"
printf 'label: dos\nstart=2048, size=20480, type=83\nstart=22528, size=131072, type=83\n' |
    sfdisk -q "$IMG/mbr.img" || die "sfdisk (MBR) failed"
mkfs.ext4 -q -F -E offset=$((2048 * 512)) "$IMG/mbr.img" 10M > /dev/null 2>&1 || die "mkfs.ext4 of the MBR's first partition failed"
dd if="$IMG/raw.img" of="$IMG/mbr.img" bs=512 seek=22528 conv=notrunc status=none
# xfs from a protofile of the tree (mkfs.xfs has no -d); btrfs from the tree.
python3 - "$IMG/tree" > "$IMG/xfs.proto" << 'PY'
import os, stat, sys
def walk(d, out):
    for n in sorted(os.listdir(d)):
        p = os.path.join(d, n)
        st = os.lstat(p)
        m = "%03o" % (st.st_mode & 0o777)
        if stat.S_ISLNK(st.st_mode):
            out.append("%s l--%s 0 0 %s" % (n, m, os.readlink(p)))
        elif stat.S_ISDIR(st.st_mode):
            out.append("%s d--%s 0 0" % (n, m))
            walk(p, out)
            out.append("$")
        else:
            out.append("%s ---%s 0 0 %s" % (n, m, p))
out = ["/dev/null", "0 0", "d--755 0 0"]
walk(sys.argv[1], out)
out.append("$")
print("\n".join(out))
PY
truncate -s 300M "$IMG/xfs.img"
mkfs.xfs -q -p "$IMG/xfs.proto" "$IMG/xfs.img" || die "mkfs.xfs -p failed"
truncate -s 128M "$IMG/btrfs.img"
mkfs.btrfs -q --rootdir "$IMG/tree" "$IMG/btrfs.img" > /dev/null || die "mkfs.btrfs --rootdir failed"
chmod 755 "$IMG"
chmod 644 "$IMG"/*.img "$IMG/img.qcow2"
sums() { (cd "$IMG" && sha256sum raw.img img.qcow2 gpt.img mbr.img xfs.img btrfs.img); }
before=$(sums)
overlays() { ls -A /var/lib/mvm/overlays 2> /dev/null; }

# The guest writes everywhere: the root, /etc, a binary's link, 20 MiB.
WRITE='cat /etc/mvm-test-release; readlink /bin/sh; ls -d /usr 2>&1 | head -1; grep " / " /proc/mounts | cut -d" " -f1,3;
echo x > /etc/passwd; rm /bin/ls; dd if=/dev/zero of=/big bs=1M count=20 2> /dev/null; sync; echo wrote'
for f in raw.img img.qcow2 gpt.img mbr.img xfs.img btrfs.img; do
    run_mvm -q --image "$IMG/$f" -- sh -c "$WRITE"
    assert_eq 0 "$RC" "--image $f runs a command (stderr: $ERR)"
    assert_contains "$OUT" "mvm-test-image" "--image $f: the guest sees the image's own files"
    assert_contains "$OUT" "busybox" "--image $f: its /bin/sh is the image's busybox"
    assert_contains "$OUT" "ls: /usr: No such file or directory" "--image $f: the host's /usr is not there"
    assert_contains "$OUT" "wrote" "--image $f: the guest wrote everywhere"
    case $f in
    gpt.img) assert_contains "$OUT" "/dev/vda2 ext4" "the GPT's root is the partition of the root type, not the larger first one" ;;
    mbr.img) assert_contains "$OUT" "/dev/vda2 ext4" "the MBR's root is its largest partition" ;;
    xfs.img) assert_contains "$OUT" "/dev/vda xfs" "an xfs root is mounted as xfs" ;;
    btrfs.img) assert_contains "$OUT" "/dev/vda btrfs" "a btrfs root is mounted as btrfs" ;;
    *) assert_contains "$OUT" "/dev/vda ext4" "--image $f: the whole disk is the root filesystem" ;;
    esac
done
assert_eq "$before" "$(sums)" "no base image changed, whatever the guest wrote"
assert_eq "" "$(overlays)" "no overlay is left after the sessions"
run_mvm -q --image "$IMG/raw.img" -- sh -c 'ls /big /bin/ls 2>&1; head -1 /etc/passwd'
assert_contains "$OUT" "/bin/ls" "the next session starts from the base again"
assert_contains "$OUT" "root:x:0:0" "with the base's /etc/passwd"

# --rootfs: the same tree as a directory, read-only below an overlay on
# the scratch disk (or, with --disk none, in guest memory).
tree_sum() { (cd "$IMG/tree" && find . -printf '%p %m %U %s %l\n' | sort && find . -type f -exec sha256sum {} + | sort) | sha256sum; }
tree_before=$(tree_sum)
for disk in 8G none; do
    run_mvm -q --disk "$disk" --rootfs "$IMG/tree" -- sh -c "$WRITE"
    assert_eq 0 "$RC" "--rootfs with --disk $disk runs a command (stderr: $ERR)"
    assert_contains "$OUT" "mvm-test-image" "--rootfs --disk $disk: the guest sees the tree's files"
    assert_contains "$OUT" "ls: /usr: No such file or directory" "--rootfs --disk $disk: not the host's /usr"
    assert_contains "$OUT" "overlay overlay" "--rootfs --disk $disk: its root is an overlay"
    assert_contains "$OUT" "wrote" "--rootfs --disk $disk: the guest wrote everywhere"
done
assert_eq "$tree_before" "$(tree_sum)" "the tree is unchanged, whatever the guest wrote"
run_mvm -q --rootfs "$IMG/tree" --image "$IMG/raw.img" -- true
assert_eq "125 mvm: --image and --rootfs both name the guest's root: give one" "$RC $ERR" "--rootfs with --image is refused"
run_mvm -q --rootfs "$IMG/no-tree" -- true
assert_eq "125 mvm: --rootfs $IMG/no-tree: No such file or directory" "$RC $ERR" "a missing --rootfs is refused"

# As the invoking user: the command runs as them, the project shared.
echo "from-the-host" > "$PROJECT/host-file"
chown "$TEST_USER:" "$PROJECT/host-file"
as_user run_mvm -q --image "$IMG/img.qcow2" -- sh -c 'id -u; cat host-file; echo $HOME; ls -d $HOME'
assert_eq 0 "$RC" "--image as the invoking user (stderr: $ERR)"
assert_contains "$OUT" "$TEST_UID" "the command runs as the user"
assert_contains "$OUT" "from-the-host" "in the shared project directory"
# Right after that positive control: an image the user may not read.
cp "$IMG/raw.img" "$IMG/private.img"
chmod 600 "$IMG/private.img"
as_user run_mvm -q --image "$IMG/private.img" -- true
assert_eq 125 "$RC" "an image the user cannot read is refused"
assert_contains "$ERR" "mvm: --image $IMG/private.img: Permission denied" "with the reason"

# kill -9 of mvm: the overlay was unlinked at once, so nothing remains;
# mvm cleanup removes the session directory.
(cd "$PROJECT" && exec "$MVM" run -q --image "$IMG/img.qcow2" -- sh -c 'echo up; exec sleep 1000') \
    > "$WORK/bg.out" 2> "$WORK/bg.err" &
PID=$!
defer "kill -KILL $PID 2> /dev/null"
for _ in $(seq 600); do grep -q up "$WORK/bg.out" 2> /dev/null && break; sleep 0.1; done
grep -q up "$WORK/bg.out" || die "the session never started: $(cat "$WORK/bg.err")"
held=$(ls -l /proc/"$PID"/fd 2> /dev/null | grep -c "overlays/.*qcow2 (deleted)")
[ "$held" -ge 1 ] && ok "the running session's overlay is held open, already unlinked" || fail "no deleted overlay held by mvm"
kill -KILL "$PID"
wait "$PID" 2> /dev/null
for _ in $(seq 30); do [ -z "$(pgrep -P "$PID" -f qemu-system)" ] && break; sleep 0.1; done
"$MVM" cleanup > /dev/null
assert_eq "" "$(overlays)" "no overlay after kill -9 and mvm cleanup"
assert_eq "$before" "$(sums)" "and the bases are unchanged"
assert_no_leftovers "after the --image sessions"

# The refusals: one line each, 125, nothing left.
head -c 1M /dev/urandom > "$IMG/junk.img"
truncate -s 20M "$IMG/empty-gpt.img"
printf 'label: gpt\nstart=2048, size=20480, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' | sfdisk -q "$IMG/empty-gpt.img"
printf 'KDMV' > "$IMG/disk.vmdk"
truncate -s 1M "$IMG/disk.vmdk"
qemu-img create -q -f qcow2 -b "$IMG/img.qcow2" -F qcow2 "$IMG/child.qcow2"
chmod 644 "$IMG"/*
refuse() { # image expected-message what
    run_mvm -q --image "$1" -- true
    assert_eq 125 "$RC" "$3: status 125"
    assert_contains "$ERR" "$2" "$3: says so"
    assert_eq 1 "$(printf '%s\n' "$ERR" | wc -l)" "$3: in one line"
}
refuse "$IMG/missing.img" "mvm: --image $IMG/missing.img: No such file or directory" "a missing image"
refuse "$IMG" "mvm: --image $IMG: not a regular file or block device" "a directory"
refuse "$IMG/junk.img" "is not an image mvm recognises" "an unrecognised image"
refuse "$IMG/disk.vmdk" "is a VMDK image: convert it (qemu-img convert -O qcow2" "another format"
refuse "$IMG/child.qcow2" "is a qcow2 image with a backing file: flatten it first" "a qcow2 with a backing file"
refuse "$IMG/empty-gpt.img" "--image: no partition holds a filesystem mvm can mount (ext4, xfs, btrfs)" \
    "a disk without a usable root partition"
assert_eq "" "$(overlays)" "no overlay left by the refusals"
assert_no_leftovers "after the refusals"
