#!/usr/bin/python3
"""libnbd clients for nbd-batch.sh and nbd-resident.sh; every byte read
is checked against IMAGE, the raw file the export holds.

    nbd-batch-client.py qd URI IMAGE COUNT DEPTH
        COUNT reads of 4 KiB at random 512-byte aligned offsets (so some
        straddle two blocks), DEPTH of them in flight at once. Prints
        "verified COUNT".
    nbd-batch-client.py stall URI IMAGE GO
        Send an 8 MiB read at 8 MiB, more than the socket buffers hold
        (a Unix socket's, or loopback TCP's with its send buffer grown to
        4 MiB), and read no reply: the server's send of it blocks. Prints "big", waits
        until the file GO.1 exists, then sends 15 reads of 4 KiB, which
        become ready while that send blocks. Prints "stalled", waits for
        GO.2, then reads and checks all 16 replies and prints "verified 16".
    nbd-batch-client.py seq URI IMAGE COUNT DEPTH SIZE PID
        2 * COUNT sequential reads of SIZE bytes, DEPTH in flight, wrapping
        at the end of the export. Between the first COUNT and the rest it
        reads the minor page faults of process PID (the server) from
        /proc, and prints "faults N": those the server took while serving
        the second COUNT, on a connection already warm.
    nbd-batch-client.py idle URI IMAGE COUNT DEPTH SIZE PID
        COUNT sequential reads of SIZE bytes, DEPTH in flight; then, the
        connection open and quiet, waits until process PID (the server)
        has given back at least half of the anonymous memory they made
        resident (RssAnon in /proc/PID/status) and prints "idle GREW LEFT"
        in KiB; then COUNT more reads.

Exits 1 naming the first read that returned other bytes.
"""
import os
import random
import sys
import time

import nbd

BS = 4096
DEADLINE = 60


class Client:
    def __init__(self, uri, image):
        with open(image, "rb") as f:
            self.data = f.read()
        self.image = image
        self.h = nbd.NBD()
        self.h.set_uri_allow_local_file(True)
        self.h.connect_uri(uri)
        if self.h.get_size() != len(self.data):
            sys.exit(f"export is {self.h.get_size()} bytes, {image} {len(self.data)}")
        self.inflight = {}
        self.checked = 0

    def issue(self, off, length):
        buf = nbd.Buffer(length)
        self.inflight[self.h.aio_pread(buf, off)] = (buf, off)

    def reap(self):
        """Wait for replies; check each read that completed."""
        self.h.poll(-1)
        while self.inflight:
            cookie = self.h.aio_peek_command_completed()
            if cookie <= 0:
                return
            self.h.aio_command_completed(cookie)
            buf, off = self.inflight.pop(cookie)
            got = buf.to_bytearray()
            if got != self.data[off:off + len(got)]:
                sys.exit(f"read {self.checked} of {len(got)} bytes at {off}: "
                         f"other bytes than {self.image}")
            self.checked += 1

    def done(self):
        self.h.shutdown()
        print(f"verified {self.checked}", flush=True)


def run(c, count, depth, next_off, length):
    """count more reads of length bytes at next_off(), depth in flight."""
    issued = 0
    goal = c.checked + count
    while c.checked < goal:
        while issued < count and len(c.inflight) < depth:
            c.issue(next_off(), length)
            issued += 1
        c.reap()


def qd(c, count, depth):
    rng = random.Random(14)
    run(c, count, depth, lambda: rng.randrange(0, (len(c.data) - BS) // 512 + 1) * 512, BS)


def minflt(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def sequential(c, size):
    """The offsets of sequential reads of size bytes, wrapping at the end."""
    pos = [0]

    def next_off():
        off = pos[0]
        pos[0] = (off + size) % (len(c.data) - size + 1)
        return off

    return next_off


def seq(c, count, depth, size, pid):
    next_off = sequential(c, size)
    run(c, count, depth, next_off, size)
    before = minflt(pid)
    run(c, count, depth, next_off, size)
    print(f"faults {minflt(pid) - before}", flush=True)


def rss_anon(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("RssAnon:"))


def idle(c, count, depth, size, pid):
    next_off = sequential(c, size)
    base = rss_anon(pid)
    run(c, count, depth, next_off, size)
    grew = rss_anon(pid) - base
    end = time.monotonic() + DEADLINE
    while rss_anon(pid) > base + grew // 2:
        if time.monotonic() > end:
            sys.exit(f"the server kept {rss_anon(pid) - base} of {grew} KiB "
                     f"for {DEADLINE} s on a quiet connection")
        time.sleep(0.1)
    print(f"idle {grew} {rss_anon(pid) - base}", flush=True)
    run(c, count, depth, next_off, size)


def wait_for(path):
    end = time.monotonic() + DEADLINE
    while not os.path.exists(path):
        if time.monotonic() > end:
            sys.exit(f"{path} did not appear within {DEADLINE} s")
        time.sleep(0.05)


def stall(c, go):
    rng = random.Random(15)
    c.issue(8 << 20, 8 << 20)
    print("big", flush=True)
    wait_for(go + ".1")
    for _ in range(15):
        c.issue(rng.randrange(0, len(c.data) // BS) * BS, BS)
    print("stalled", flush=True)
    wait_for(go + ".2")
    while c.inflight:
        c.reap()


def main():
    mode, uri, image = sys.argv[1:4]
    c = Client(uri, image)
    if mode == "qd":
        qd(c, int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "seq":
        seq(c, *(int(a) for a in sys.argv[4:8]))
    elif mode == "idle":
        idle(c, *(int(a) for a in sys.argv[4:8]))
    elif mode == "stall":
        stall(c, sys.argv[4])
    else:
        sys.exit(f"unknown mode {mode}")
    c.done()


main()
