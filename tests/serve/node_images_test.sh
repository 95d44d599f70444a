#!/usr/bin/env bash
# Node images (/nodes/<mac>.iso) of `isoboot serve --http-only`, on loopback,
# read back by tools that share no code with isoboot: xorriso -find lists
# the added and changed files, isoinfo and bsdtar read them, and every file
# the node did not change reads byte for byte as in the base image. HEAD,
# ranges across the new descriptors, the base and the new session, and
# If-Range work as on /live.iso; serve's image holds what `isoboot iso grow`'s
# does (byte for byte before the new session; in it, Rock Ridge inode
# numbers and continuation areas may be numbered and placed in another order,
# libisofs counting from a per-process counter). A node with an overlay backup gets its image only with its
# read key. Bad input: a menu that is not text is left as it is (and said
# so); an image without any boot menu gets no node image for kernel
# arguments, but one for files only; a --node-files tree with a symlink out
# of it is refused at start; an image asked for while its base is rebuilt
# is the old one whole, or the new one whole. (That the kernel mounts a node
# image and boots it with the node's arguments: tests/bmc/node_image_slow_test.sh.)
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp nodeimg
for tool in xorriso isoinfo bsdtar curl cpio; do
  command -v "$tool" >/dev/null || fail "$tool missing: scripts/deps.sh test"
done
fail_logs=("$tmp/serve.log")
pid=
slow_pid=
cleanup() {
  [[ -n $slow_pid ]] && kill "$slow_pid" 2>/dev/null
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
}

# The base: a kiwi-like tree with both menus, a GRUB config that is not
# text, an El Torito BIOS entry with a boot info table, and enough bytes
# that a download can be slowed down to last seconds.
make_base() {  # OUT TAG [nomenus]
  local t=$tmp/tree-$2
  rm -rf "$t"
  mkdir -p "$t/isolinux" "$t/boot/grub2" "$t/boot/x86_64/loader" "$t/EFI/BOOT" "$t/LiveOS"
  head -c 4096 /dev/urandom >"$t/isolinux/isolinux.bin"
  head -c 3000000 /dev/urandom >"$t/boot/x86_64/loader/linux"
  head -c 5000000 /dev/urandom >"$t/boot/x86_64/loader/initrd"
  head -c 4000000 /dev/urandom >"$t/LiveOS/squashfs.img"
  echo "$2" >"$t/version"
  ln -s ../version "$t/LiveOS/version-link"
  if [[ ${3:-} != nomenus ]]; then
    printf 'serial 0 115200\ndefault live\nlabel live\n  kernel /boot/x86_64/loader/linux\n  append initrd=/boot/x86_64/loader/initrd root=live:CDLABEL=NODEIMG console=ttyS0\n' \
      >"$t/isolinux/isolinux.cfg"
    printf 'set timeout=1\nmenuentry "live" {\n  linux /boot/x86_64/loader/linux root=live:CDLABEL=NODEIMG\n  initrd /boot/x86_64/loader/initrd\n}\n' \
      >"$t/boot/grub2/grub.cfg"
    printf 'linux /k\0\001\002binary' >"$t/EFI/BOOT/grub.cfg"
  fi
  xorriso -as mkisofs -quiet -R -J -V NODEIMG -b isolinux/isolinux.bin -no-emul-boot \
    -boot-load-size 4 -boot-info-table -c isolinux/boot.cat -o "$1.tmp" "$t" 2>"$tmp/xorriso.log" ||
    fail "xorriso: $(cat "$tmp/xorriso.log")"
  mv "$1.tmp" "$1"
}
make_base "$tmp/live.iso" one
make_base "$tmp/plain.iso" plain nomenus

# A second initramfs, the node's files (a symlink inside the tree).
mkdir -p "$tmp/add/etc" "$tmp/files/sub"
echo node-a >"$tmp/add/etc/node-marker"
(cd "$tmp/add" && echo etc/node-marker | cpio --quiet -o -H newc) | gzip >"$tmp/add.img"
echo "ip=10.0.0.7" >"$tmp/files/net.conf"
head -c 70000 /dev/urandom >"$tmp/files/sub/blob"
ln -s ../net.conf "$tmp/files/sub/net-link"

a=52:54:00:00:00:0a a_name=52-54-00-00-00-0a
b=52:54:00:00:00:0b b_name=52-54-00-00-00-0b
c=52:54:00:00:00:0c c_name=52-54-00-00-00-0c
store=$tmp/store
start_server() {  # IMAGE ARGS...
  rm -f "$tmp/serve.log"
  local image=$1
  shift
  "$bin" serve --http-only "$image" --http-address 127.0.0.1 --http-port 0 --server-ip 127.0.0.1 \
    "$@" >"$tmp/serve.log" 2>&1 &
  pid=$!
  wait_ready "$tmp/serve.log"
  port=$(sed -n 's/.*HTTP on \([0-9]*\);.*/\1/p' "$tmp/serve.log")
  base=http://127.0.0.1:$port
}
stop_server() {
  kill "$pid"
  wait "$pid" || fail "server exit status $?"
  pid=
}
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

