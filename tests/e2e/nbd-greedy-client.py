#!/usr/bin/python3
"""Raw NBD clients for nbd-limits.sh and nbd-batch.sh, over a Unix socket, on
the default export.

    nbd-greedy-client.py greedy SOCKET COUNT LENGTH GOFILE
        Pipeline COUNT reads of LENGTH bytes (alternating between offset 0
        and LENGTH) without reading any reply; print "stalled" once the first
        reply has begun to arrive, wait until GOFILE exists, then read every
        reply, check it, and print "drained".
    nbd-greedy-client.py hold SOCKET GOFILE
        Finish the handshake, print "ready", hold the connection until
        GOFILE exists.
    nbd-greedy-client.py burst SOCKET IMAGE COUNT LENGTH
        Send COUNT reads of LENGTH bytes (at LENGTH * 7 * i, wrapping at the
        export's end) in one write, so that the server finds them all at
        once; then read every reply and check it against IMAGE, the raw
        file the export holds. Prints "verified COUNT".
    nbd-greedy-client.py queued SOCKET WAIT
        Connect and expect no greeting within WAIT seconds (the server is
        full): print "queued"; then wait up to 60 s for the greeting, finish
        the handshake and print "served".

Simple replies only (no structured replies), so a read's reply is its
data: the server must hold the whole buffer to answer.
"""
import os
import select
import socket
import struct
import sys
import time

NBD_MAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REP_MAGIC = 0x0003E889045565A9
OPT_GO = 7
REP_ACK = 1
REQUEST_MAGIC = 0x25609513
REPLY_MAGIC = 0x67446698
CMD_READ = 0
DEADLINE = 60


def recv_all(s, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = s.recv_into(view[got:], n - got)
        if not k:
            raise SystemExit(f"FAIL: server closed the connection ({got} of {n} bytes)")
        got += k
    return bytes(buf)


def discard(s, n, scratch):
    while n:
        k = s.recv_into(scratch, min(n, len(scratch)))
        if not k:
            raise SystemExit("FAIL: server closed the connection within a reply")
        n -= k


def connect(path, greeting_timeout=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    if greeting_timeout is not None:
        r, _, _ = select.select([s], [], [], greeting_timeout)
        if r:
            raise SystemExit("FAIL: greeted although the server was full")
        print("queued", flush=True)
    s.settimeout(DEADLINE)
    return s


def handshake(s):
    magic, opt, _flags = struct.unpack(">QQH", recv_all(s, 18))
    if magic != NBD_MAGIC or opt != IHAVEOPT:
        raise SystemExit("FAIL: not a newstyle NBD server")
    s.sendall(struct.pack(">I", 3))  # FIXED_NEWSTYLE | NO_ZEROES
    payload = struct.pack(">IH", 0, 0)  # empty export name, no info requests
    s.sendall(struct.pack(">QII", IHAVEOPT, OPT_GO, len(payload)) + payload)
    while True:
        magic, _opt, rep, length = struct.unpack(">QIII", recv_all(s, 20))
        if magic != REP_MAGIC:
            raise SystemExit("FAIL: bad option reply magic")
        data = recv_all(s, length)
        if rep == REP_ACK:
            return
        if rep & 0x80000000:
            raise SystemExit(f"FAIL: NBD_OPT_GO refused: {rep:#x} {data!r}")


def wait_for(path):
    end = time.monotonic() + DEADLINE
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise SystemExit(f"FAIL: {path} did not appear within {DEADLINE} s")
        time.sleep(0.05)


def greedy(path, count, length, gofile):
    s = connect(path)
    handshake(s)
    for i in range(count):
        s.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_READ, i,
                              (i % 2) * length, length))
    # The first reply has begun: the server is answering and will not be
    # read from again by this client until it drains.
    s.recv(16, socket.MSG_PEEK | socket.MSG_WAITALL)
    print("stalled", flush=True)
    wait_for(gofile)
    seen = set()
    scratch = memoryview(bytearray(4 << 20))
    for _ in range(count):
        magic, err, cookie = struct.unpack(">IIQ", recv_all(s, 16))
        if magic != REPLY_MAGIC or err:
            raise SystemExit(f"FAIL: reply magic {magic:#x} error {err}")
        discard(s, length, scratch)
        seen.add(cookie)
    if seen != set(range(count)):
        raise SystemExit(f"FAIL: replies for cookies {sorted(seen)}")
    print("drained", flush=True)


def burst(path, image, count, length):
    s = connect(path)
    handshake(s)
    size = os.path.getsize(image)
    offsets = [(length * 7 * i) % (size - length + 1) for i in range(count)]
    s.sendall(b"".join(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_READ, i, off, length)
                       for i, off in enumerate(offsets)))
    with open(image, "rb") as f:
        for _ in range(count):
            magic, err, cookie = struct.unpack(">IIQ", recv_all(s, 16))
            if magic != REPLY_MAGIC or err or cookie >= count:
                raise SystemExit(f"FAIL: reply magic {magic:#x} error {err} cookie {cookie}")
            f.seek(offsets[cookie])
            if recv_all(s, length) != f.read(length):
                raise SystemExit(f"FAIL: read {cookie} at {offsets[cookie]} returned other bytes")
    print(f"verified {count}", flush=True)


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "greedy":
        greedy(path, int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif mode == "burst":
        burst(path, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "hold":
        s = connect(path)
        handshake(s)
        print("ready", flush=True)
        wait_for(sys.argv[3])
        s.close()
    elif mode == "queued":
        s = connect(path, float(sys.argv[3]))
        handshake(s)
        print("served", flush=True)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
