#!/usr/bin/env bash
# Builds (or reuses) a real dracut-based live ISO from Debian's packages alone
# and prints its path. Usage: tests/image/build-kiwi-live.sh OUT_DIR [FLAVOR]
# (run as root), FLAVOR one of
#   kiwi           (default) KIWI's layout, initrd with KIWI's kiwi-live module
#   kiwi-dmsquash  KIWI's layout, initrd with dracut's own dmsquash-live,
#                  livenet and nbd modules instead (KIWI's flags="dmsquash"
#                  way; Debian's kiwi-dracut-live 9.24 has no HTTP root)
#   dracut         Fedora's layout (images/pxeboot/{vmlinuz,initrd.img},
#                  LiveOS/squashfs.img), the same dmsquash-live/livenet/nbd
#                  initrd: tests/image/build-dracut-live.sh
#
#   OUT_DIR/chroot-<pkgkey>/   debootstrap'ed bookworm with linux-image-amd64,
#                              dracut, dracut-live, nbd-client, curl and KIWI's
#                              kiwi-dracut-live (kept, so a later builder
#                              change does not redo debootstrap; one chroot
#                              for every flavor)
#   OUT_DIR/<key>/FLAVOR.iso   the ISO (live.iso for kiwi); <key> hashes this
#                              directory's scripts and the candidate versions
#                              of the packages, so a second run with the same
#                              inputs is instant. The squashfs and each
#                              initrd are kept there too and shared by the
#                              flavors.
#
# KIWI's layout: boot/x86_64/loader/{linux,initrd} and LiveOS/squashfs.img
# holding LiveOS/rootfs.img (ext4), which is exactly what 90kiwi-live's
# kiwi-live-lib.sh mounts (rd.live.dir=LiveOS and rd.live.squashimg=squashfs.img
# are its defaults) and also what dracut's dmsquash-live-root.sh accepts
# (a squashfs holding LiveOS/rootfs.img, from a mounted ISO, a block device or
# a file livenet downloaded). The initrd is made by
# dracut in the chroot: systemd-based (kiwi-live's generator writes
# sysroot.mount), bash as /bin/sh (kiwi-live's scripts are bash-only; dash
# breaks them), network-legacy (dhclient) pinned so the network module does not
# pull in networkd/dbus, and exactly the kernel drivers it needs (--drivers:
# aoe, virtio-net, e1000, squashfs, loop, iso9660, overlay, ext4, nbd, and
# sr_mod, ata_piix, ahci for QEMU's CD drive on pc and q35 machines; without
# it a no-hostonly initrd carries every module of the kernel, 44 MB and 4.5 min).
# The root is tiny: busybox-static, /sbin/init printing ISOBOOT-LIVE-OK plus
# facts proving where it runs from (AoE device, loop backing file, nbd), then
# powering off.
#
# Environment: KIWI_MIRROR (default: the first bookworm deb.debian.org-style
# URI in /etc/apt/sources.list*), KIWI_VOLID (default ISOBOOT_KIWI,
# ISOBOOT_KIWI_DM, ISOBOOT_DRACUT by flavor).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { echo "build-kiwi-live: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=tests/image/lib.sh
source "$here/lib.sh"

(($# == 1 || $# == 2)) || die "usage: $0 OUT_DIR [kiwi|kiwi-dmsquash|dracut]"
flavor=${2:-kiwi}
case $flavor in
  kiwi) default_volid=ISOBOOT_KIWI iso_name=live.iso initrd_modules=kiwi-live ;;
  kiwi-dmsquash) default_volid=ISOBOOT_KIWI_DM iso_name=kiwi-dmsquash.iso initrd_modules="dmsquash-live livenet nbd" ;;
  dracut) default_volid=ISOBOOT_DRACUT iso_name=dracut-live.iso initrd_modules="dmsquash-live livenet nbd" ;;
  *) die "unknown flavor $flavor (kiwi, kiwi-dmsquash or dracut)" ;;
esac
[[ $(id -u) == 0 ]] || die "needs root (debootstrap, chroot, mounts): run with sudo"
for tool in debootstrap xorriso mksquashfs mkfs.ext4 chroot flock grub-mkstandalone mkfs.vfat mmd mcopy; do
  command -v "$tool" >/dev/null || die "$tool missing: scripts/deps.sh kiwi"
