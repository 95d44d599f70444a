#!/usr/bin/env bash
# The boot-time restore hook (contrib/dracut/95isoboot-overlay) outside a
# real initrd: dracut's getarg/info/warn are stubbed, /run is a private
# tmpfs holding a KIWI-style /run/overlay/overlayfs/rw, and $NEWROOT is a real
# overlay mount. With isoboot.overlay=<backup> the merged root shows the
# backup afterwards; with a corrupted backup, and with a backup bigger than
# the RAM-backed /run (a 1 MiB tmpfs here), the boot goes on with the empty
# overlay, as the warning says. Not tested: a real dracut initrd booting in
# QEMU, and isoboot killed while moving entries in. Root.
set -euo pipefail
if [[ -z ${OVERLAY_TEST_NS:-} ]]; then
  exec unshare --mount --propagation private env OVERLAY_TEST_NS=1 bash "$0" "$@"
fi
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
hook=$src/contrib/dracut/95isoboot-overlay/isoboot-overlay-restore.sh
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp overlay-dracut
cleanup() { umount -l "$tmp/sysroot" 2>/dev/null || true; }

# The backup a node made last time.
mkdir -p "$tmp/lower/etc" "$tmp/saved/etc"
echo default >"$tmp/lower/etc/motd"
echo configured >"$tmp/saved/etc/motd"
"$bin" overlay backup --upper "$tmp/saved" -o "$tmp/node.tar.zst" >/dev/null
cp "$tmp/node.tar.zst" "$tmp/bad.tar.zst"
head -c 3000000 /dev/urandom >"$tmp/saved/etc/big"
echo later >"$tmp/saved/etc/zz-later"
"$bin" overlay backup --upper "$tmp/saved" -o "$tmp/big.tar.zst" >/dev/null
printf 'X' | dd of="$tmp/bad.tar.zst" bs=1 seek=30 conv=notrunc status=none

boot() {  # URL [RUN_SIZE]: a fresh live overlay, then the hook as dracut would run it
  umount -l "$tmp/sysroot" 2>/dev/null || true
  umount -l /run 2>/dev/null || true
  mount -t tmpfs -o "size=${2:-50%}" tmpfs /run
  mkdir -p /run/overlay/overlayfs/rw /run/overlay/overlayfs/work "$tmp/sysroot"
  mount -t overlay overlay \
    -o "lowerdir=$tmp/lower,upperdir=/run/overlay/overlayfs/rw,workdir=/run/overlay/overlayfs/work" "$tmp/sysroot"
  PATH="$(dirname "$bin"):$PATH" NEWROOT="$tmp/sysroot" URL="$1" bash -c '
    getarg() { case $1 in isoboot.overlay=) echo "$URL" ;; esac; }
    info() { echo "info: $*"; }
    warn() { echo "warn: $*"; }
    . "$0"' "$hook"
}

boot "$tmp/node.tar.zst" | tee "$tmp/log"
[[ $(cat "$tmp/sysroot/etc/motd") == configured ]] || fail "backup not applied at boot"
boot "$tmp/bad.tar.zst" | tee "$tmp/log"
grep -q 'warn: isoboot-overlay: restore of .* failed' "$tmp/log" || fail "no warning for a corrupted backup"
[[ $(cat "$tmp/sysroot/etc/motd") == default ]] || fail "corrupted backup changed the root"
[[ -z $(ls -A /run/overlay/overlayfs/rw) ]] || fail "corrupted backup wrote into the upper dir"
grep -q 'booting with an empty overlay (nothing was restored)' "$tmp/log" || fail "warning for a corrupted backup"
boot "$tmp/big.tar.zst" 1m | tee "$tmp/log"
grep -q 'warn: isoboot-overlay: restore of .* failed, booting with an empty overlay.*no space left' "$tmp/log" ||
  fail "no accurate warning for a backup bigger than /run"
[[ -z $(ls -A /run/overlay/overlayfs/rw) ]] || fail "a restore onto a full /run left files in the upper dir: $(ls -A /run/overlay/overlayfs/rw)"
[[ $(cat "$tmp/sysroot/etc/motd") == default ]] || fail "a restore onto a full /run changed the root"
[[ $(ls -A /run/overlay/overlayfs) == "rw"$'\n'"work" ]] || fail "left in /run/overlay/overlayfs: $(ls -A /run/overlay/overlayfs)"
echo PASS
