#!/bin/sh
# dracut pre-pivot hook: $NEWROOT is the live overlay (KIWI: upper dir in
# /run/overlay/overlayfs/rw or /run/overlayfs/rw) and nothing has run from it
# yet. With isoboot.overlay=URL on the kernel command line, fetch the backup,
# let isoboot verify it completely (checksum trailer, manifest, paths) and
# write it into the upper dir, then remount the overlay so the merged view
# shows it. Any failure leaves the fresh, empty overlay and the boot goes on.
#   isoboot.overlay=http://server:port/overlay/<name>   (file paths work too)
#   isoboot.overlay.token=TOKEN   bearer token, if the store wants one for GET
#                                 (visible in /proc/cmdline: prefer a token-less
#                                 read URL per node on a trusted boot network)
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

url=$(getarg isoboot.overlay=)
[ -n "$url" ] || return 0 2>/dev/null || exit 0
token=$(getarg isoboot.overlay.token=)

upper=""
for dir in /run/overlay/overlayfs/rw /run/overlayfs/rw; do
    if [ -d "$dir" ] && grep -q " $NEWROOT .* overlay .*upperdir=$dir\(,\|$\)" /proc/self/mountinfo; then
        upper=$dir
        break
    fi
done
if [ -z "$upper" ]; then
    warn "isoboot-overlay: $NEWROOT is not an overlay with a known upper dir; not restoring $url"
    return 0 2>/dev/null || exit 0
fi

info "isoboot-overlay: restoring $url into $upper"
if ISOBOOT_TOKEN="$token" isoboot overlay restore --upper "$upper" --remount "$url" >/run/isoboot-overlay.log 2>&1; then
    info "isoboot-overlay: $(tail -n 1 /run/isoboot-overlay.log)"
else
    warn "isoboot-overlay: restore of $url failed, booting with an empty overlay: $(tail -n 1 /run/isoboot-overlay.log)"
fi
