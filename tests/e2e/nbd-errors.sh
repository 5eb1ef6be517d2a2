#!/usr/bin/env bash
# Bad input gets the protocol's error or a closed connection, never a
# crash, a hang or an effect on other clients: requests past the end, over
# the maximum, writes to a snapshot, unknown commands, bad magic, truncated
# handshakes, clients that vanish mid-request.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires nbdsh nbdinfo python3
trace_on

nbd_store
"$ADMIN" create --size 1M vm
"$ADMIN" snap vm@s
nbd_start s vm vm@s
sock=$TESTDIR/s.sock

# A client kept open across all the abuse below must be unaffected.
nbdsh -u "$(nbd_uri s vm)" -c '
import errno
h.set_strict_mode(0)
def expect(err, f, *a):
    try:
        f(*a)
    except nbd.Error as e:
        assert getattr(errno, str(e.errno), e.errno) == err, (f, e.errno, e)
        return
    raise AssertionError("no error from %s" % f)
size = h.get_size()
expect(errno.EINVAL, h.pread, 512, size - 256)
expect(errno.ENOSPC, h.pwrite, b"x" * 512, size - 256)
expect(errno.EINVAL, h.trim, 4096, size)
expect(errno.EINVAL, h.pread, 0, 0)
h.pwrite(b"kept" * 1024, 8192)
h.flush()
' || fail "range errors"

# Over the maximum: a read errors; the client can go on.
nbdsh --connect "$(nbd_uri s vm)" -c '
import errno
h.set_strict_mode(0)
try:
    h.pread(64 << 20, 0)
    raise AssertionError("oversized read accepted")
except nbd.Error as e:
    assert str(e.errno) in ("EOVERFLOW", "EINVAL", "75", "22"), e
assert h.pread(4, 8192) == b"kept"
' || fail "oversized read"

# Writes to a snapshot: EPERM, and the snapshot is untouched.
nbdsh -u "$(nbd_uri s vm@s)" -c '
import errno
h.set_strict_mode(0)
for f, a in ((h.pwrite, (b"x" * 4096, 0)), (h.zero, (4096, 0)), (h.trim, (4096, 0))):
    try:
        f(*a)
        raise AssertionError("write to a snapshot accepted")
    except nbd.Error as e:
        assert str(e.errno) in ("EPERM", "1"), e
assert h.pread(4096, 0) == bytes(4096)
' || fail "read-only"

# Raw protocol abuse from a socket.
python3 - "$sock" <<'PY'
import socket, struct, sys, time
path = sys.argv[1]
IHAVEOPT = 0x49484156454f5054

def conn():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    return s

def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError(len(b))
        b += c
    return b

def go(s, name=b"vm"):
    recvn(s, 18)
    s.sendall(struct.pack(">I", 3))
    s.sendall(struct.pack(">QII", IHAVEOPT, 7, 4 + len(name) + 2) + struct.pack(">I", len(name)) + name + b"\0\0")
    while True:
        magic, opt, typ, ln = struct.unpack(">QIII", recvn(s, 20))
        recvn(s, ln)
        if typ == 1:
            return
        assert typ == 3, hex(typ)

def closed(s):
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True

# Unknown command: EINVAL, connection stays usable.
s = conn(); go(s)
s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 99, 7, 0, 0))
magic, err, cookie = struct.unpack(">IIQ", recvn(s, 16))
assert (magic, err, cookie) == (0x67446698, 22, 7), (hex(magic), err, cookie)
s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 3, 8, 0, 0))  # flush
assert struct.unpack(">IIQ", recvn(s, 16)) == (0x67446698, 0, 8)
# Bad request magic: hang up.
s.sendall(b"\xde\xad\xbe\xef" * 7)
assert closed(s)
# Truncated handshake, bad client flags, bad option magic, garbage.
for junk in (b"", b"\0\0", struct.pack(">I", 0x80), struct.pack(">I", 1) + b"NOTMAGIC" + b"\0" * 8,
             struct.pack(">I", 1) + struct.pack(">QII", IHAVEOPT, 7, 0xffffffff)):
    s = conn(); recvn(s, 18); s.sendall(junk); s.shutdown(socket.SHUT_WR)
    assert closed(s), junk
# Unknown option: ERR_UNSUP, and negotiation goes on.
s = conn(); recvn(s, 18); s.sendall(struct.pack(">I", 1))
s.sendall(struct.pack(">QII", IHAVEOPT, 1234, 3) + b"abc")
assert struct.unpack(">QIII", recvn(s, 20))[2] == 0x80000001
s.sendall(struct.pack(">QII", IHAVEOPT, 2, 0))  # ABORT
s.close()
# Vanish mid-request: a write header announcing 1 MiB, then half of it.
for n in (0, 1000, 512 << 10):
    s = conn(); go(s)
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, 9, 0, 1 << 20) + b"z" * n)
    s.close()
# Vanish with requests in flight.
s = conn(); go(s)
for i in range(64):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, i, 0, 65536))
s.close()
PY
# Every one of those connections has ended on the server's side.
no_clients() { "$ADMIN" stats --json vm | grep -q '"clients":0[,}]'; }
wait_until 30 no_clients || fail "the server still counts a vanished client: $("$ADMIN" stats --json vm)"

nbdsh -u "$(nbd_uri s vm)" -c 'assert h.pread(4, 8192) == b"kept"' || fail "server hurt"
kill -0 "$(cat "$TESTDIR/s.pid")" || fail "server died"
nbd_stop s
