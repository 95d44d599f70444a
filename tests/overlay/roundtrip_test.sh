#!/usr/bin/env bash
# Round trip on real overlayfs mounts: changes made in a merged view (deleted
# files, a deleted and re-created directory, a renamed lower directory,
# user.* xattrs, an ACL, owners, modes, hard links, a sparse file, a symlink, a
# fifo, a .squashfs file) are backed up from the upper dir, restored into a
# fresh empty upper and mounted again: the merged view must equal the
# original, entry for entry (tests/overlay/listing.py). Then the documented
# `tar czf -C upper .` / `tar xf` procedure is run on the same upper and its
# merged view compared too: it brings back the files of the opaque directory
# (printed, not a failure: it is what isoboot fixes). Also: gzip and stdout
# variants, archives readable by zstd/gzip/bsdtar, --exclude-squashfs,
# --dry-run, auto-detection and --remount on a KIWI-style /run/overlayfs/rw,
# and the message off a live overlay. Runs in a private mount namespace, so
# every mount disappears with it. Needs root.
set -euo pipefail
if [[ -z ${OVERLAY_TEST_NS:-} ]]; then
  exec unshare --mount --propagation private env OVERLAY_TEST_NS=1 bash "$0" "$@"
fi
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
listing="python3 $src/tests/overlay/listing.py"
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp overlay-roundtrip
cleanup() { umount -R -l "$tmp"/m* 2>/dev/null || true; }
mountov() {  # upper work merged
  mkdir -p "$1" "$2" "$3"
  mount -t overlay overlay -o "lowerdir=$tmp/lower,upperdir=$1,workdir=$2,redirect_dir=on" "$3"
}

# The read-only image.
mkdir -p "$tmp/lower"/{dir,keep,etc,renamed-from}
echo a >"$tmp/lower/dir/a"
echo b >"$tmp/lower/dir/b"
echo gone >"$tmp/lower/gone"
echo k >"$tmp/lower/keep/k"
echo conf >"$tmp/lower/etc/conf"
echo r >"$tmp/lower/renamed-from/r"

# A live session's changes, made through the merged view.
mountov "$tmp/upper" "$tmp/work" "$tmp/m1"
(
  cd "$tmp/m1"
  rm -rf dir && mkdir dir && echo new >dir/new         # opaque directory
  rm gone                                              # whiteout
  mv renamed-from renamed-to                           # redirect
  echo changed >etc/conf && chmod 600 etc/conf && chown 1234:5678 etc/conf
  setfattr -n user.color -v blue keep/k                # copy-up with an xattr
  setfacl -m u:4321:rx keep                            # ACL
  echo linked >h1 && ln h1 h2 && chown 42:43 h1
  truncate -s 64M sparse && printf x | dd of=sparse bs=1 seek=$((32 << 20)) conv=notrunc status=none
  ln -s /etc/conf abs-link && ln -s ../keep/k etc/rel-link
  mkfifo fifo && chmod 640 fifo
  mkdir -p usr/local/bin && printf '#!/bin/sh\n' >usr/local/bin/tool && chmod 4755 usr/local/bin/tool
  head -c 100000 /dev/zero >image.squashfs
  touch -d '2001-02-03 04:05:06' etc/conf
)
getfattr --absolute-names -d -m trusted.overlay "$tmp/upper/dir" | grep -q 'opaque="y"' || fail "the kernel did not mark dir opaque"
getfattr --absolute-names -d -m trusted.overlay "$tmp/upper/renamed-to" | grep -q redirect || fail "no redirect xattr"
$listing "$tmp/m1" >"$tmp/original.txt"

# isoboot: backup -> fresh upper -> restore -> mount.
"$bin" overlay backup --upper "$tmp/upper" -o "$tmp/backup.tar.zst" --json >"$tmp/backup.json"
cat "$tmp/backup.json"
python3 - "$tmp/backup.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["whiteouts"] >= 1 and j["opaque_directories"] >= 1 and j["hardlinks"] == 1, j
assert j["sparse_files"] == 1 and j["archive_bytes"] < 1 << 20, j
PY
zstd -tq "$tmp/backup.tar.zst" || fail "zstd cannot read the archive"
bsdtar -tf "$tmp/backup.tar.zst" | grep -qx 'dir/new' || fail "bsdtar cannot list the archive"