done
# The CD's boot loaders come from the host's packages (scripts/deps.sh kiwi).
for f in /usr/lib/ISOLINUX/isolinux.bin /usr/lib/ISOLINUX/isohdpfx.bin \
  /usr/lib/syslinux/modules/bios/ldlinux.c32 /usr/lib/grub/x86_64-efi/linux.mod; do
  [[ -r $f ]] || die "$f missing: scripts/deps.sh kiwi (isolinux, syslinux-common, grub-efi-amd64-bin)"
done
mkdir -p "$1"
out_dir=$(cd "$1" && pwd)

volid=${KIWI_VOLID:-$default_volid}
suite=bookworm
# What the chroot gets. --no-install-recommends keeps it small; fdisk and
# udev are needed by kiwi-live's install() (fdisk, partprobe...) and dracut's
# systemd modules; zstd compresses the initrd; dracut-live (dmsquash-live,
# livenet), curl (livenet's downloader) and nbd-client (the nbd module) are
# for the dmsquash flavors.
packages=(linux-image-amd64 systemd udev dracut dracut-core dracut-network kiwi-dracut-live
  isc-dhcp-client iproute2 procps bash busybox-static kmod fdisk zstd dracut-live curl nbd-client)

# The mirror debootstrap uses (tests/image/lib.sh).
mirror=$(image_mirror "${KIWI_MIRROR:-}")

# Cache keys: the candidate versions apt sees (same mirror as debootstrap) and
# the builder scripts.
versions=$(image_versions "${packages[@]}")
pkg_key=$( { echo "$suite $mirror"; echo "$versions"; sed -n '/^# BEGIN chroot/,/^# END chroot/p' "$0"; } | sha256sum | cut -c1-16)
# The host's packages behind the CD's boot loaders count too.
boot_versions=$(dpkg-query -W -f='${Package} ${Version}\n' isolinux syslinux-common grub-efi-amd64-bin \
  grub-common mtools dosfstools 2>/dev/null || true)
key=$( { echo "$pkg_key ${KIWI_VOLID:-}"; echo "$boot_versions"; cat "$here/build-kiwi-live.sh" "$here/lib.sh" "$here/live-init.sh"; } | sha256sum | cut -c1-16)
iso=$out_dir/$key/$iso_name
image_reuse_or_lock "$iso" "$out_dir"

work=$(mktemp -d "$out_dir/work.XXXXXX")
mounted=()
cleanup() {
  local m
  for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done
  # Never delete through a mount point that is still there.
  if ! grep -q " $work/" /proc/mounts; then rm -rf "$work"; fi
}
trap cleanup EXIT
buildlog=$out_dir/build-$key.log
: >"$buildlog"
run() {  # STEP-NAME CMD...: runs CMD with output in the build log
  local name=$1
  shift
  log "$name"
  if ! "$@" >>"$buildlog" 2>&1; then
    tail -n 40 "$buildlog" >&2
    die "$name failed (full log: $buildlog)"
  fi
}

# BEGIN chroot (this section is part of the chroot's cache key)
chroot_dir=$out_dir/chroot-$pkg_key
if [[ ! -e $chroot_dir/.complete ]]; then
  start=$SECONDS
  rm -rf "$chroot_dir"
  tmp_root=$work/chroot
  run "debootstrap $suite from $mirror" debootstrap --variant=minbase "$suite" "$tmp_root" "$mirror"
  mount -t proc proc "$tmp_root/proc" && mounted+=("$tmp_root/proc")
  mount -t sysfs sysfs "$tmp_root/sys" && mounted+=("$tmp_root/sys")
  # No initrd at kernel install: dracut runs once, below, with our options.
  echo 'do_initrd = no' >"$tmp_root/etc/kernel-img.conf"
  run "apt-get install ${packages[*]}" chroot "$tmp_root" env DEBIAN_FRONTEND=noninteractive INITRD=No \
    apt-get install -y -q --no-install-recommends "${packages[@]}"
  chroot "$tmp_root" apt-get clean
  umount "$tmp_root/sys" "$tmp_root/proc"
  mounted=()
  touch "$tmp_root/.complete"
  mv "$tmp_root" "$chroot_dir"
  log "chroot ready in $((SECONDS - start)) s"
fi
# END chroot

kver=$(find "$chroot_dir/lib/modules" -mindepth 1 -maxdepth 1 -printf "%f\n" | sort -V | tail -n1)
[[ -n $kver && -e $chroot_dir/boot/vmlinuz-$kver ]] || die "no kernel in $chroot_dir"
mkdir -p "$out_dir/$key"

