#!/usr/bin/env bash
# AoE interop against peers nobody here wrote, on a veth pair in a private
# network namespace: aoetools' aoeping (Query Config, IDENTIFY) and aoecfg
# (config strings) against `isoboot aoe export`; isoboot's discover/read
# against Debian's vblade and against itself (same bytes, by sha256).
set -euo pipefail
: "${ISOBOOT_BIN:?}" "${ISOBOOT_TEST_TMP:=/tmp}"
ns="isoboot-aoe-$$"
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp aoe-interop
dir=$tmp
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
}
# Background servers run as `ip netns exec` (which execs), so $! is their PID.
in_ns() { ip netns exec "$ns" "$@"; }

ip netns add "$ns"
ip -n "$ns" link add name aoet type veth peer name aoei
ip -n "$ns" link set aoet up
ip -n "$ns" link set aoei up

# 3 MiB + 3 sectors of random bytes: not a multiple of the frame payload.
head -c $((3 * 1024 * 1024 + 1536)) /dev/urandom >"$dir/image"
want=$(sha256sum <"$dir/image" | cut -d' ' -f1)

# wait_for CMD...: retry a command up to 50 times, 0.1 s apart.
wait_for() {
  for _ in $(seq 50); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# Without CAP_NET_RAW the target says exactly what is missing.
if msg=$(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
  "$ISOBOOT_BIN" aoe export 0 1 lo "$dir/image" 2>&1); then
  fail "export ran without CAP_NET_RAW"
fi
grep -q "needs CAP_NET_RAW (run as root or setcap cap_net_raw+ep " <<<"$msg" ||
  fail "capability message: $msg"

# --- isoboot as the target, aoetools as the initiator --------------------
ip netns exec "$ns" "$ISOBOOT_BIN" aoe export 0 1 aoet "$dir/image" --config-string "isoboot test" \
  2>"$dir/export.log" &
pids+=($!)
wait_for in_ns aoeping -s 1 0 1 aoei || { cat "$dir/export.log"; fail "aoeping got no answer"; }

out=$(in_ns aoeping -v -s 3 0 1 aoei) || fail "aoeping -v failed"
grep -q "found e0.1" <<<"$out" || fail "aoeping did not find e0.1: $out"
ident=$(in_ns aoeping -I -s 3 0 1 aoei) || fail "aoeping -I failed"
grep -q "model: isoboot AoE target" <<<"$ident" || fail "IDENTIFY model: $ident"
grep -q "firmware_rev: isoboot1" <<<"$ident" || fail "IDENTIFY firmware: $ident"

[[ $(in_ns aoecfg -t 2 0 1 aoei) == "isoboot test" ]] || fail "aoecfg read"
in_ns aoecfg -c set -s other -t 2 0 1 aoei | grep -q '\*badcfg\*' ||
  fail "aoecfg set over a present string must be refused"
[[ $(in_ns aoecfg -c fset -s changed -t 2 0 1 aoei) == "changed" ]] || fail "aoecfg fset"
[[ $(in_ns aoecfg -c test -s changed -t 2 0 1 aoei) == "changed" ]] || fail "aoecfg test"
[[ -z $(in_ns aoecfg -c test -s nope -t 1 0 1 aoei) ]] || fail "aoecfg test must stay silent"
[[ $(in_ns aoecfg -c prefix -s chan -t 2 0 1 aoei) == "changed" ]] || fail "aoecfg prefix"

disc=$(in_ns "$ISOBOOT_BIN" aoe discover -i aoei --wait 500)
grep -q "^e0.1 $((3 * 1024 * 1024 + 1536)) bytes" <<<"$disc" || fail "isoboot discover: $disc"
in_ns "$ISOBOOT_BIN" aoe read e0.1 -i aoei -o "$dir/from-isoboot" 2>/dev/null
[[ $(sha256sum <"$dir/from-isoboot" | cut -d' ' -f1) == "$want" ]] || fail "isoboot read isoboot"

kill "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
pids=()
grep -q "shutting down" "$dir/export.log" || fail "no clean shutdown: $(cat "$dir/export.log")"

# --- vblade as the target, isoboot as the initiator ----------------------
# (aoeping cannot check vblade on veth: vblade sends unpadded frames shorter
# than 60 bytes, which aoeping ignores.)
ip netns exec "$ns" vblade -r 3 7 aoet "$dir/image" 2>"$dir/vblade.log" &
pids+=($!)
disc=
for _ in $(seq 20); do
  disc=$(in_ns "$ISOBOOT_BIN" aoe discover -i aoei --wait 300 || true)
  grep -q "^e3.7" <<<"$disc" && break
done
grep -q "^e3.7 $((3 * 1024 * 1024 + 1536)) bytes" <<<"$disc" || fail "discover vblade: $disc"
in_ns "$ISOBOOT_BIN" aoe read e3.7 -i aoei -o "$dir/from-vblade" 2>/dev/null
[[ $(sha256sum <"$dir/from-vblade" | cut -d' ' -f1) == "$want" ]] || fail "isoboot read vblade"
kill "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
pids=()

# --- jumbo frames: 17 sectors per frame at MTU 9000, two exports ------------
ip -n "$ns" link set aoet mtu 9000
ip -n "$ns" link set aoei mtu 9000
cp "$dir/image" "$dir/image2"
ip netns exec "$ns" "$ISOBOOT_BIN" aoe export --interface aoet --export 5.1="$dir/image" \
  --export 5.2="$dir/image2" 2>"$dir/export2.log" &
pids+=($!)
wait_for in_ns aoeping -s 1 5 2 aoei || fail "jumbo export did not come up"
disc=$(in_ns "$ISOBOOT_BIN" aoe discover -i aoei --wait 500)
grep -q "^e5.1 .*sectors/frame=17" <<<"$disc" || fail "jumbo discover: $disc"
grep -q "^e5.2 " <<<"$disc" || fail "second export missing: $disc"
in_ns "$ISOBOOT_BIN" aoe read e5.2 -i aoei -o "$dir/jumbo" 2>/dev/null
[[ $(sha256sum <"$dir/jumbo" | cut -d' ' -f1) == "$want" ]] || fail "jumbo read"
in_ns aoeping -I -s 3 5 1 aoei | grep -q "model: isoboot AoE target" || fail "aoeping at MTU 9000"
echo "PASS"