mkdir "$tmp/upper2"
"$bin" overlay restore --upper "$tmp/upper2" "$tmp/backup.tar.zst" --dry-run >"$tmp/dry.txt"
grep -qx '+ dir/new' "$tmp/dry.txt" && grep -qx 'w gone' "$tmp/dry.txt" || { cat "$tmp/dry.txt"; fail "dry run"; }
[[ -z $(ls -A "$tmp/upper2") ]] || fail "--dry-run wrote something"
"$bin" overlay restore --upper "$tmp/upper2" "$tmp/backup.tar.zst"
mountov "$tmp/upper2" "$tmp/work2" "$tmp/m2"
$listing "$tmp/m2" >"$tmp/restored.txt"
if ! diff -u "$tmp/original.txt" "$tmp/restored.txt"; then fail "restored merged view differs"; fi
$listing "$tmp/upper" --no-trusted >"$tmp/u1.txt"
$listing "$tmp/upper2" --no-trusted >"$tmp/u2.txt"
diff -u "$tmp/u1.txt" "$tmp/u2.txt" || fail "restored upper differs"
for x in opaque redirect; do
  a=$(cd "$tmp/upper" && getfattr -R -h -d -m "trusted.overlay.$x" . 2>/dev/null)
  b=$(cd "$tmp/upper2" && getfattr -R -h -d -m "trusted.overlay.$x" . 2>/dev/null)
  [[ "$a" == "$b" && -n "$a" ]] || fail "trusted.overlay.$x not restored"
done
echo "isoboot round trip: merged views equal ($(wc -l <"$tmp/original.txt") entries)"
"$bin" overlay restore --upper "$tmp/upper2" "$tmp/backup.tar.zst" --dry-run | grep -q '^dry run: 0 of' ||
  fail "dry run after restore should find nothing to change"

# The documented procedure on the same upper.
tar czf "$tmp/doc.tar.gz" -C "$tmp/upper" .
mkdir "$tmp/upper3"
tar xf "$tmp/doc.tar.gz" -C "$tmp/upper3"
mountov "$tmp/upper3" "$tmp/work3" "$tmp/m3"
$listing "$tmp/m3" >"$tmp/tar.txt"
echo "--- documented tar czf / tar xf: merged view compared with the original (- original, + after tar)"
diff -u "$tmp/original.txt" "$tmp/tar.txt" | grep '^[-+][^-+]' || true
if [[ -e "$tmp/m3/dir/a" ]]; then
  echo "tar round trip: dir/a is back in the re-created directory (opaque xattr lost); isoboot keeps it out"
fi
[[ ! -e "$tmp/m2/dir/a" ]] || fail "isoboot brought dir/a back"

# gzip, stdout and stdin, --exclude-squashfs.
"$bin" overlay backup --upper "$tmp/upper" --gzip --exclude-squashfs -o - >"$tmp/backup.tar.gz" 2>"$tmp/gz.log"
gzip -t "$tmp/backup.tar.gz" || fail "gzip cannot read the archive"
tar tzf "$tmp/backup.tar.gz" >"$tmp/gz.list" 2>/dev/null || fail "GNU tar cannot read the gzip archive"
grep -q squashfs "$tmp/gz.list" && fail "--exclude-squashfs kept the squashfs file"
mkdir "$tmp/upper4"
"$bin" overlay restore --upper "$tmp/upper4" - <"$tmp/backup.tar.gz" >/dev/null
[[ -e "$tmp/upper4/dir/new" && ! -e "$tmp/upper4/image.squashfs" ]] || fail "gzip restore from stdin"
"$bin" overlay backup --upper "$tmp/upper" --exclude 'usr/*' --exclude '*.squashfs' -o - 2>/dev/null |
  bsdtar -tf - | grep -q '^usr/local' && fail "--exclude 'usr/*'"

# A KIWI-style live system: auto-detection, restore into the live upper, --remount.
mount -t tmpfs tmpfs /run
mkdir -p /run/overlayfs/rw /run/overlayfs/work "$tmp/m5"
mount -t overlay overlay -o "lowerdir=$tmp/lower,upperdir=/run/overlayfs/rw,workdir=/run/overlayfs/work" "$tmp/m5"
"$bin" overlay backup -o "$tmp/empty.tar.zst" | grep -q 'backed up /run/overlayfs/rw' || fail "auto-detection"
"$bin" overlay restore "$tmp/backup.tar.zst" --remount --json >"$tmp/live.json"
grep -q '"remounted":true' "$tmp/live.json" || fail "--remount"
[[ -e "$tmp/m5/dir/new" && ! -e "$tmp/m5/dir/a" && ! -e "$tmp/m5/gone" ]] || fail "live restore not visible"
umount "$tmp/m5"
if "$bin" overlay backup -o "$tmp/none.tar.zst" 2>"$tmp/none.log"; then fail "backup off a live overlay succeeded"; fi
grep -q 'not a live overlay system' "$tmp/none.log" || { cat "$tmp/none.log"; fail "message off a live overlay"; }
cat "$tmp/none.log"
echo PASS