# The initrd, by dracut in the chroot with KIWI's kiwi-live module or
# dracut's dmsquash-live, livenet and nbd; kept per module set, so the two
# dmsquash flavors share one.
initrd=$out_dir/$key/initrd-${initrd_modules// /-}
if [[ ! -s $initrd ]]; then
  start=$SECONDS
  # The network module always adds every wired NIC driver (kernel-network-
  # modules ignores --drivers); omit all of drivers/net but the two QEMU NICs
  # (virtio-net, e1000): it halves the initrd, which later travels over TFTP.
  omit_drivers=$(cd "$chroot_dir/lib/modules/$kver/kernel/drivers/net" && find . -name '*.ko' -printf '%f\n' |
    sed 's/\.ko$//; s/-/_/g' | grep -vxE 'virtio_net|net_failover|e1000' | sort | tr '\n' ' ')
  mount -t proc proc "$chroot_dir/proc" && mounted+=("$chroot_dir/proc")
  mount -t sysfs sysfs "$chroot_dir/sys" && mounted+=("$chroot_dir/sys")
  run "dracut (kernel $kver, $initrd_modules)" chroot "$chroot_dir" dracut --force --no-hostonly --no-hostonly-cmdline \
    --modules "bash systemd systemd-initrd dracut-systemd kernel-modules udev-rules base fs-lib rootfs-block dm network network-legacy $initrd_modules" \
    --omit "dash plymouth" \
    --drivers "aoe virtio_net virtio_pci e1000 squashfs loop iso9660 overlay ext4 nbd sr_mod ata_piix ahci" \
    --omit-drivers "$omit_drivers" \
    --compress zstd \
    /tmp/initrd "$kver"
  umount "$chroot_dir/sys" "$chroot_dir/proc"
  mounted=()
  chmod 0644 "$chroot_dir/tmp/initrd"
  mv "$chroot_dir/tmp/initrd" "$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  log "initrd built in $((SECONDS - start)) s ($(du -h "$initrd" | cut -f1))"
fi

# The live root: busybox-static and an init proving where it runs from; one
# squashfs for every flavor.
squash=$out_dir/$key/squashfs.img
proof="kiwi-root-image $key"
if [[ ! -s $squash ]]; then
  root=$work/root
  mkdir -p "$root"/{bin,sbin,dev,proc,sys,run,tmp,etc,mnt}
  cp "$chroot_dir/bin/busybox" "$root/bin/busybox"
  for applet in $(chroot "$chroot_dir" /bin/busybox --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
  done
  echo "$proof" >"$root/etc/isoboot-proof"
  cat >"$root/etc/os-release" <<'EOF'
NAME="isoboot KIWI test root"
ID=isoboot-kiwi-test
PRETTY_NAME="isoboot KIWI live test root (busybox)"
EOF
  install -m 0755 "$here/live-init.sh" "$root/sbin/init"
  mkdir -p "$work/container/LiveOS"
  run "rootfs.img (ext4)" mkfs.ext4 -q -F -L ROOT -E root_owner=0:0 -d "$root" "$work/container/LiveOS/rootfs.img" 16M
  run "squashfs.img" mksquashfs "$work/container" "$squash.tmp" -noappend -all-root -comp xz -no-progress
  mv "$squash.tmp" "$squash"
fi

# Makes the KIWI tree in ISO_DIR bootable as a CD the way a KIWI live ISO
# is: isolinux as the El Torito BIOS entry (isolinux/isolinux.bin, with an
# isohybrid MBR), GRUB (grub-mkstandalone) in an EFI System Partition
# image as the UEFI entry (boot/x86_64/efi, also a GPT partition of the
# hybrid image), and one menu entry in each booting the live system from the
# CD with kiwi-live's root=live:CDLABEL=<volume id> (90kiwi-live's
# parse-kiwi-live.sh) on the serial console, with isoboot.shell: booted from
# its CD, the live system stays up with a shell on that console, as a real
# live ISO gives its console a login. The embedded GRUB config finds
# the CD by its label and reads the menu from boot/grub2/grub.cfg on it.
# Uses WORK_DIR for scratch; sets xorriso_boot to xorriso's boot options.
make_cd_bootable() {  # ISO_DIR WORK_DIR
  local tree=$1 tmp=$2 loader=boot/x86_64/loader
  local append="root=live:CDLABEL=$volid console=ttyS0 isoboot.shell"
  mkdir -p "$tmp" "$tree/boot/grub2" "$tree/isolinux"
  cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$tree/isolinux/"
  # isolinux 6.04 looks for ldlinux.c32 and isolinux.cfg in fixed places
  # (/boot/isolinux, /isolinux, ...), not beside isolinux.bin: in
  # boot/x86_64/loader it fails with "Failed to load ldlinux.c32". "serial"
  # must come first for its output to reach ttyS0.
  cat >"$tree/isolinux/isolinux.cfg" <<EOF
serial 0 115200
default live
prompt 0
label live
  kernel /$loader/linux
  append initrd=/$loader/initrd $append
EOF
  cat >"$tree/boot/grub2/grub.cfg" <<EOF
set default=0
set timeout=1
menuentry "isoboot KIWI live test ($volid)" {
  linux /$loader/linux $append
  initrd /$loader/initrd
}
EOF
  cat >"$tmp/embedded.cfg" <<EOF
search --no-floppy --set=root --label $volid
configfile (\$root)/boot/grub2/grub.cfg
EOF
  run "grub-mkstandalone (x86_64-efi)" grub-mkstandalone --format=x86_64-efi --output="$tmp/bootx64.efi" \
    --locales= --fonts= --themes= \
    --install-modules="normal linux configfile search search_label search_fs_file iso9660 part_gpt part_msdos fat echo test gzio all_video efi_gop efi_uga boot" \
    --modules="part_gpt part_msdos iso9660 search search_label" \
    "boot/grub/grub.cfg=$tmp/embedded.cfg"
  local efi=$tree/boot/x86_64/efi kib
  kib=$(($(stat -c %s "$tmp/bootx64.efi") / 1024 + 256))
  run "EFI System Partition image (${kib} KiB)" mkfs.vfat -n EFIBOOT -C "$efi" "$kib"
  run "EFI/BOOT in the ESP" mmd -i "$efi" ::/EFI ::/EFI/BOOT
  run "EFI/BOOT/BOOTX64.EFI" mcopy -i "$efi" "$tmp/bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
  xorriso_boot=(-isohybrid-mbr /usr/lib/ISOLINUX/isohdpfx.bin -c boot/x86_64/boot.catalog
    -b isolinux/isolinux.bin -no-emul-boot -boot-load-size 4 -boot-info-table
    -eltorito-alt-boot -e boot/x86_64/efi -no-emul-boot -isohybrid-gpt-basdat)
}

case $flavor in
  dracut) kernel_path=images/pxeboot/vmlinuz initrd_path=images/pxeboot/initrd.img ;;
  *) kernel_path=boot/x86_64/loader/linux initrd_path=boot/x86_64/loader/initrd ;;
