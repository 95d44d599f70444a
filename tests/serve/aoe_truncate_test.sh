#!/usr/bin/env bash
# `isoboot serve`'s AoE export reads its image through a mapping; the image
# truncated in place while served (a rebuild written over the old file) makes
# reads past the new end raise SIGBUS. Over a veth pair between two network
# namespaces this test creates: a client (aoe-load, an initiator written from
# the spec, or `isoboot aoe read`) reads the whole image, the image is cut to
# 1 MiB, then a whole read must fail with error answers, serve must still be
# running, and the first MiB must still read byte for byte.
#   AOE_LOAD_SRC  aoe-load.c to build the client from (default
#                 /work/shared/tools/aoe-load/aoe-load.c; without it the
#                 client is `isoboot aoe read`)
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
: "${ISOBOOT_BIN:?}"
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp aoe-truncate-serve
fail_logs=("$tmp/serve.log" "$tmp/client.out")
srv=isb-tsrv-$$
cli=isb-tcli-$$
pid=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
}

"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null
cp "$tmp/live.iso" "$tmp/orig.iso"
veth_pair "$srv" "$cli"
ip -n "$srv" addr add 10.79.0.1/24 dev veth-s

aoe_load_src=${AOE_LOAD_SRC:-/work/shared/tools/aoe-load/aoe-load.c}
use_aoe_load=0
if [[ -f $aoe_load_src ]] && cc -O2 -o "$tmp/aoe-load" "$aoe_load_src" 2>/dev/null; then
  use_aoe_load=1
fi
# read_image MIB: reads the first MIB MiB (0: all) and checks every byte
# against the original.
read_image() {
  if ((use_aoe_load)); then
    local m=()
    (($1)) && m=(-m "$1")
    ip netns exec "$cli" timeout 60 "$tmp/aoe-load" -i veth-c -d 0.1 -f "$tmp/orig.iso" -w 4 \
      -r 3 -o 100 -T 30 -q "${m[@]}" >"$tmp/client.out" 2>&1 || return 1
    grep -q "errors=0 .*verified=yes complete=yes" "$tmp/client.out"
  else
    ip netns exec "$cli" timeout 60 "$ISOBOOT_BIN" aoe read e0.1 -i veth-c -o "$tmp/read.img" \
      >"$tmp/client.out" 2>&1 || return 1
    if (($1)); then
      cmp -s -n $(($1 << 20)) "$tmp/read.img" "$tmp/orig.iso"
    else
      cmp -s "$tmp/read.img" "$tmp/orig.iso"
    fi
  fi
}

ip netns exec "$srv" "$ISOBOOT_BIN" serve "$tmp/live.iso" --interface veth-s --dhcp off \
  --announce 1 >"$tmp/serve.log" 2>&1 &
pid=$!
wait_ready "$tmp/serve.log"

read_image 0 || fail "the client could not read the whole image: $(cat "$tmp/client.out")"
echo "read the whole image"

truncate -s $((1 << 20)) "$tmp/live.iso"
if read_image 0; then
  fail "a whole read of the truncated image succeeded: $(cat "$tmp/client.out")"
fi
kill -0 "$pid" 2>/dev/null || fail "serve died reading past the new end: $(tail -5 "$tmp/serve.log")"
echo "reads past the new end failed; serve still running"
if ((use_aoe_load)); then
  read_image 1 || fail "the first MiB no longer reads: $(cat "$tmp/client.out")"
  echo "the first MiB still reads byte for byte"
fi
kill -0 "$pid" 2>/dev/null || fail "serve died: $(tail -5 "$tmp/serve.log")"
echo PASS
