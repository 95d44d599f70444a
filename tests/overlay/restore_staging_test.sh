#!/usr/bin/env bash
# A restore either replaces the upper dir's entries with the archive's or
# leaves the upper dir exactly as it was, never a mix. The archive is
# unpacked into a staging dir on the upper dir's filesystem and moved in only
# when all of it is written and checked (src/overlay/staging.h).
#  1. Full disk: a backup with a 3 MB random file, small files, a whiteout, an
#     opaque directory and a hard link, restored into a non-empty upper dir on
#     a 1 MiB tmpfs (as a subdirectory, staging beside it; and as the tmpfs
#     root, staging inside it): non-zero exit, one line saying no space is
#     left, the upper dir unchanged (listing with modes, owners, sizes,
#     sha256s, xattrs and directory mtimes), no staging dir left.
#  2. A failure while moving in (an entry is a mount point: EBUSY): every
#     entry already moved is put back, the upper dir unchanged.
#  3. Success into a non-empty upper dir: archived entries replace what was
#     there (file over file, file over directory, directory over file,
#     whiteout over file), other entries stay, directories get the archive's
#     mtimes after their contents moved in, hard links stay linked.
# Runs in a private mount namespace. Root.
set -euo pipefail
if [[ -z ${OVERLAY_TEST_NS:-} ]]; then
  exec unshare --mount --propagation private env OVERLAY_TEST_NS=1 bash "$0" "$@"
fi
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
listing="python3 $src/tests/overlay/listing.py"
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp overlay-staging
cleanup() { umount -l "$tmp/big/upper/zz-late" 2>/dev/null || true; umount -R -l "$tmp"/small* 2>/dev/null || true; }
fail_logs=("$tmp/restore.log")

# The backup.
mkdir -p "$tmp/saved"/{etc,opaque,d}
head -c 3000000 /dev/urandom >"$tmp/saved/big"
echo new-a >"$tmp/saved/etc/a"
echo late >"$tmp/saved/zz-late"
echo linked >"$tmp/saved/h1" && ln "$tmp/saved/h1" "$tmp/saved/h2"
echo in-d >"$tmp/saved/d/file"
echo plain >"$tmp/saved/was-dir"
mknod "$tmp/saved/gone" c 0 0
setfattr -n trusted.overlay.opaque -v y "$tmp/saved/opaque"
echo o >"$tmp/saved/opaque/o"
chmod 750 "$tmp/saved/etc" && touch -d '2001-02-03 04:05:06' "$tmp/saved/etc" "$tmp/saved/d"
"$bin" overlay backup --upper "$tmp/saved" -o "$tmp/backup.tzst" >/dev/null

fill() {  # DIR: what the node's upper dir held before the restore
  mkdir -p "$1"/etc "$1"/keep "$1"/was-dir/inner
  echo old-a >"$1/etc/a"
  echo kept >"$1/keep/k" && chmod 600 "$1/keep/k"
  echo d-was-a-file >"$1/d"
  echo inner >"$1/was-dir/inner/x"
  echo there >"$1/gone"
  touch -d '1999-01-01 00:00:00' "$1/etc" "$1/keep" "$1"
}
snapshot() { $listing "$1" --dir-mtimes; }

# 1a. Full disk, the upper dir a subdirectory of the tmpfs.
mkdir "$tmp/small" && mount -t tmpfs -o size=1m tmpfs "$tmp/small"
fill "$tmp/small/upper"
snapshot "$tmp/small/upper" >"$tmp/before.txt"
if "$bin" overlay restore --upper "$tmp/small/upper" "$tmp/backup.tzst" >"$tmp/restore.out" 2>"$tmp/restore.log"; then
  fail "restore onto a full filesystem succeeded: $(cat "$tmp/restore.out")"
fi
[[ $(wc -l <"$tmp/restore.log") == 1 ]] || fail "expected a one-line reason"
grep -qi 'no space left on' "$tmp/restore.log" || fail "the reason does not say no space is left"
snapshot "$tmp/small/upper" >"$tmp/after.txt"
diff -u "$tmp/before.txt" "$tmp/after.txt" || fail "the failed restore changed the upper dir"
[[ $(ls -A "$tmp/small") == upper ]] || fail "left behind: $(ls -A "$tmp/small")"
echo "full disk (upper in the tmpfs): $(cat "$tmp/restore.log")"

# 1b. Full disk, the upper dir the root of the tmpfs (staging inside it).
mkdir "$tmp/small2" && mount -t tmpfs -o size=1m tmpfs "$tmp/small2"
fill "$tmp/small2"
snapshot "$tmp/small2" >"$tmp/before.txt"
if "$bin" overlay restore --upper "$tmp/small2" "$tmp/backup.tzst" >/dev/null 2>"$tmp/restore.log"; then
  fail "restore onto a full tmpfs root succeeded"
fi
[[ $(wc -l <"$tmp/restore.log") == 1 ]] && grep -qi 'no space left on' "$tmp/restore.log" || fail "reason (tmpfs root)"
snapshot "$tmp/small2" >"$tmp/after.txt"
diff -u "$tmp/before.txt" "$tmp/after.txt" || fail "the failed restore changed the upper dir (tmpfs root)"
echo "full disk (upper is the tmpfs root): $(cat "$tmp/restore.log")"

# 2. A failure while moving in: zz-late, a file in the archive, is a mount point here.
mkdir -p "$tmp/big/upper"
fill "$tmp/big/upper"
mkdir "$tmp/big/upper/zz-late" && mount -t tmpfs tmpfs "$tmp/big/upper/zz-late"
snapshot "$tmp/big/upper" >"$tmp/before.txt"
if "$bin" overlay restore --upper "$tmp/big/upper" "$tmp/backup.tzst" >/dev/null 2>"$tmp/restore.log"; then
  fail "restore over a mount point succeeded"
fi
grep -q 'put back' "$tmp/restore.log" || fail "the reason does not say the moves were undone"
snapshot "$tmp/big/upper" >"$tmp/after.txt"
diff -u "$tmp/before.txt" "$tmp/after.txt" || fail "the undone restore changed the upper dir"
[[ $(ls -A "$tmp/big") == upper ]] || fail "left behind: $(ls -A "$tmp/big")"
umount "$tmp/big/upper/zz-late"
echo "failure while moving in: $(cat "$tmp/restore.log")"

# 3. Success into a non-empty upper dir.
rm -rf "$tmp/big/upper/zz-late"
"$bin" overlay restore --upper "$tmp/big/upper" "$tmp/backup.tzst" >"$tmp/restore.out" 2>"$tmp/restore.log"
[[ $(ls -A "$tmp/big") == upper ]] || fail "left behind after success: $(ls -A "$tmp/big")"
snapshot "$tmp/saved" >"$tmp/want.txt"
snapshot "$tmp/big/upper" | grep -v '^keep' >"$tmp/got.txt"
diff -u "$tmp/want.txt" "$tmp/got.txt" || fail "restored entries differ from the backup"
[[ $(cat "$tmp/big/upper/keep/k") == kept ]] || fail "an entry the archive does not have was lost"
[[ $(stat -c %i "$tmp/big/upper/h1") == $(stat -c %i "$tmp/big/upper/h2") ]] || fail "hard link broken"
[[ $(stat -c %F "$tmp/big/upper/gone") == "character special file" ]] || fail "whiteout not restored"
getfattr --absolute-names -n trusted.overlay.opaque "$tmp/big/upper/opaque" 2>/dev/null | grep -q '"y"' ||
  fail "opaque xattr not restored"
echo "restore into a non-empty upper dir: $(cat "$tmp/restore.out")"
echo PASS
