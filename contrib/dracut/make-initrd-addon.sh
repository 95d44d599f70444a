#!/usr/bin/env bash
# Usage: make-initrd-addon.sh OUTPUT [ISOBOOT_BINARY]
#
# Makes an initramfs archive that adds the boot-time overlay restore
# (95isoboot-overlay's pre-pivot hook) to a dracut initrd that was built
# without it, so a live image need not be rebuilt: load it after the image's
# own initrd and the kernel unpacks it on top —
#   isoboot serve live.iso --backup-dir DIR --initrd-add OUTPUT
# (or pxelinux `INITRD initrd,OUTPUT`, iPXE a second `initrd`).
#
# It holds the hook at dracut's hook path and the isoboot binary with the
# shared libraries it was linked against on this machine, in a directory of
# its own (usr/lib/isoboot, run through its own dynamic loader), so the
# initrd's libraries are never replaced. It adds files only, no directories
# the initrd already has: the kernel replaces an existing entry of another
# type (a merged-/usr symlink such as lib -> usr/lib) with the archive's.
set -euo pipefail
out=${1:?usage: make-initrd-addon.sh OUTPUT [ISOBOOT_BINARY]}
bin=${2:-$(command -v isoboot || true)}
[[ -x $bin ]] || { echo "make-initrd-addon: no isoboot binary (give its path)" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
hook=$here/95isoboot-overlay/isoboot-overlay-restore.sh

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
lib=$stage/usr/lib/isoboot
mkdir -p "$lib" "$stage/usr/bin" "$stage/usr/lib/dracut/hooks/pre-pivot"
install -m 0755 "$bin" "$lib/isoboot"
# Debug info would be most of the archive, which travels to every node.
strip --strip-unneeded "$lib/isoboot" 2>/dev/null || true
loader=
while read -r path; do
  case $path in
    */ld-linux*) loader=$(basename "$path") ;;
  esac
  install -m 0755 "$path" "$lib/$(basename "$path")"
done < <(ldd "$bin" | grep -o '/[^ ]*' | sort -u)
[[ -n $loader ]] || { echo "make-initrd-addon: $bin has no dynamic loader (ldd)" >&2; exit 1; }
cat >"$stage/usr/bin/isoboot" <<EOF
#!/bin/sh
exec /usr/lib/isoboot/$loader --library-path /usr/lib/isoboot /usr/lib/isoboot/isoboot "\$@"
EOF
chmod 0755 "$stage/usr/bin/isoboot"
install -m 0755 "$hook" "$stage/usr/lib/dracut/hooks/pre-pivot/50-isoboot-overlay.sh"

# Only our own directory and files: the parents (usr, usr/bin, usr/lib,
# dracut's hook dirs) exist in every dracut initrd.
(
  cd "$stage"
  {
    echo usr/lib/isoboot
    find usr/lib/isoboot -type f
    echo usr/bin/isoboot
    echo usr/lib/dracut/hooks/pre-pivot/50-isoboot-overlay.sh
  } | cpio --quiet -o -H newc --owner=0:0 | gzip -6n
) >"$out.partial"
mv "$out.partial" "$out"
echo "make-initrd-addon: $out ($(du -h "$out" | cut -f1), $(find "$lib" -type f | wc -l) files)"