esac
mkdir -p "$work/iso/LiveOS" "$work/iso/${kernel_path%/*}"
cp "$squash" "$work/iso/LiveOS/squashfs.img"
cp "$chroot_dir/boot/vmlinuz-$kver" "$work/iso/$kernel_path"
cp "$initrd" "$work/iso/$initrd_path"
chmod 0644 "$work/iso/$kernel_path" "$work/iso/$initrd_path"
xorriso_boot=()
if [[ $flavor == kiwi ]]; then
  make_cd_bootable "$work/iso" "$work/efi-build"
fi
run "xorriso ($flavor, volume id $volid)" xorriso -as mkisofs -quiet -R -J -V "$volid" "${xorriso_boot[@]}" \
  -o "$work/live.iso" "$work/iso"
mv "$work/live.iso" "$iso.tmp"
mv "$iso.tmp" "$iso"
# Older builds (other keys) are stale: drop them so OUT_DIR stays ~1 chroot +
# 1 ISO. Only names this script creates are touched.
for old in "$out_dir"/[0-9a-f]*[0-9a-f] "$out_dir"/build-*.log "$out_dir"/chroot-*; do
  case ${old##*/} in
    "$key" | "build-$key.log" | "chroot-$pkg_key") ;;
    [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f] | build-*.log | chroot-*)
      grep -q " $old/" /proc/mounts || rm -rf "$old" ;;
  esac
done
log "done: $iso ($(du -h "$iso" | cut -f1)), kernel $kver, proof '$proof'"
echo "$iso"
