#!/usr/bin/env bash
# Builds (or reuses) a Debian live-boot ISO with Debian's own live-build and
# prints its path. Usage: tests/image/build-live-build.sh OUT_DIR (run as root).
#
#   OUT_DIR/<key>/live.iso   the ISO; <key> hashes this script, live-init.sh
#                            and the candidate versions of live-build and of
#                            the packages in the image, so a second run with
#                            the same inputs is instant
#
# `lb config` for bookworm (same mirror logic as build-kiwi-live.sh), as small
# and fast as live-build allows: debootstrap --variant=minbase, no
# recommends, no firmware, memtest, win32-loader, installer, security or
# updates archives, checksums or zsync, lz4 squashfs, syslinux. (live-build
# 20230502's --build-with-chroot false is broken: binary_chroot exits
# without its stage file and binary_rootfs then refuses to run; so the
# bootloader tools are installed into the chroot for the binary stage.) The
# image: linux-image-amd64 + live-boot with
# live-boot-initramfs-tools (initramfs-tools, MODULES=netboot, with busybox,
# whose wget serves fetch=), no init system (--initsystem none): the kernel
# command line's init=/sbin/isoboot-init is tests/image/live-init.sh, which
# prints ISOBOOT-LIVE-OK with the facts proving where its root comes from.
# The kernel modules and documentation are left out of filesystem.squashfs
# (config/rootfs/excludes): live-boot's fetch= downloads the whole squashfs
# into RAM, and the root only runs busybox. The ISO has live/vmlinuz,
# live/initrd.img and live/filesystem.squashfs, what src/iso/layout.cc
# detects as Debian live.
#
# Environment: LB_MIRROR (default: as KIWI_MIRROR in build-kiwi-live.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { echo "build-live-build: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=tests/image/lib.sh
source "$here/lib.sh"

(($# == 1)) || die "usage: $0 OUT_DIR"
[[ $(id -u) == 0 ]] || die "needs root (live-build): run with sudo"
for tool in lb debootstrap xorriso mksquashfs flock; do
  command -v "$tool" >/dev/null || die "$tool missing: scripts/deps.sh kiwi"
done
mkdir -p "$1"
out_dir=$(cd "$1" && pwd)

suite=bookworm
volid=ISOBOOT_DEBLIVE
packages=(linux-image-amd64 live-boot live-boot-initramfs-tools initramfs-tools busybox)
mirror=$(image_mirror "${LB_MIRROR:-${KIWI_MIRROR:-}}")

versions=$(image_versions live-build "${packages[@]}")
key=$( { echo "$suite $mirror $volid"; echo "$versions"; cat "$0" "$here/lib.sh" "$here/live-init.sh"; } | sha256sum | cut -c1-16)
iso=$out_dir/$key/live.iso
image_reuse_or_lock "$iso" "$out_dir"

work=$(mktemp -d "$out_dir/work.XXXXXX")
cleanup() {
  # lb clean unmounts what live-build mounted in the chroot (proc, sys, dev/pts).
  (cd "$work" && lb clean --all >/dev/null 2>&1) || true
  if ! grep -q " $work/" /proc/mounts; then rm -rf "$work"; fi
}
trap cleanup EXIT
buildlog=$out_dir/build-$key.log
: >"$buildlog"
run() {  # STEP-NAME CMD...
  local name=$1
  shift
  log "$name"
  if ! "$@" >>"$buildlog" 2>&1; then
    tail -n 40 "$buildlog" >&2
    die "$name failed (full log: $buildlog)"
  fi
}

start=$SECONDS
cd "$work"
run "lb config ($suite from $mirror)" lb config --mode debian --distribution "$suite" \
  --archive-areas main --mirror-bootstrap "$mirror" --mirror-chroot "$mirror" --mirror-binary "$mirror" \
  --security false --updates false --backports false --source false \
  --apt-recommends false --apt-indices false --cache false \
  --debootstrap-options "--variant=minbase" \
  --firmware-binary false --firmware-chroot false --memtest none --win32-loader false \
  --debian-installer none --checksums none --zsync false \
  --initsystem none --linux-packages linux-image --linux-flavours amd64 \
  --binary-images iso --bootloaders syslinux \
  --chroot-squashfs-compression-type lz4 \
  --iso-volume "$volid" --iso-application isoboot-test --iso-publisher isoboot --iso-preparer isoboot \
  --bootappend-live "boot=live init=/sbin/isoboot-init"
printf '%s\n' "${packages[@]}" >config/package-lists/isoboot.list.chroot
# The initrd carries the network drivers (fetch=) and what live-boot's hook
# adds, not every module of the kernel.
mkdir -p config/includes.chroot/etc/initramfs-tools/conf.d config/includes.chroot/sbin config/includes.chroot/etc
echo 'MODULES=netboot' >config/includes.chroot/etc/initramfs-tools/conf.d/isoboot-modules
install -m 0755 "$here/live-init.sh" config/includes.chroot/sbin/isoboot-init
echo "live-build-root-image $key" >config/includes.chroot/etc/isoboot-proof
mkdir -p config/rootfs
printf '%s\n' 'usr/lib/modules/*' 'lib/modules/*' 'usr/share/doc/*' 'usr/share/man/*' 'usr/share/locale/*' \
  'var/cache/apt/*' 'var/lib/apt/lists/*' 'boot/*' >config/rootfs/excludes
run "lb build" lb build
produced=$(find "$work" -maxdepth 1 -name '*.iso' | head -n1)
[[ -s $produced ]] || die "lb build made no ISO (log: $buildlog)"
mkdir -p "$out_dir/$key"
mv "$produced" "$iso.tmp"
mv "$iso.tmp" "$iso"
cd /
for old in "$out_dir"/[0-9a-f]*[0-9a-f] "$out_dir"/build-*.log; do
  case ${old##*/} in
    "$key" | "build-$key.log") ;;
    [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f] | build-*.log)
      grep -q " $old/" /proc/mounts || rm -rf "$old" ;;
  esac
done
log "done in $((SECONDS - start)) s: $iso ($(du -h "$iso" | cut -f1))"
echo "$iso"
