"""isocached's wire protocol, spoken by hand for the hostile-session tests
(cached-fd-reuse.py). The client library never sends what these tests
need: a request whose reply is never read, a hang-up with a reply queued,
descriptors on messages that take none, more descriptors than fit.

The format is docs/CACHED-PROTOCOL.md (include/isocache/cached_proto.h).
Also the daemon's descriptor table, read through /proc, for fd accounting.
"""
import fcntl
import mmap
import os
import select
import socket
import struct
import time

MAGIC, VERSION = 0x44434349, 6
HELLO, REGISTER, READ, PREFETCH, STATS, DROP, BYE = range(1, 8)
REPLY = 0x8000
F_WAIT = 1
BLOCK = 4096
NSTATS = 40
HANDLE_ALL = 0xFFFFFFFF
# Request bodies (after the 24-byte header), as struct formats.
BODY = {HELLO: "<II", REGISTER: "<", READ: "<IIIQ", PREFETCH: "<IIQ", STATS: "<I", DROP: "<I",
        BYE: "<"}
REPLY_BODY = {HELLO: "<iII", REGISTER: "<iIQ16s", READ: "<iQ", PREFETCH: "<iQ",
              STATS: "<i%dQ" % NSTATS, DROP: "<iQ"}


def encode(mtype, *fields, msg_id=1, flags=0):
    body = struct.pack(BODY[mtype], *fields)
    return struct.pack("<IHHIIQ", MAGIC, VERSION, mtype, 24 + len(body), flags, msg_id) + body


def until(what, cond, timeout=10):
    """Poll cond() until true, failing after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("%s: not within %d s" % (what, timeout))
        time.sleep(0.01)


def decode_reply(data, mtype):
    magic, version, rtype, length, _, _ = struct.unpack_from("<IHHIIQ", data)
    if magic != MAGIC or rtype != mtype | REPLY or length != len(data):
        raise ValueError("not a reply to type %d: %r" % (mtype, data[:24]))
    return struct.unpack_from(REPLY_BODY[mtype], data, 24)


class Session:
    """One connection to the daemon. The socket may come from elsewhere
    (connected by a process of another uid and passed here)."""

    def __init__(self, path=None, sock=None):
        self.sock = sock or socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(10)
        if path:
            self.sock.connect(path)
        self.next_id = 0

    def send(self, mtype, *fields, fds=(), flags=0):
        self.next_id += 1
        self.sock.sendmsg([encode(mtype, *fields, msg_id=self.next_id, flags=flags)],
                          [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("%di" % len(fds),
                                                                              *fds))]
                          if fds else [])

    def reply(self, mtype):
        data = self.sock.recv(4096)
        if not data:
            raise ConnectionResetError("the daemon ended the session")
        return decode_reply(data, mtype)

    def call(self, mtype, *fields, fds=()):
        self.send(mtype, *fields, fds=fds)
        return self.reply(mtype)

    def hello(self, nblocks=16):
        """HELLO with a sealed buffer of one slot of nblocks blocks; the
        buffer stays mapped here for READ."""
        mfd = os.memfd_create("cached-wire", os.MFD_ALLOW_SEALING)
        os.ftruncate(mfd, nblocks * BLOCK)
        fcntl.fcntl(mfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
        try:
            status, _, _ = self.call(HELLO, 1, nblocks, fds=[mfd])
            self.buf = mmap.mmap(mfd, nblocks * BLOCK)
        finally:
            os.close(mfd)
        if status:
            raise OSError(-status, "HELLO: " + os.strerror(-status))

    def register(self, path):
        fd = os.open(path, os.O_RDONLY)
        try:
            status, handle, size, _ = self.call(REGISTER, fds=[fd])
        finally:
            os.close(fd)
        if status:
            raise OSError(-status, "REGISTER %s: %s" % (path, os.strerror(-status)))
        return handle, size

    def read(self, handle, block, nblocks):
        """READ with F_WAIT; the blocks served, None for a block not."""
        self.send(READ, handle, 0, nblocks, block, flags=F_WAIT)
        status, hits = self.reply(READ)
        if status:
            raise OSError(-status, "READ: " + os.strerror(-status))
        return [bytes(self.buf[i * BLOCK:(i + 1) * BLOCK]) if hits >> i & 1 else None
                for i in range(nblocks)]

    def wait_reply_queued(self, timeout=10):
        """Until a reply waits unread in this socket."""
        if not select.select([self.sock], [], [], timeout)[0]:
            raise TimeoutError("no reply within %d s" % timeout)

    def close(self):
        self.sock.close()


def connect_as(uid, path):
    """A socket connected to path by a child running as uid (and its
    primary group), so the daemon sees uid as the session's peer."""
    parent, child = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(path)
            socket.send_fds(child, [b"s"], [s.fileno()])
            os._exit(0)
        except BaseException:
            os._exit(1)
    child.close()
    _, fds, _, _ = socket.recv_fds(parent, 1, 1)
    parent.close()
    if os.waitpid(pid, 0)[1] != 0 or len(fds) != 1:
        raise OSError("uid %d could not connect to %s" % (uid, path))
    return socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=fds[0])


def hello_as(path, uid=None):
    """A session that said HELLO, of uid (connected by a child running as
    it) or of this process."""
    s = Session(sock=connect_as(uid, path)) if uid is not None else Session(path)
    s.hello()
    return s


class Daemon:
    """The daemon's descriptor table, through /proc/PID/fd."""

    def __init__(self, pid):
        self.pid = pid

    def fds(self):
        table = {}
        for name in os.listdir("/proc/%d/fd" % self.pid):
            try:
                table[int(name)] = os.readlink("/proc/%d/fd/%s" % (self.pid, name))
            except FileNotFoundError:
                pass
        return table

    def sockets(self):
        return {target for target in self.fds().values() if target.startswith("socket:")}

    def session_of(self, connect):
        """Run connect(), which opens a session and says HELLO; return the
        session and the daemon's end of its socket, as socket:[INODE]."""
        before = self.sockets()
        s = connect()
        new = self.sockets() - before
        if len(new) != 1:
            raise RuntimeError("cannot tell the daemon's socket of a session: %r" % new)
        return s, new.pop()

    def wait_gone(self, sock_name):
        """Until the daemon has closed its end of a session."""
        until("isocached's close of " + sock_name,
              lambda: sock_name not in self.fds().values())
