#!/bin/sh
# dracut pre-pivot hook: $NEWROOT is the live overlay (KIWI: upper dir in
# /run/overlay/overlayfs/rw or /run/overlayfs/rw) and nothing has run from it
# yet. With isoboot.overlay=URL on the kernel command line, fetch the backup,
# let isoboot verify it completely (checksum trailer, manifest, paths) and
# write it into the upper dir, then remount the overlay so the merged view
# shows it. Any failure leaves the fresh, empty overlay and the boot goes on:
# isoboot unpacks into a staging dir and moves entries in only when all of
# it is written and checked, and puts them back on an error; only if isoboot
# itself is killed while moving entries in does this hook empty the upper
# dir again. The download cannot hang the boot: isoboot gives up on no
# connection within 30 s, fewer than 1 KiB/s for 30 s, more than 8 GiB, or
# (set here) a download longer than isoboot.overlay.timeout seconds.
#   isoboot.overlay=http://server:port/overlay/<name>   (file paths work too)
#   isoboot.overlay.timeout=SECONDS   whole download (default 900)
#   isoboot.overlay.token=TOKEN   bearer token, if the store wants one for GET
#                                 (visible in /proc/cmdline: prefer a token-less
#                                 read URL per node on a trusted boot network)
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

url=$(getarg isoboot.overlay=)
[ -n "$url" ] || return 0 2>/dev/null || exit 0
token=$(getarg isoboot.overlay.token=)
timeout=$(getarg isoboot.overlay.timeout=)

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
was_empty=""
[ -n "$(ls -A "$upper")" ] || was_empty=1
if ISOBOOT_TOKEN="$token" isoboot overlay restore --upper "$upper" --remount \
    --max-time "${timeout:-900}" "$url" >/run/isoboot-overlay.log 2>&1; then
    info "isoboot-overlay: $(tail -n 1 /run/isoboot-overlay.log)"
    return 0 2>/dev/null || exit 0
fi
reason=$(tail -n 1 /run/isoboot-overlay.log)
if [ -n "$was_empty" ] && [ -n "$(ls -A "$upper")" ]; then
    # isoboot died while moving entries in (a failed restore puts them back):
    # empty the upper dir, and drop the staging dir beside it.
    rm -rf "$upper"/* "$upper"/.[!.]* "$upper"/..?* "${upper%/*}"/.isoboot-restore-* 2>/dev/null
    if [ -n "$(ls -A "$upper")" ]; then
        warn "isoboot-overlay: restore of $url failed and $upper could not be emptied again; booting with a partly restored overlay: $reason"
        return 0 2>/dev/null || exit 0
    fi
fi
if [ -n "$was_empty" ]; then
    warn "isoboot-overlay: restore of $url failed, booting with an empty overlay (nothing was restored): $reason"
else
    warn "isoboot-overlay: restore of $url failed, booting with the overlay as it was (nothing was restored): $reason"
fi
