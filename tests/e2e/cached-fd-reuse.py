#!/usr/bin/python3
"""The hostile exchanges of cached-fd-reuse.sh, against isocached PID on SOCKET.

    cached-fd-reuse.py SOCKET PID GOLDEN MINE OTHER

GOLDEN is root's frozen layer (nobody cannot open it); MINE and OTHER are
frozen layers of nobody's. Part 1: after each hostile exchange of a
session of nobody's, the daemon's descriptor table is what it was before
the session, less nothing and plus nothing. Part 2: the exploit of issue
13 item 1, which got root's sessions served nobody's bytes as GOLDEN's:
a failed receive after a message with a descriptor must not close that
descriptor's number again, by then root's layer.
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cached_wire as w  # noqa: E402

NOBODY = 65534
path, pid, golden, mine, other = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
daemon = w.Daemon(pid)


def nobody():
    return w.hello_as(path, NOBODY)


def root():
    return w.hello_as(path)


def check(what, before, after):
    if before != after:
        lost = {fd: t for fd, t in before.items() if after.get(fd) != t}
        new = {fd: t for fd, t in after.items() if before.get(fd) != t}
        sys.exit("FAIL: %s: the daemon's descriptors changed: lost %r, new %r"
                 % (what, lost, new))
    print("ok: %s: %d descriptors before and after" % (what, len(before)))


def hostile(what, exchange):
    """Run exchange(session) in a fresh session of nobody's, wait for the
    daemon to end the session, and compare its descriptor tables."""
    before = daemon.fds()
    s, end = daemon.session_of(nobody)
    exchange(s)
    s.close()
    daemon.wait_gone(end)
    check(what, before, daemon.fds())


def hang_up_after_stats(s):
    # A hang-up with a reply unread fails the daemon's next receive
    # (ECONNRESET).
    s.send(w.STATS, w.HANDLE_ALL)
    s.wait_reply_queued()


def register_then_hang_up(s):
    # The exchange: a descriptor, then the failed receive.
    s.register(mine)
    hang_up_after_stats(s)


def fds_on(mtype, n, *fields):
    def exchange(s):
        fd = os.open(mine, os.O_RDONLY)
        try:
            s.send(mtype, *fields, fds=[fd] * n)
        finally:
            os.close(fd)
    return exchange


def garbage_with_fd(s):
    fd = os.open(mine, os.O_RDONLY)
    try:
        s.sock.sendmsg([b"\x5a" * 100], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                          struct.pack("i", fd))])
    finally:
        os.close(fd)


def register_and_leave(s):
    # Gone before the reply: the daemon's send fails, its receive sees EOF.
    fd = os.open(mine, os.O_RDONLY)
    try:
        s.send(w.REGISTER, fds=[fd])
    finally:
        os.close(fd)


# Part 1: fd accounting. MINE is registered once first, so later
# registrations of it add no descriptor: every table must come back whole.
keeper = nobody()
keeper.register(mine)
hostile("REGISTER, STATS, hang-up with the reply unread", register_then_hang_up)
hostile("STATS with 2 descriptors", fds_on(w.STATS, 2, w.HANDLE_ALL))
hostile("REGISTER with 2 descriptors", fds_on(w.REGISTER, 2))
hostile("REGISTER with 8 descriptors (control data truncated)", fds_on(w.REGISTER, 8))
hostile("garbage with a descriptor", garbage_with_fd)
hostile("REGISTER, hang-up before the reply", register_and_leave)
keeper.close()

# Part 2: the exploit. The daemon gives each descriptor the lowest free
# number, so nobody can line the number of its last REGISTER up with the
# descriptor the daemon reopens for root's layer next.
r = root()
b1, b1_end = daemon.session_of(nobody)
b2, b2_end = daemon.session_of(nobody)
b1.register(mine)                  # received at J (already cached: closed)
b2.close()                         # frees K < J
daemon.wait_gone(b2_end)
handle, size = r.register(golden)  # received at K, reopened at J
before = daemon.fds()
print("root's layer is at descriptor %r of the daemon"
      % [fd for fd, t in before.items() if t == os.path.realpath(golden)])
hang_up_after_stats(b1)            # the failed receive after a message with J
b1.close()
daemon.wait_gone(b1_end)
check("the exploit's hang-up", {fd: t for fd, t in before.items() if t != b1_end},
      daemon.fds())
b3 = nobody()
b3.register(other)                 # would land at J after the double close
with open(golden, "rb") as f:
    want = f.read()
bad = 0
for block in range(0, size // w.BLOCK, 16):
    got = r.read(handle, block, 16)
    for i, data in enumerate(got):
        off = (block + i) * w.BLOCK
        if data is None or data != want[off:off + w.BLOCK]:
            bad += 1
if bad:
    sys.exit("FAIL: %d of %d blocks of root's layer read back wrong" % (bad, size // w.BLOCK))
print("ok: root read all %d blocks of its layer back right" % (size // w.BLOCK))
b3.close()
r.close()
