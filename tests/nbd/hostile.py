"""Hostile NBD clients for hostile_test.sh. Usage: hostile.py PORT CASE [ARG]
Each case exits 0 when the server answered as proto.md says (refused, closed
or replied with an error) and non-zero otherwise."""
import resource
import socket
import struct
import sys
import time

HOST = "127.0.0.1"
port = int(sys.argv[1])
case = sys.argv[2]


def connect(src="127.0.0.1"):
    s = socket.socket()
    s.settimeout(20)
    s.bind((src, 0))
    s.connect((HOST, port))
    return s


def rd(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return b
        b += c
    return b


def closed(s):
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return True


def opt(option, data):
    return b"IHAVEOPT" + struct.pack(">II", option, len(data)) + data


def greet(s, flags=3):
    assert rd(s, 18)[:16] == b"NBDMAGICIHAVEOPT"
    s.sendall(struct.pack(">I", flags))


def reply(s):
    h = rd(s, 20)
    magic, option, typ, length = struct.unpack(">QIII", h)
    assert magic == 0x3E889045565A9
    return option, typ, rd(s, length)


def go(s, name=b"disk.img", structured=False):
    greet(s)
    if structured:
        s.sendall(opt(8, b""))
        assert reply(s)[1] == 1
    s.sendall(opt(7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0)))
    while True:
        _, typ, _ = reply(s)
        if typ == 1:
            return
        assert typ == 3, hex(typ)


def request(s, typ, offset, length, cookie=1):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, typ, cookie, offset, length))


ERR_UNSUP, ERR_INVALID, ERR_UNKNOWN, ERR_TOO_BIG = (0x80000000 + n for n in (1, 3, 6, 9))

if case == "cut-greeting":  # close after half the client flags
    s = connect()
    rd(s, 18)
    s.sendall(b"\0\0")
    s.close()
elif case == "oldstyle-client":  # flags without FIXED_NEWSTYLE: closed
    s = connect()
    greet(s, 0)
    assert closed(s)
elif case == "cut-option":  # option header says 100 bytes, 10 come, then close
    s = connect()
    greet(s)
    s.sendall(b"IHAVEOPT" + struct.pack(">II", 7, 100) + b"x" * 10)
    s.close()
elif case == "option-too-long":  # 16 MiB of option data announced: closed unread
    s = connect()
    greet(s)
    s.sendall(b"IHAVEOPT" + struct.pack(">II", 7, 16 << 20))
    assert closed(s)
elif case == "name-past-frame":  # name length past the option: NBD_REP_ERR_INVALID
    s = connect()
    greet(s)
    s.sendall(opt(7, struct.pack(">I", 1000) + b"disk.img" + struct.pack(">H", 0)))
    assert reply(s)[1] == ERR_INVALID
    s.sendall(opt(7, struct.pack(">I", 5000) + b"a" * 5000 + struct.pack(">H", 0)))
    assert reply(s)[1] == ERR_TOO_BIG
    s.sendall(opt(6, struct.pack(">I", 4) + b"nope" + struct.pack(">H", 0)))
    assert reply(s)[1] == ERR_UNKNOWN
    # NBD_OPT_LIST_META_CONTEXT: a query past the option, a huge count.
    s.sendall(opt(9, struct.pack(">I", 8) + b"disk.img" + struct.pack(">II", 1, 1000) + b"base:"))
    assert reply(s)[1] == ERR_INVALID
    s.sendall(opt(9, struct.pack(">I", 8) + b"disk.img" + struct.pack(">I", 0xFFFFFFFF)))
    assert reply(s)[1] == ERR_TOO_BIG
    s.sendall(opt(4242, b"zz"))
    assert reply(s)[1] == ERR_UNSUP
    s.sendall(opt(5, b""))  # STARTTLS
    assert reply(s)[1] == ERR_UNSUP
    go_name = b"disk.img"
    s.sendall(opt(7, struct.pack(">I", len(go_name)) + go_name + struct.pack(">H", 0)))
    while reply(s)[1] != 1:
        pass
    request(s, 0, 0, 512)
    magic, err, _ = struct.unpack(">IIQ", rd(s, 16))
    assert (magic, err) == (0x67446698, 0)
    assert len(rd(s, 512)) == 512
elif case == "bad-magic-option":
    s = connect()
    greet(s)
    s.sendall(b"XHAVEOPT" + struct.pack(">II", 7, 0))
    assert closed(s)
elif case == "reads":  # past the end, 2^32-1 bytes, zero length, unknown command
    size = int(sys.argv[3])
    for structured in (False, True):
        s = connect()
        go(s, structured=structured)
        for offset, length in ((size - 1, 2), (size, 1), (0, 0xFFFFFFFF), (2**64 - 512, 1024),
                               (0, 0)):
            request(s, 0, offset, length, 9)
            if structured:
                magic, flags, typ, cookie, n = struct.unpack(">IHHQI", rd(s, 20))
                assert magic == 0x668E33EF and typ == 0x8001 and flags & 1, (hex(magic), typ)
                err = struct.unpack(">I", rd(s, n)[:4])[0]
            else:
                magic, err, cookie = struct.unpack(">IIQ", rd(s, 16))
            assert err == 22 and cookie == 9, (offset, length, err)
        request(s, 99, 0, 0, 3)
        magic, err, cookie = struct.unpack(">IIQ", rd(s, 16))
        assert err == 22, err
        request(s, 0, size - 100, 100, 4)  # still serving
        head = rd(s, 28 if structured else 16)
        assert len(rd(s, 100)) == 100
        s.sendall(struct.pack(">IHHQQI", 0x12345678, 0, 0, 0, 0, 0))  # bad magic: closed
        assert closed(s)
    s = connect()  # a write longer than the maximum block size: closed
    go(s)
    request(s, 1, 0, 0xFFFFFFFF)
    assert closed(s)
    s = connect()  # cut mid-request
    go(s)
    s.sendall(struct.pack(">IHH", 0x25609513, 0, 0))
    s.close()
elif case == "half-open":  # N connections that never answer the greeting
    n = int(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 256)), hard))
    socks = []
    for i in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.bind(("127.0.0.%d" % (2 + i % 20), 0))
        try:
            s.connect((HOST, port))
        except BlockingIOError:
            pass
        socks.append(s)
    print("opened %d" % len(socks), flush=True)
    sys.stdin.read()  # hold them until told
    sys.exit(0)
else:
    sys.exit("unknown case " + case)
print("ok " + case)
