#!/bin/bash
# Builds the optional guest kernel made for mvm (issue 14): Debian's
# linux-source-6.1 configured with mvm-guest.config on top of allnoconfig,
# everything built in, no modules.  Installs vmlinux-<release> and
# config-<release> into OUTDIR (default /var/lib/mvm/kernel), where
# `mvm run --kernel OUTDIR/vmlinux-<release>` boots it; mvm reads CONFIG_HZ
# from the config beside the image.
#
#   sudo contrib/kernel/build.sh [OUTDIR]
#
# Environment: MVM_KERNEL_WORKDIR (source and objects, default
# /var/tmp/mvm-kernel), MVM_KERNEL_JOBS (make -j, default: the CPU count).
# Running it again rebuilds only what changed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fragment=$here/mvm-guest.config
outdir=${1:-/var/lib/mvm/kernel}
work=${MVM_KERNEL_WORKDIR:-/var/tmp/mvm-kernel}
jobs=${MVM_KERNEL_JOBS:-$(nproc)}
pkg=linux-source-6.1
tarball=/usr/src/$pkg.tar.xz
deps=("$pkg" build-essential bc bison flex libelf-dev libssl-dev)

step() { printf 'build.sh: %s\n' "$*" >&2; }
die() {
    printf 'build.sh: error: %s\n' "$*" >&2
    exit 1
}

[ -r "$fragment" ] || die "$fragment is missing"
[ "$(uname -m)" = x86_64 ] || die "this builds an x86_64 guest kernel; this host is $(uname -m)"

step "checking build dependencies"
missing=()
for p in "${deps[@]}"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}): run as root or apt-get install them"
    step "installing ${missing[*]}"
    apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
        die "apt-get could not install ${missing[*]}"
fi
[ -r "$tarball" ] || die "$tarball not found although $pkg is installed"
version=$(dpkg-query -W -f '${Version}' $pkg)

src=$work/$pkg
obj=$work/build
stamp=$work/.unpacked-$version
mkdir -p "$work"
if [ ! -e "$stamp" ]; then
    step "unpacking $pkg $version into $work"
    rm -rf "$src" "$obj" "$work"/.unpacked-*
    tar -xf "$tarball" -C "$work" || die "could not unpack $tarball"
    touch "$stamp"
else
    step "using the source unpacked in $src ($version)"
fi
[ -f "$src/Makefile" ] || die "$src does not hold a kernel source tree"
mkdir -p "$obj"

step "configuring: allnoconfig + $(basename "$fragment")"
(cd "$src" && ARCH=x86_64 scripts/kconfig/merge_config.sh -n -O "$obj" "$fragment") \
    >"$obj/merge_config.log" 2>&1 || die "merge_config.sh failed; see $obj/merge_config.log"

step "checking that every option of the fragment took"
bad=0
while IFS= read -r line; do
    case $line in
    CONFIG_*=*)
        opt=${line%%=*}
        want=$line
        ;;
    "# CONFIG_"*" is not set")
        opt=${line#\# }
        opt=${opt%% *}
        want=
        ;;
    *) continue ;;
    esac
    got=$(grep -E "^$opt=" "$obj/.config" || true)
    if [ "$got" != "$want" ]; then
        printf 'build.sh: error: %s: asked for "%s", Kconfig gave "%s" (a dependency missing?)\n' \
            "$opt" "${want:-not set}" "${got:-not set}" >&2
        bad=1
    fi
done <"$fragment"
[ $bad = 0 ] || die "the configuration is not what $(basename "$fragment") asks for"
grep -q '^CONFIG_MODULES=y' "$obj/.config" && die "CONFIG_MODULES ended up set"

step "building vmlinux with $jobs jobs (nice 10; about 10 minutes on 2 cores)"
start=$(date +%s)
nice -n 10 make -C "$src" O="$obj" ARCH=x86_64 -j"$jobs" vmlinux >"$obj/build.log" 2>&1 ||
    die "the kernel build failed; the end of $obj/build.log:
$(tail -n 20 "$obj/build.log")"
step "vmlinux built in $(($(date +%s) - start)) s"

release=$(make -s -C "$src" O="$obj" ARCH=x86_64 kernelrelease 2>/dev/null)
[ -n "$release" ] || die "could not read the kernel release"

step "installing vmlinux-$release and config-$release into $outdir"
mkdir -p "$outdir"
install -m 0644 "$obj/vmlinux" "$outdir/.vmlinux-$release.tmp"
install -m 0644 "$obj/.config" "$outdir/.config-$release.tmp"
mv -f "$outdir/.vmlinux-$release.tmp" "$outdir/vmlinux-$release"
mv -f "$outdir/.config-$release.tmp" "$outdir/config-$release"
step "done: mvm run --kernel $outdir/vmlinux-$release -- ..."
