#!/usr/bin/python3
"""Crash torture (invariant 2 of docs/ARCHITECTURE.md §7), through isocache-nbd or
isocache-fuse.

A writer sends random 4 KiB-aligned writes, flushes and durable writes (FUA
over NBD, O_DSYNC-style fsync through FUSE) to a vdisk (a linked clone, so
copy-on-write is exercised) while the server is killed with SIGKILL at
random moments. After each kill the server is restarted and every block is
checked: it reads as the contents it had at the last completed flush, or as
one of the writes sent since — never anything else, never a mix. Every
block's contents carry (write id, block number) and a fill, so a torn or
misplaced block is caught.

    crash.py nbd|fuse BINARY STORE_DIR WORKDIR KILLS SEED
    crash.py base FILE          (write the base image the check expects)
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time

BLOCK = 4096
BLOCKS = 1024  # 4 MiB vdisk


def content(wid, blk):
    head = wid.to_bytes(8, "little") + blk.to_bytes(8, "little")
    fill = bytes(((wid * 131 + blk * 7 + i) & 0xFF) for i in range(16))
    return head + fill * ((BLOCK - 16) // 16)


def decode(data, blk):
    wid = int.from_bytes(data[:8], "little")
    if data != content(wid, blk):
        return None
    return wid


def wait_for(path, proc, what):
    for _ in range(500):
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return
        if proc.poll() is not None:
            raise SystemExit(f"FAIL: {what} exited with {proc.returncode}")
        time.sleep(0.02)
    raise SystemExit(f"FAIL: {what} did not start")


class NbdFrontEnd:
    """isocache-nbd on a Unix socket, driven with libnbd."""
    name = "isocache-nbd"
    Error = None

    def __init__(self, binary, work, env):
        import nbd
        self.nbd = nbd
        NbdFrontEnd.Error = nbd.Error
        self.binary, self.env = binary, env
        self.sock = os.path.join(work, "nbd.sock")
        self.pidfile = os.path.join(work, "nbd.pid")

    def start(self):
        for p in (self.sock, self.pidfile):
            if os.path.exists(p):
                os.unlink(p)
        self.proc = subprocess.Popen([self.binary, "-t", "-k", self.sock,
                                      "--pid-file", self.pidfile, "vm"], env=self.env)
        wait_for(self.pidfile, self.proc, self.name)
        self.h = self.nbd.NBD()
        self.h.connect_unix(self.sock)

    def pread(self, off):
        return self.h.pread(BLOCK, off)

    def pwrite(self, data, off, durable):
        self.h.pwrite(data, off, self.nbd.CMD_FLAG_FUA if durable else 0)

    def flush(self):
        self.h.flush()

    def after_kill(self):
        self.proc.wait()
        del self.h

    def stop(self):
        self.h.shutdown()
        self.proc.terminate()
        if self.proc.wait(timeout=30) != 0:
            raise SystemExit(f"FAIL: {self.name} exited {self.proc.returncode} on SIGTERM")


class FuseFrontEnd:
    """isocache-fuse, driven with plain file I/O on MNT/vm (direct_io, so
    every read and write crosses FUSE)."""
    name = "isocache-fuse"
    Error = OSError

    def __init__(self, binary, work, env):
        self.binary, self.env = binary, env
        self.mnt = os.path.join(work, "mnt")
        self.pidfile = os.path.join(work, "fuse.pid")
        os.makedirs(self.mnt, exist_ok=True)

    def start(self):
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        self.proc = subprocess.Popen([self.binary, "-f", "-o", "direct_io",
                                      "--pid-file", self.pidfile, self.mnt], env=self.env)
        wait_for(self.pidfile, self.proc, self.name)
        self.fd = os.open(os.path.join(self.mnt, "vm"), os.O_RDWR)

    def pread(self, off):
        return os.pread(self.fd, BLOCK, off)

    def pwrite(self, data, off, durable):
        if os.pwrite(self.fd, data, off) != len(data):
            raise OSError("short write")
        if durable:
            os.fdatasync(self.fd)

    def flush(self):
        os.fsync(self.fd)

    def after_kill(self):
        self.proc.wait()
        try:
            os.close(self.fd)
        except OSError:
            pass
        # The dead server leaves the mount point "transport endpoint not
        # connected": a lazy unmount recovers it, as an operator would.
        subprocess.run(["fusermount3", "-u", "-z", self.mnt], check=False)

    def stop(self):
        os.close(self.fd)
        subprocess.run(["fusermount3", "-u", self.mnt], check=True)
        if self.proc.wait(timeout=30) != 0:
            raise SystemExit(f"FAIL: {self.name} exited {self.proc.returncode} on unmount")


def torture(fe, kills, seed):
    rng = random.Random(seed)
    print(f"crash: {fe.name}, seed {seed}, {kills} kill points", flush=True)
    # The durable state: per block, the set of contents it may hold now.
    # After a completed flush the set shrinks to the one value written last.
    possible = [{0} for _ in range(BLOCKS)]  # write id 0 = the base image
    last = [0] * BLOCKS
    wid = 0

    def start_and_check(when):
        fe.start()
        for b in range(BLOCKS):
            got = decode(fe.pread(b * BLOCK), b)
            if got is None or got not in possible[b]:
                raise SystemExit(f"FAIL: {when}: block {b} reads write {got}, "
                                 f"expected one of {sorted(possible[b])} (seed {seed})")
            possible[b] = {got}
            last[b] = got

    for k in range(kills):
        start_and_check(f"after kill {k}")
        # Kill the server at a random moment of the next burst of writes.
        pid = fe.proc.pid
        killer = threading.Timer(rng.uniform(0.005, 0.15), lambda: os.kill(pid, signal.SIGKILL))
        killer.start()
        try:
            while True:
                op = rng.random()
                if op < 0.1:
                    fe.flush()
                    possible = [{last[b]} for b in range(BLOCKS)]
                    continue
                start_b = rng.randrange(BLOCKS)
                n = min(rng.randint(1, 32), BLOCKS - start_b)
                wid += 1
                data = b"".join(content(wid, start_b + i) for i in range(n))
                for i in range(n):
                    possible[start_b + i].add(wid)
                durable = op < 0.2
                fe.pwrite(data, start_b * BLOCK, durable)
                for i in range(n):
                    last[start_b + i] = wid
                    if durable:
                        possible[start_b + i] = {wid}
        except fe.Error:
            pass  # the server died under us: that is the point
        killer.join()
        fe.after_kill()

    start_and_check("final check")
    fe.stop()
    print(f"crash: {fe.name}: {kills} kill points survived, {wid} writes sent", flush=True)


def main():
    if sys.argv[1] == "base":
        with open(sys.argv[2], "wb") as f:
            for b in range(BLOCKS):
                f.write(content(0, b))
        return
    kind, binary, store, work, kills, seed = sys.argv[1:7]
    env = dict(os.environ, ISOCACHE_STORE=store)
    fe = (NbdFrontEnd if kind == "nbd" else FuseFrontEnd)(binary, work, env)
    try:
        torture(fe, int(kills), int(seed))
    finally:
        # A failed check leaves the server running: stop it (the shell's
        # cleanup then unmounts what FUSE leaves behind).
        proc = getattr(fe, "proc", None)
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