args="hostname=node-a rd.test=1"
start_server "$tmp/live.iso" --backup-dir "$store" --initrd-add "$tmp/add.img" \
  --node "$a=$args" --node-files "$a=$tmp/files" --node-files "$b=$tmp/files" --node "$c=hostname=node-c"
grep -q "node images at $base/nodes/<mac>.iso for 3 node(s)" "$tmp/serve.log" ||
  fail "serve does not say where the node images are"

echo "--- node A's image, read by xorriso, isoinfo, bsdtar"
curl -sSf -o "$tmp/a.iso" "$base/nodes/$a_name.iso" || fail "GET node image"
[[ $(status "$base/nodes/52:54:00:00:00:0a.iso") == 404 ]] || fail "a MAC spelt with colons is not the image's name"
[[ $(status "$base/nodes/52-54-00-00-00-99.iso") == 404 ]] || fail "a node without settings has an image"
grep -q "node $a_name: image made in" "$tmp/serve.log" || fail "no log line for the image made"
metrics=$(curl -sSf "$base/metrics")
grep -qx "isoboot_node_images 1" <<<"$metrics" || fail "metrics: $(grep node_image <<<"$metrics")"
own=$(sed -n 's/^isoboot_node_image_bytes //p' <<<"$metrics")
((own > 0 && own < 1048576)) || fail "node image bytes in memory: '$own'"
grep -q "node $a_name: /EFI/BOOT/grub.cfg: left as it is: not a text file" "$tmp/serve.log" ||
  fail "the menu that is not text is not named"
found=$(xorriso -indev "$tmp/a.iso" -find / -type f 2>/dev/null | tr -d "'" | sort)
for f in /pitdata/net.conf /pitdata/sub/blob /isoboot/node.img /isolinux/isolinux.cfg \
  /boot/grub2/grub.cfg /LiveOS/squashfs.img /version; do
  grep -qx "$f" <<<"$found" || fail "xorriso -find does not list $f: $found"
done
xorriso -indev "$tmp/a.iso" -find /pitdata/sub/net-link -exec lsdl -- 2>/dev/null | grep -q "net-link' -> '../net.conf'" ||
  fail "the symlink inside the node's files is not in the image"
isoinfo -R -i "$tmp/a.iso" -x /isolinux/isolinux.cfg >"$tmp/isolinux.cfg"
grep -q "append initrd=/boot/x86_64/loader/initrd,/isoboot/node.img root=live:CDLABEL=NODEIMG console=ttyS0 $args$" "$tmp/isolinux.cfg" ||
  fail "isolinux.cfg does not carry the node's arguments and initrd: $(cat "$tmp/isolinux.cfg")"
isoinfo -R -i "$tmp/a.iso" -x /pitdata/net.conf | cmp -s - "$tmp/files/net.conf" || fail "isoinfo reads /pitdata/net.conf wrong"
isoinfo -d -i "$tmp/a.iso" | grep -q "Volume id: NODEIMG" || fail "isoinfo: volume id"
mkdir "$tmp/x-base" "$tmp/x-a"
bsdtar -xf "$tmp/live.iso" -C "$tmp/x-base"
bsdtar -xf "$tmp/a.iso" -C "$tmp/x-a"
grep -q "  initrd /boot/x86_64/loader/initrd /isoboot/node.img$" "$tmp/x-a/boot/grub2/grub.cfg" ||
  fail "grub.cfg's initrd line: $(cat "$tmp/x-a/boot/grub2/grub.cfg")"
grep -q "root=live:CDLABEL=NODEIMG $args$" "$tmp/x-a/boot/grub2/grub.cfg" || fail "grub.cfg's linux line"
cmp -s "$tmp/x-a/isoboot/node.img" "$tmp/add.img" || fail "the second initrd is not --initrd-add's archive"
diff -r "$tmp/x-a/pitdata" "$tmp/files" >/dev/null || fail "bsdtar: /pitdata differs from --node-files"
# Every other file is the base's, byte for byte (the menu that is not text too).
diff -r --exclude=pitdata --exclude=isoboot --exclude=isolinux.cfg --exclude=grub2 \
  "$tmp/x-base" "$tmp/x-a" >"$tmp/diff.txt" || fail "unchanged files differ: $(head "$tmp/diff.txt")"
[[ $(readlink "$tmp/x-a/LiveOS/version-link") == ../version ]] || fail "the base's symlink"
xorriso -indev "$tmp/a.iso" -report_el_torito plain 2>/dev/null | grep -q "/isolinux/isolinux.bin" ||
  fail "the El Torito entry is gone"
