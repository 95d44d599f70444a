#!/usr/bin/env bash
# Builds a small ISO with the file layout of one kind of live image, for
# layout detection tests and the demo. The kernel and initrd are stand-in
# bytes (not bootable); the structure is what real images have.
# Usage: scripts/make-layout-iso.sh kiwi|dracut|debian-live|casper|unknown OUT.iso
set -euo pipefail
kind=$1
out=$2
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
put() {  # path size
  mkdir -p "$tree/$(dirname "$1")"
  head -c "$2" /dev/urandom >"$tree/$1"
}
case $kind in
  kiwi)
    put boot/x86_64/loader/linux 300000
    put boot/x86_64/loader/initrd 500000
    put boot/x86_64/loader/isolinux.bin 4096
    put boot/x86_64/loader/eltorito.img 8192
    put boot/x86_64/efi 65536
    put EFI/BOOT/bootx64.efi 20000
    put LiveOS/squashfs.img 1000000
    echo "KIWI demo live image" >"$tree/config.isoclient"
    volid=KIWI_DEMO
    boot=(-b boot/x86_64/loader/eltorito.img -no-emul-boot -boot-load-size 4 -boot-info-table
          -eltorito-alt-boot -e boot/x86_64/efi -no-emul-boot)
    ;;
  dracut)
    put images/pxeboot/vmlinuz 300000
    put images/pxeboot/initrd.img 500000
    put isolinux/isolinux.bin 4096
    put LiveOS/squashfs.img 1000000
    volid=Fedora-Live
    boot=(-b isolinux/isolinux.bin -no-emul-boot -boot-load-size 4)
    ;;
  debian-live)
    put live/vmlinuz-6.1.0-13-amd64 300000
    put live/initrd.img-6.1.0-13-amd64 500000
    put live/filesystem.squashfs 1000000
    put isolinux/isolinux.bin 4096
    put EFI/boot/bootx64.efi 20000
    volid=d-live
    boot=(-b isolinux/isolinux.bin -no-emul-boot -boot-load-size 4)
    ;;
  casper)
    put casper/vmlinuz 300000
    put casper/initrd 500000
    put casper/filesystem.squashfs 1000000
    put EFI/boot/bootaa64.efi 20000
    volid=Ubuntu-Server
    boot=()
    ;;
  unknown)
    put kernels/vmlinuz-custom 300000
    put other/bzImage 300000
    put data/readme.txt 100
    volid=OTHER
    boot=()
    ;;
  *)
    echo "unknown layout $kind" >&2
    exit 2
    ;;
esac
xorriso -as mkisofs -quiet -R -J -V "$volid" "${boot[@]}" -o "$out" "$tree" 2>/dev/null
echo "$out"
