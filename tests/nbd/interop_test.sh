#!/usr/bin/env bash
# NBD interop against peers nobody here wrote, inside a private network
# namespace (loopback only): libnbd's nbdinfo (handshake, --list, size,
# block sizes, flags) and nbdcopy (1, 4 and 8 concurrent copies), QEMU's
# qemu-img (info, convert) and qemu-io (a write must be refused), and
# nbd-client -l (the list the kernel client's tool sees), all against
# `isoboot nbd export`; base:allocation on a sparse file (nbdinfo --map, its
# totals, qemu-img map, nbdcopy, against nbdkit's file plugin on the same
# file); then setup errors (missing file, port in use).
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
# 64 MiB with data at [4, 6), [20, 21) and [60, 63) MiB, holes elsewhere.
truncate -s 64M "$dir/sparse.img"
for run in 4:2 20:1 60:3; do
  dd if=/dev/urandom of="$dir/sparse.img" bs=1M seek="${run%:*}" count="${run#*:}" conv=notrunc \
    status=none
done
want_sparse=$(sha256sum <"$dir/sparse.img" | cut -d' ' -f1)
log=$dir/server.log
fail_logs=("$log")

ip netns exec "$ns" "$ISOBOOT_BIN" nbd export --description "test disk" --export odd="$dir/odd.img" \
  --export sparse="$dir/sparse.img" "$dir/disk.img" >"$log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "serving" "$log" && break; sleep 0.1; done
grep -q "serving 3 export(s) on 0.0.0.0 port 10809" "$log" || fail "server did not start"
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

# base:allocation. The map of the sparse file, as offset, length, type
# (3 = hole,zero; 0 = data).
M=$((1024 * 1024))
want_map=$(printf '%s\n' "0 $((4 * M)) 3" "$((4 * M)) $((2 * M)) 0" "$((6 * M)) $((14 * M)) 3" \
  "$((20 * M)) $((1 * M)) 0" "$((21 * M)) $((39 * M)) 3" "$((60 * M)) $((3 * M)) 0" \
  "$((63 * M)) $((1 * M)) 3")
grep -qF '"base:allocation"' <<<"$json" || fail "nbdinfo lists no base:allocation context: $json"
map=$(in_ns nbdinfo --map "$url/sparse" | awk '{print $1, $2, $3}') || fail "nbdinfo --map failed"
[[ $map == "$want_map" ]] || fail "nbdinfo --map of the sparse file: $map"
# nbdkit's file plugin on the same file (over a private socket) agrees.
kit=$(nbdinfo --map -- [ nbdkit file "$dir/sparse.img" ] | awk '{print $1, $2, $3}') ||
  fail "nbdkit map failed"
[[ $map == "$kit" ]] || fail "nbdinfo --map differs from nbdkit's: $map / $kit"
totals=$(in_ns nbdinfo --map --totals "$url/sparse" | awk '{print $1, $3}') ||
  fail "nbdinfo --map --totals failed"
[[ $totals == "$(printf '%s\n' "$((6 * M)) 0" "$((58 * M)) 3")" ]] || fail "totals: $totals"
# The random-data disk is all data; the odd-sized export's last extent ends
# at its size.
map=$(in_ns nbdinfo --map "$url/disk.img" | awk '{print $1, $2, $3}')
[[ $map == "0 4195840 0" ]] || fail "nbdinfo --map of disk.img: $map"
map=$(in_ns nbdinfo --map "$url/odd" | awk '{print $1, $2, $3}')
[[ $map == "0 1000001 0" ]] || fail "nbdinfo --map of odd: $map"
# QEMU: holes read as zeroes and hold no data; data is data.
qmap=$(in_ns qemu-img map -f raw --output=json "$url/sparse") || fail "qemu-img map failed"
python3 - "$qmap" "$want_map" <<'PY' || fail "qemu-img map: $qmap"
import json, sys
got = [(e["start"], e["length"], e["zero"], e["data"]) for e in json.loads(sys.argv[1])]
merged = []
for start, length, zero, data in got:
    if merged and merged[-1][2:] == (zero, data) and merged[-1][0] + merged[-1][1] == start:
        merged[-1] = (merged[-1][0], merged[-1][1] + length, zero, data)
    else:
        merged.append((start, length, zero, data))
want = [(int(o), int(n), t == "3", t == "0")
        for o, n, t in (line.split() for line in sys.argv[2].splitlines())]