# The boot image stays where it was, its boot info table still true: the
# primary volume descriptor at block 16 and the file's own block.
lba_base=$(xorriso -indev "$tmp/live.iso" -find /isolinux/isolinux.bin -exec report_lba -- 2>/dev/null | awk -F, '/isolinux.bin/{print $2+0}')
lba_a=$(xorriso -indev "$tmp/a.iso" -find /isolinux/isolinux.bin -exec report_lba -- 2>/dev/null | awk -F, '/isolinux.bin/{print $2+0}')
[[ -n $lba_base && $lba_base == "$lba_a" ]] || fail "isolinux.bin moved: $lba_base -> $lba_a"
table=$(dd if="$tmp/a.iso" bs=2048 skip="$lba_a" count=1 2>/dev/null | od -An -tu4 -j8 -N8 | xargs)
[[ $table == "16 $lba_a" ]] || fail "boot info table says '$table', want '16 $lba_a'"

echo "--- the same as isoboot iso grow's, and HEAD, ranges, If-Range"
"$bin" iso grow "$tmp/live.iso" -o "$tmp/grown.iso" --append "$args" --initrd-add "$tmp/add.img" \
  --files "$tmp/files" 2>"$tmp/grow.log" || fail "iso grow: $(cat "$tmp/grow.log")"
same_files() {  # A B: the same size and the same files
  [[ $(stat -c %s "$1") == $(stat -c %s "$2") ]] || return 1
  rm -rf "$tmp/cmp-1" "$tmp/cmp-2"
  mkdir "$tmp/cmp-1" "$tmp/cmp-2"
  bsdtar -xf "$1" -C "$tmp/cmp-1" && bsdtar -xf "$2" -C "$tmp/cmp-2" && diff -r "$tmp/cmp-1" "$tmp/cmp-2" >/dev/null
}
same_files "$tmp/a.iso" "$tmp/grown.iso" || fail "serve's node image differs from isoboot iso grow's"
[[ $(cmp -l "$tmp/a.iso" "$tmp/grown.iso" | awk -v s="$(stat -c %s "$tmp/live.iso")" '$1 <= s' | wc -l) == 0 ]] ||
  fail "serve's and iso grow's images differ before the new session"
