#!/usr/bin/env bash
# The real KIWI test image (tests/image/build-kiwi-live.sh: Debian's
# kiwi-dracut-live 9.24, zstd-compressed dracut initrd with aoe.ko): `iso
# info` shows aoe and no http; `serve --root http` refuses at setup in one
# line, exit 1; `serve` without --root picks aoe and exports the image; a
# SIGHUP to an image whose initrd cannot do AoE is refused and serving goes
# on. Slow only because building the image the first time takes minutes
# (cached afterwards).
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp initrd-root
fail_logs=("$tmp/serve.log")
srv=isb-irs-$$
cli=isb-irc-$$
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
}
iso=$("$src/tests/image/build-kiwi-live.sh" "${KIWI_CACHE:-/var/cache/isoboot/kiwi}")

"$bin" iso info "$iso" >"$tmp/info"
grep -q '^initrd is  kiwi-live, dracut ' "$tmp/info" || fail "info: $(cat "$tmp/info")"
grep -qx 'transports aoe (kiwi-live + aoe.ko)' "$tmp/info" || fail "info: $(cat "$tmp/info")"
grep -q "^no http    kiwi-live's parser has no http root" "$tmp/info" || fail "info: $(cat "$tmp/info")"
"$bin" iso info --json "$iso" | python3 -c '
import json, sys
j = json.load(sys.stdin)["initrd_contents"]
assert j["root_transports"] == ["aoe"], j
assert not any(w["ok"] for w in j["ways"] if w["transport"] == "http"), j'

veth_pair "$srv" "$cli"
ip -n "$srv" addr add 10.78.0.1/24 dev veth-s
ip -n "$cli" addr add 10.78.0.2/24 dev veth-c

set +e
ip netns exec "$srv" "$bin" serve "$iso" --interface veth-s --root http >"$tmp/refused.log" 2>&1
rc=$?
set -e
[[ $rc == 1 ]] || fail "serve --root http: exit $rc: $(cat "$tmp/refused.log")"
last=$(tail -1 "$tmp/refused.log")
[[ $last == "isoboot: error: $iso: --root http: this image's initrd (kiwi-live, dracut "*") cannot mount its root over http (kiwi-live's parser has no http root, no curl); it can do: aoe" ]] ||
  fail "refusal line: $last"
[[ $(grep -c 'error' "$tmp/refused.log") == 1 ]] || fail "more than one error: $(cat "$tmp/refused.log")"

# An image whose initrd has kiwi-live but no aoe.ko, for the reload below.
mkdir -p "$tmp/noaoe/main/usr/lib" "$tmp/noaoe/iso/boot/x86_64/loader" "$tmp/noaoe/iso/LiveOS"
echo AOEINTERFACE >"$tmp/noaoe/main/usr/lib/kiwi-live-lib.sh"
(cd "$tmp/noaoe/main" && find . | cpio -o -H newc --quiet | zstd -q) \
  >"$tmp/noaoe/iso/boot/x86_64/loader/initrd"
head -c 100000 /dev/urandom >"$tmp/noaoe/iso/boot/x86_64/loader/linux"
head -c 100000 /dev/urandom >"$tmp/noaoe/iso/LiveOS/squashfs.img"
xorriso -as mkisofs -quiet -R -o "$tmp/noaoe.iso" "$tmp/noaoe/iso" 2>/dev/null

echo "image = \"$iso\"" >"$tmp/serve.toml"
ip netns exec "$srv" "$bin" serve --config "$tmp/serve.toml" --interface veth-s --dhcp off \
  >"$tmp/serve.log" 2>&1 &
pid=$!
wait_ready "$tmp/serve.log"
grep -q "root transports: aoe (kiwi-live + aoe.ko); booting with root aoe (the default for this initrd)" \
  "$tmp/serve.log" || fail "no default root aoe"
grep -q 'ready: HTTP, AoE e0.1, TFTP' "$tmp/serve.log" || fail "AoE not exported"
ip netns exec "$cli" curl -sf http://10.78.0.1:8080/boot.ipxe | grep -q 'root=live:AOEINTERFACE=e0.1' ||
  fail "boot.ipxe is not the AoE entry"

echo "image = \"$tmp/noaoe.iso\"" >"$tmp/serve.toml"
kill -HUP "$pid"
for _ in $(seq 50); do grep -q 'reload failed' "$tmp/serve.log" && break; sleep 0.2; done
grep -q "reload failed, still serving as before: .*cannot mount its root over aoe (no aoe kernel module)" \
  "$tmp/serve.log" || fail "reload to an initrd without aoe.ko was not refused"
ip netns exec "$cli" curl -sf http://10.78.0.1:8080/boot.ipxe | grep -q 'root=live:AOEINTERFACE=e0.1' ||
  fail "after the refused reload, boot.ipxe changed"
kill "$pid"
wait "$pid" || fail "serve exit $?"
pid=
echo "initrd_root_slow_test: ok"
