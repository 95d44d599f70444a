#!/usr/bin/env python3
"""Test-only raw DHCP client for tests/dhcp/*_test.sh, run inside a network
namespace. Every loop is bounded.

  lease OUT N [--first K] [--window W] [--deadline S]
      DISCOVER then REQUEST for N made-up MACs (02:00:00:00:HH:LL, from K),
      W transactions at a time; appends "MAC IP" to OUT (one write, flushed)
      for every DHCPACK received. Gives up on a MAC after 4 tries of 1 s.
  inform SERVER COUNT
      COUNT DHCPINFORMs from one MAC, each with another ciaddr, unicast.
  request SERVER COUNT
      COUNT DHCPREQUESTs from one MAC, each naming another address.
"""
import os
import random
import select
import socket
import struct
import sys
import time

COOKIE = b"\x63\x82\x53\x63"


def mac_of(i):
    return bytes([2, 0, 0, 0, (i >> 8) & 0xFF, i & 0xFF])


def fmt_mac(m):
    return ":".join(f"{b:02x}" for b in m)


def packet(msg_type, xid, mac, ciaddr=0, opts=b""):
    p = struct.pack("!BBBBIHHIIII", 1, 1, 6, 0, xid, 0, 0, ciaddr, 0, 0, 0)
    p += mac + b"\0" * 10 + b"\0" * 192 + COOKIE
    p += bytes([53, 1, msg_type]) + opts + b"\xff"
    return p + b"\0" * max(0, 300 - len(p))


def ip_opt(code, ip):
    return bytes([code, 4]) + socket.inet_aton(ip)


def parse(data):
    if len(data) < 240 or data[0] != 2 or data[236:240] != COOKIE:
        return None
    xid = struct.unpack("!I", data[4:8])[0]
    yiaddr = socket.inet_ntoa(data[16:20])
    mac = data[28:34]
    opts, i = {}, 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        if i + 1 >= len(data):
            break
        n = data[i + 1]
        opts[data[i]] = data[i + 2:i + 2 + n]
        i += 2 + n
    t = opts.get(53, b"\0")[0]
    return xid, yiaddr, mac, t, opts


def client_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.bind(("0.0.0.0", 68))
    return s


def lease(out_path, n, first=0, window=32, deadline=60.0):
    s = client_socket()
    out = open(out_path, "a", buffering=1)
    todo = list(range(first, first + n))
    active = {}  # xid -> [i, state, sent_at, tries, offered_ip, server]
    end = time.monotonic() + deadline
    rnd = random.Random(os.getpid())
    acked = 0
    while (todo or active) and time.monotonic() < end:
        while todo and len(active) < window:
            i = todo.pop(0)
            xid = rnd.getrandbits(32)
            active[xid] = [i, "discover", 0.0, 0, None, None]
        now = time.monotonic()
        for xid, t in list(active.items()):
            if now - t[2] < 1.0:
                continue
            if t[3] >= 4:
                del active[xid]
                continue
            t[3] += 1
            t[2] = now
            if t[1] == "discover":
                p = packet(1, xid, mac_of(t[0]))
            else:
                p = packet(3, xid, mac_of(t[0]), opts=ip_opt(50, t[4]) + ip_opt(54, t[5]))
            s.sendto(p, ("255.255.255.255", 67))
        r, _, _ = select.select([s], [], [], 0.05)
        if not r:
            continue
        for _ in range(256):
            try:
                data = s.recv(2048, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            m = parse(data)
            if not m or m[0] not in active:
                continue
            xid, yiaddr, mac, typ, opts = m
            t = active[xid]
            if mac != mac_of(t[0]):
                continue
            if typ == 2 and t[1] == "discover":  # OFFER
                t[1], t[4], t[5], t[2], t[3] = "request", yiaddr, socket.inet_ntoa(opts[54]), 0.0, 0
            elif typ == 5 and t[1] == "request":  # ACK
                out.write(f"{fmt_mac(mac)} {yiaddr}\n")
                acked += 1
                del active[xid]
            elif typ == 6:  # NAK: start again
                t[1], t[2], t[3] = "discover", 0.0, 0
    print(f"acked {acked}")


def flood(kind, server, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mac = bytes([2, 0xEE, 0, 0, 0, 1])
    for k in range(count):
        ip = socket.inet_aton(f"10.{(k >> 16) & 255}.{(k >> 8) & 255}.{k & 255}")
        if kind == "inform":
            p = packet(8, k, mac, ciaddr=struct.unpack("!I", ip)[0])
        else:
            p = packet(3, k, mac, opts=bytes([50, 4]) + ip)
        s.sendto(p, (server, 67))
        if k % 20 == 19:
            time.sleep(0.01)  # let the server's socket buffer drain
    print(f"sent {count}")


def main():
    a = sys.argv[1:]
    if a[0] == "lease":
        kw = {}
        rest = a[3:]
        for j in range(0, len(rest), 2):
            kw[rest[j].lstrip("-")] = float(rest[j + 1]) if rest[j] == "--deadline" else int(rest[j + 1])
        lease(a[1], int(a[2]), **kw)
    elif a[0] in ("inform", "request"):
        flood(a[0], a[1], int(a[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