size=$(stat -c %s "$tmp/a.iso")
base_size=$(stat -c %s "$tmp/live.iso")
curl -sSI "$base/nodes/$a_name.iso" | tr -d '\r' >"$tmp/head.txt"
grep -qx "Content-Length: $size" "$tmp/head.txt" || fail "HEAD: $(cat "$tmp/head.txt")"
grep -q "^Last-Modified: " "$tmp/head.txt" || fail "HEAD: no Last-Modified"
etag=$(sed -n 's/^ETag: //p' "$tmp/head.txt")
[[ -n $etag ]] || fail "HEAD: no ETag"
# Ranges across the rewritten descriptors, the base and the new session.
for r in 32000-36000 36000-37000 "$((base_size - 3000))-$((base_size + 5000))" "$((size - 100))-"; do
  curl -sSf -r "$r" -o "$tmp/range" "$base/nodes/$a_name.iso" || fail "range $r"
  from=${r%-*} to=${r#*-}
  [[ -n $to ]] || to=$((size - 1))
  dd if="$tmp/a.iso" bs=1 skip="$from" count=$((to - from + 1)) status=none | cmp -s - "$tmp/range" ||
    fail "range $r is not those bytes of the image"
done
[[ $(status -r 0-9 -H "If-Range: $etag" "$base/nodes/$a_name.iso") == 206 ]] || fail "If-Range with its ETag"
[[ $(status -r 0-9 -H 'If-Range: "other"' "$base/nodes/$a_name.iso") == 200 ]] || fail "If-Range with another ETag"

echo "--- node B (files only) and node C (a backup: its image only with its key)"
curl -sSf -o "$tmp/b.iso" "$base/nodes/$b_name.iso" || fail "GET node B"
# No arguments of its own: its menus only load --initrd-add's archive too,
# as every node's boot entries do.
isoinfo -R -i "$tmp/b.iso" -x /isolinux/isolinux.cfg |
  grep -q "append initrd=/boot/x86_64/loader/initrd,/isoboot/node.img root=live:CDLABEL=NODEIMG console=ttyS0$" ||
  fail "node B's menu: $(isoinfo -R -i "$tmp/b.iso" -x /isolinux/isolinux.cfg)"
isoinfo -R -i "$tmp/b.iso" -x /pitdata/net.conf | cmp -s - "$tmp/files/net.conf" || fail "node B's files"
mkdir -p "$tmp/up/etc"
echo kept >"$tmp/up/etc/motd"
"$bin" overlay backup --upper "$tmp/up" --token-file "$store/.token" -o "$base/overlay/$c" >/dev/null ||
  fail "overlay backup for node C"
[[ $(status "$base/nodes/$c_name.iso") == 403 ]] || fail "node C's image (it carries its key) without the key"
curl -s "$base/nodes/$c_name.iso" | grep -q "carries node $c_name's overlay key: ask for it with ?key=" ||
  fail "the refusal does not say why"
key=$("$bin" overlay key "$c" --read --backup-dir "$store")
[[ $(status "$base/nodes/$c_name.iso?key=wrong") == 403 ]] || fail "node C's image with a wrong key"
# Other spellings of the same name the tree would find are refused too.
for spelling in "//nodes/$c_name.iso" "/nodes//$c_name.iso" "/nodes%5c$c_name.iso" "/./nodes/$c_name.iso"; do
  got=$(status --path-as-is "$base$spelling")
  [[ $got == 403 || $got == 404 ]] || fail "node C's image as $spelling without the key: $got"
done
curl -sSf -o "$tmp/c.iso" "$base/nodes/$c_name.iso?key=$key" || fail "node C's image with its key"
isoinfo -R -i "$tmp/c.iso" -x /isolinux/isolinux.cfg >"$tmp/c.cfg"
grep -q "hostname=node-c isoboot.overlay=http://127.0.0.1:$port/overlay/$c_name?key=$key rd.neednet=1 ip=dhcp$" "$tmp/c.cfg" ||
  fail "node C's menu: $(cat "$tmp/c.cfg")"

echo "--- a base rebuilt while a node image is read: the old one whole, then the new one"
curl -sSf --limit-rate 2M -o "$tmp/slow.iso" "$base/nodes/$a_name.iso" &
slow_pid=$!
sleep 0.5
make_base "$tmp/live2.iso" two
mv "$tmp/live2.iso" "$tmp/live.iso"
for _ in $(seq 100); do
  grep -q "new boots get it" "$tmp/serve.log" && break
  sleep 0.1
done
wait "$slow_pid" || fail "the slow download failed"
slow_pid=
cmp -s "$tmp/slow.iso" "$tmp/a.iso" || fail "the download in flight mixed in the new base"
for _ in $(seq 50); do
  curl -sSf -o "$tmp/a2.iso" "$base/nodes/$a_name.iso" || fail "GET after the rebuild"
  cmp -s "$tmp/a2.iso" "$tmp/a.iso" || break
  sleep 0.2
done
isoinfo -R -i "$tmp/a2.iso" -x /version | grep -qx two || fail "the node image was not made again from the new base"
"$bin" iso grow "$tmp/live.iso" -o "$tmp/grown2.iso" --append "$args" --initrd-add "$tmp/add.img" \
  --files "$tmp/files" 2>/dev/null
same_files "$tmp/a2.iso" "$tmp/grown2.iso" || fail "the new node image is not the new base's"
stop_server

echo "--- an image without boot menus"
start_server "$tmp/plain.iso" --node "$a=hostname=x" --node-files "$b=$tmp/files"
[[ $(status "$base/nodes/$a_name.iso") == 404 ]] || fail "node image with arguments but no menu to put them in"
grep -q "node $a_name: no node image: .*no boot menu with a Linux entry" "$tmp/serve.log" ||
  fail "the missing menu is not said"
curl -sSf -o "$tmp/pb.iso" "$base/nodes/$b_name.iso" || fail "a files-only node image of a menu-less base"
isoinfo -R -i "$tmp/pb.iso" -x /pitdata/net.conf | cmp -s - "$tmp/files/net.conf" || fail "files-only image"
stop_server

echo "--- --node-files with a symlink out of the tree"
mkdir -p "$tmp/bad"
ln -s /etc/passwd "$tmp/bad/passwd"
if "$bin" serve --http-only "$tmp/plain.iso" --http-address 127.0.0.1 --http-port 0 \
  --node-files "$a=$tmp/bad" >"$tmp/bad.log" 2>&1; then
  fail "serve started with a symlink out of --node-files"
fi
grep -q "passwd: a symlink to /etc/passwd points out of" "$tmp/bad.log" || fail "refusal: $(cat "$tmp/bad.log")"
[[ $(grep -c . "$tmp/bad.log") -le 2 ]] || fail "more than a short error: $(cat "$tmp/bad.log")"
rm "$tmp/bad/passwd"
ln -s ../../x "$tmp/bad/up"
"$bin" iso grow "$tmp/plain.iso" -o "$tmp/bad.iso" --files "$tmp/bad" 2>"$tmp/bad.log" &&
  fail "iso grow took a symlink out of --files"
grep -q "points out of" "$tmp/bad.log" || fail "iso grow refusal: $(cat "$tmp/bad.log")"
[[ ! -e $tmp/bad.iso && ! -e $tmp/bad.iso.partial ]] || fail "a refused grow left a file"
echo "node images: ok"
