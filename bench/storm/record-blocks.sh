#!/usr/bin/env bash
# Records, once, which blocks a real KIWI live boot reads over AoE, for the
# storm generator (bench/storm/kiwi-blocks.txt). KIWI's documented stack and
# no isoboot at all: vblade exports the ISO, dnsmasq answers DHCP and TFTP,
# pxelinux loads the kernel and initrd copied out of the ISO, and QEMU (BIOS,
# iPXE ROM) boots until the live root prints ISOBOOT-LIVE-OK. tcpdump on the
# bridge keeps the guest's AoE frames; every ATA READ (0x20/0x24) the guest
# sent is written as "LBA SECTORS" in the order sent, retransmits (same
# LBA and count again) dropped.
# Usage (root): bench/storm/record-blocks.sh [OUT]   (default bench/storm/kiwi-blocks.txt)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source=tests/qemu/lib.sh
source "$src/tests/qemu/lib.sh"
out=${1:-$here/kiwi-blocks.txt}
iso=$("$src/tests/image/build-kiwi-live.sh" "${KIWI_CACHE:-/var/cache/isoboot/kiwi}")
tmp=$(mktemp -d)
ns=isbrec$$
mac=52:54:00:12:34:57
QEMU_PID=""
trap 'qemu_test_cleanup "$ns" "$tmp"' EXIT
qemu_netns_setup "$ns" br0 tap0
ip -n "$ns" addr add 10.88.0.1/24 dev br0
root=$tmp/tftproot
mkdir -p "$root/boot" "$root/pxelinux.cfg"
osirrox -indev "$iso" -extract /boot/x86_64/loader/linux "$root/boot/linux" \
  -extract /boot/x86_64/loader/initrd "$root/boot/initrd" >/dev/null 2>&1
cp /usr/lib/PXELINUX/pxelinux.0 /usr/lib/syslinux/modules/bios/ldlinux.c32 "$root/"
printf 'DEFAULT live\nLABEL live\n  KERNEL boot/linux\n  APPEND initrd=boot/initrd rd.kiwi.live.pxe root=live:AOEINTERFACE=e0.1 console=ttyS0\n' \
  >"$root/pxelinux.cfg/default"
qemu_bg_start "$ns" "$tmp/tcpdump.log" tcpdump -i br0 -U -s 64 -w "$tmp/aoe.pcap" ether proto 0x88a2 and ether src "$mac"
qemu_bg_start "$ns" "$tmp/vblade.log" vblade 0 1 br0 "$iso"
qemu_bg_start "$ns" "$tmp/dnsmasq.log" dnsmasq --no-daemon --port=0 --interface=br0 --bind-interfaces \
  --dhcp-range=10.88.0.50,10.88.0.60,12h --dhcp-leasefile="$tmp/dnsmasq.leases" \
  --dhcp-boot=pxelinux.0 --enable-tftp --tftp-root="$root"
sleep 1
args=()
qemu_netboot_args args tap0 "$mac" bios
QEMU_MEM=${QEMU_MEM:-512}
t0=$SECONDS
qemu_start "$ns" "$tmp/console" "${args[@]}"
qemu_wait_marker "$tmp/console" "ISOBOOT-LIVE-(OK|FAIL)" "${RECORD_TIMEOUT:-600}"
grep -qa ISOBOOT-LIVE-OK "$tmp/console" || { tail -20 "$tmp/console"; exit 1; }
echo "marker after $((SECONDS - t0)) s"
sleep 1
qemu_stop_pid "$QEMU_PID"
QEMU_PID=""
qemu_bg_stop_all
python3 - "$tmp/aoe.pcap" "$out" "$iso" <<'PY'
import struct, sys
pcap, out, iso = sys.argv[1:4]
data = open(pcap, 'rb').read()
magic = struct.unpack('<I', data[:4])[0]
endian = '<' if magic in (0xa1b2c3d4, 0xa1b23c4d) else '>'
off, seen, reads = 24, set(), []
while off + 16 <= len(data):
    _, _, incl, _ = struct.unpack(endian + 'IIII', data[off:off + 16])
    f = data[off + 16:off + 16 + incl]
    off += 16 + incl
    # Ethernet 14, AoE header 10 (ver/flags, err, major 2, minor, cmd, tag 4),
    # ATA arg: aflags, feature, count, cmd, lba0..5.
    if len(f) < 34 or f[12:14] != b'\x88\xa2' or f[14] & 0x08 or f[19] != 0:
        continue
    cnt, cmd = f[26], f[27]
    if cmd not in (0x20, 0x24):
        continue
    lba = int.from_bytes(f[28:34], 'little') & ((1 << 48) - 1)
    tag = f[20:24]
    if (tag, lba, cnt) in seen:
        continue  # a retransmit of the same request
    seen.add((tag, lba, cnt))
    reads.append((lba, cnt or 256))
with open(out, 'w') as o:
    o.write('# Blocks a real KIWI live boot reads over AoE (ATA READ requests in the\n')
    o.write('# order the Linux aoe driver sent them): "LBA SECTORS", 512-byte sectors.\n')
    o.write('# Recorded by bench/storm/record-blocks.sh from a QEMU BIOS boot of\n')
    o.write('# %s (%d bytes) against vblade.\n' % (iso.split('/')[-2] + '/' + iso.split('/')[-1], len(open(iso, 'rb').read())))
    o.write('# %d reads, %d sectors (%.2f MiB)\n' % (len(reads), sum(c for _, c in reads), sum(c for _, c in reads) / 2048))
    for lba, cnt in reads:
        o.write('%d %d\n' % (lba, cnt))
print('%d reads, %.2f MiB -> %s' % (len(reads), sum(c for _, c in reads) / 2048, out))
PY