assert merged == want, (merged, want)
PY
# A raw client: NBD_CMD_BLOCK_STATUS without a selected context gets EINVAL;
# after SET_META_CONTEXT, NBD_CMD_FLAG_REQ_ONE gets exactly one extent within
# the request; a range past the end gets EINVAL.
in_ns python3 - <<'PY' || fail "raw block status"
import socket, struct
def session(meta):
    s = socket.create_connection(("127.0.0.1", 10809), timeout=10)
    def rd(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c: raise SystemExit("closed")
            b += c
        return b
    def opt(o, data=b""):
        s.sendall(b"IHAVEOPT" + struct.pack(">II", o, len(data)) + data)
        replies = []
        while True:
            magic, ro, rtype, n = struct.unpack(">QIII", rd(20))
            assert magic == 0x3e889045565a9 and ro == o, (magic, ro)
            replies.append((rtype, rd(n)))
            if rtype == 1 or rtype & 0x80000000: return replies
    assert rd(18)[:16] == b"NBDMAGICIHAVEOPT"
    s.sendall(struct.pack(">I", 3))
    assert opt(8)[-1][0] == 1  # NBD_OPT_STRUCTURED_REPLY
    name = b"sparse"
    if meta:
        q = b"base:allocation"
        r = opt(10, struct.pack(">I", len(name)) + name + struct.pack(">II", 1, len(q)) + q)
        assert [t for t, _ in r] == [4, 1] and r[0][1][4:] == q, r
        ctx = struct.unpack(">I", r[0][1][:4])[0]
    else:
        ctx = None
    r = opt(7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    assert r[-1][0] == 1, r
    return s, rd, ctx
def block_status(s, rd, flags, offset, length):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, flags, 7, 42, offset, length))
    magic, rflags, rtype, cookie, n = struct.unpack(">IHHQI", rd(20))
    assert magic == 0x668e33ef and cookie == 42 and rflags & 1, (magic, cookie, rflags)
    return rtype, rd(n)
M = 1 << 20
s, rd, _ = session(False)
rtype, payload = block_status(s, rd, 0, 0, 4096)
assert rtype == 0x8001 and struct.unpack(">I", payload[:4])[0] == 22, (rtype, payload)
s, rd, ctx = session(True)
rtype, payload = block_status(s, rd, 8, 3 * M, 2 * M)  # REQ_ONE from a hole into data
assert rtype == 5 and len(payload) == 12, (rtype, payload)
assert struct.unpack(">III", payload) == (ctx, M, 3), payload
rtype, payload = block_status(s, rd, 8, 4 * M, 1000)
assert struct.unpack(">III", payload) == (ctx, 1000, 0), payload
rtype, payload = block_status(s, rd, 0, 3 * M, 2 * M)
assert struct.unpack(">IIIII", payload) == (ctx, M, 3, M, 0), payload
rtype, payload = block_status(s, rd, 0, 63 * M, M + 1)
assert rtype == 0x8001 and struct.unpack(">I", payload[:4])[0] == 22, (rtype, payload)
PY

# Copies skip the holes (nbdcopy and qemu-img read only what block status
# calls data), so a wrong map gives wrong bytes.
rm -f "$dir/copy"
in_ns nbdcopy "$url/sparse" "$dir/copy" || fail "nbdcopy sparse failed"
[[ $(sha256sum <"$dir/copy" | cut -d' ' -f1) == "$want_sparse" ]] || fail "nbdcopy sparse: bytes"
rm -f "$dir/qemu.img"
in_ns qemu-img convert -f raw -O raw "$url/sparse" "$dir/qemu.img" || fail "qemu-img convert sparse"
[[ $(sha256sum <"$dir/qemu.img" | cut -d' ' -f1) == "$want_sparse" ]] || fail "qemu-img sparse: bytes"

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
grep -Eq "bad_requests=3 " "$log" || fail "the refused write and block status were not counted"

# Setup errors: one line on stderr, exit 1.
if err=$(in_ns "$ISOBOOT_BIN" nbd export "$dir/missing.img" 2>&1); then fail "missing file ran"; fi
[[ $(wc -l <<<"$err") == 1 && $err == *missing.img* ]] || fail "missing file: $err"
ip netns exec "$ns" python3 -c 'import socket,time,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(("0.0.0.0",10809)); s.listen(); print("up",flush=True); time.sleep(30)' >"$dir/holder" &
pid=$!
for _ in $(seq 50); do grep -q up "$dir/holder" && break; sleep 0.1; done
if err=$(in_ns "$ISOBOOT_BIN" nbd export "$dir/disk.img" 2>&1); then fail "port in use ran"; fi
[[ $(wc -l <<<"$err") == 1 && $err == *10809* ]] || fail "port in use: $err"
echo "nbd interop: ok"
