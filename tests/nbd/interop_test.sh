#!/usr/bin/env bash
# NBD interop against peers nobody here wrote, inside a private network
# namespace (loopback only): libnbd's nbdinfo (handshake, --list, size,
# block sizes, flags) and nbdcopy (1, 4 and 8 concurrent copies), QEMU's
# qemu-img (info, convert) and qemu-io (a write must be refused), and
# nbd-client -l (the list the kernel client's tool sees), all against
# `isoboot nbd export`; then setup errors (missing file, port in use).
set -euo pipefail
: "${ISOBOOT_BIN:?}" "${ISOBOOT_TEST_TMP:=/tmp}"
ns="isoboot-nbd-$$"
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp nbd-interop
dir=$tmp
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null || true
}
# Background processes start as `ip netns exec` (which execs), so $! is theirs.
in_ns() { ip netns exec "$ns" "$@"; }
ip netns add "$ns"
ip -n "$ns" link set lo up

# 4 MiB + 3 sectors (qemu sees sizes in 512-byte sectors), and a small odd one.
head -c $((4 * 1024 * 1024 + 1536)) /dev/urandom >"$dir/disk.img"
head -c 1000001 /dev/urandom >"$dir/odd.img"
want=$(sha256sum <"$dir/disk.img" | cut -d' ' -f1)
want_odd=$(sha256sum <"$dir/odd.img" | cut -d' ' -f1)
log=$dir/server.log
fail_logs=("$log")

ip netns exec "$ns" "$ISOBOOT_BIN" nbd export --description "test disk" --export odd="$dir/odd.img" \
  "$dir/disk.img" >"$log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "serving" "$log" && break; sleep 0.1; done
grep -q "serving 2 export(s) on 0.0.0.0 port 10809" "$log" || fail "server did not start"
url=nbd://127.0.0.1:10809

json=$(in_ns nbdinfo --json "$url/disk.img") || fail "nbdinfo failed"
for want_line in '"protocol": "newstyle-fixed"' '"export-size": 4195840' '"is_read_only": true' \
  '"can_multi_conn": true' '"can_flush": true' '"can_trim": false' '"description": "test disk"' \
  '"block_size_minimum": 1' '"block_size_preferred": 4096' '"block_size_maximum": 33554432'; do
  grep -qF "$want_line" <<<"$json" || fail "nbdinfo lacks $want_line: $json"
done
# The empty name is the first export.
in_ns nbdinfo --size "$url" | grep -qx 4195840 || fail "default export is not disk.img"
in_ns nbdinfo --size "$url/odd" | grep -qx 1000001 || fail "odd export size"
list=$(in_ns nbdinfo --list --json "$url") || fail "nbdinfo --list failed"
grep -qF '"export-name": "disk.img"' <<<"$list" || fail "list lacks disk.img: $list"
grep -qF '"export-name": "odd"' <<<"$list" || fail "list lacks odd: $list"
if in_ns nbdinfo "$url/nope" >/dev/null 2>&1; then fail "unknown export opened"; fi
nl=$(in_ns nbd-client -l 127.0.0.1 10809 2>&1) || fail "nbd-client -l failed: $nl"
grep -qx "disk.img" <<<"$nl" && grep -qx "odd" <<<"$nl" || fail "nbd-client -l: $nl"

for c in 1 4; do
  rm -f "$dir/copy"
  in_ns nbdcopy --connections=$c "$url/disk.img" "$dir/copy" || fail "nbdcopy $c failed"
  [[ $(sha256sum <"$dir/copy" | cut -d' ' -f1) == "$want" ]] || fail "nbdcopy $c: wrong bytes"
done
in_ns nbdcopy "$url/odd" - | sha256sum | grep -q "^$want_odd " || fail "nbdcopy odd: wrong bytes"

info=$(in_ns qemu-img info -f raw "$url/disk.img") || fail "qemu-img info failed"
grep -q "virtual size: .*(4195840 bytes)" <<<"$info" || fail "qemu-img info: $info"
in_ns qemu-img convert -f raw -O raw "$url/disk.img" "$dir/qemu.img" || fail "qemu-img convert"
[[ $(sha256sum <"$dir/qemu.img" | cut -d' ' -f1) == "$want" ]] || fail "qemu-img: wrong bytes"

# Writes: refused when opening read-write, and by the server when qemu-io is
# told the node is writable anyway (NBD_CMD_WRITE gets EPERM).
if out=$(in_ns qemu-io -f raw -c 'write 0 512' "$url/disk.img" 2>&1); then
  fail "qemu-io write succeeded: $out"
fi
grep -qi "permission denied\|read-only" <<<"$out" || fail "qemu-io: $out"
in_ns python3 - "$dir/disk.img" <<'PY' || fail "raw write not refused with EPERM"
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", 10809), timeout=10)
def rd(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise SystemExit("closed")
        b += c
    return b
assert rd(18)[:16] == b"NBDMAGICIHAVEOPT"
s.sendall(struct.pack(">I", 3))
s.sendall(b"IHAVEOPT" + struct.pack(">II", 1, 8) + b"disk.img")  # NBD_OPT_EXPORT_NAME
size, flags = struct.unpack(">QH", rd(10))
assert flags & 2, "no NBD_FLAG_READ_ONLY"
s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, 7, 0, 512) + b"\xee" * 512)
magic, err, cookie = struct.unpack(">IIQ", rd(16))
assert (magic, err, cookie) == (0x67446698, 1, 7), (magic, err, cookie)
PY
[[ $(sha256sum <"$dir/disk.img" | cut -d' ' -f1) == "$want" ]] || fail "the export changed"

# Eight clients at once, each its own copy.
cpids=()
for i in $(seq 8); do
  in_ns nbdcopy --connections=2 "$url/disk.img" "$dir/c$i" &
  cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p" || fail "a concurrent nbdcopy failed"; done
for i in $(seq 8); do
  [[ $(sha256sum <"$dir/c$i" | cut -d' ' -f1) == "$want" ]] || fail "concurrent copy $i differs"
done

kill -TERM "$pid"
wait "$pid" || fail "server exit status $? after SIGTERM"
pid=
grep -q "nbd: stats connections=" "$log" || fail "no stats line"
grep -Eq "bad_requests=1 " "$log" || fail "the refused write was not counted"

# Setup errors: one line on stderr, exit 1.
if err=$(in_ns "$ISOBOOT_BIN" nbd export "$dir/missing.img" 2>&1); then fail "missing file ran"; fi
[[ $(wc -l <<<"$err") == 1 && $err == *missing.img* ]] || fail "missing file: $err"
ip netns exec "$ns" python3 -c 'import socket,time,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(("0.0.0.0",10809)); s.listen(); print("up",flush=True); time.sleep(30)' >"$dir/holder" &
pid=$!
for _ in $(seq 50); do grep -q up "$dir/holder" && break; sleep 0.1; done
if err=$(in_ns "$ISOBOOT_BIN" nbd export "$dir/disk.img" 2>&1); then fail "port in use ran"; fi
[[ $(wc -l <<<"$err") == 1 && $err == *10809* ]] || fail "port in use: $err"
echo "nbd interop: ok"
