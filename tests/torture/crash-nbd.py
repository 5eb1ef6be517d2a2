#!/usr/bin/python3
"""Crash torture through isocache-nbd (invariant 2 of DESIGN.md §7).

A writer sends random 4 KiB-aligned writes, flushes and FUA writes to a
vdisk (a linked clone, so copy-on-write is exercised) while the server is
killed with SIGKILL at random moments. After each kill the server is
restarted and every block is checked: a block reads as the contents it had
at the last completed flush, or as one of the writes sent since — never
anything else, never a mix. Every block's contents carry (write id, block
number) and a checksum-like fill, so a torn or misplaced block is caught.

    crash-nbd.py NBD_BINARY STORE_DIR WORKDIR KILLS SEED
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time

import nbd

BLOCK = 4096
BLOCKS = 1024  # 4 MiB vdisk


def content(wid, blk):
    head = wid.to_bytes(8, "little") + blk.to_bytes(8, "little")
    fill = bytes(((wid * 131 + blk * 7 + i) & 0xFF) for i in range(16))
    return head + fill * ((BLOCK - 16) // 16)


def decode(data, blk):
    wid = int.from_bytes(data[:8], "little")
    if data == bytes(BLOCK):
        return "zero"
    if data != content(wid, blk):
        return None
    return wid


def main():
    nbd_bin, store, work, kills, seed = sys.argv[1:6]
    kills, seed = int(kills), int(seed)
    rng = random.Random(seed)
    print(f"crash-nbd: seed {seed}, {kills} kill points", flush=True)
    sock = os.path.join(work, "nbd.sock")
    pidfile = os.path.join(work, "nbd.pid")
    env = dict(os.environ, ISOCACHE_STORE=store)

    # The durable state: per block, the set of contents it may hold now.
    # After a completed flush the set shrinks to the one value written last.
    possible = [{0} for _ in range(BLOCKS)]  # write id 0 = the base image
    last = [0] * BLOCKS
    wid = 0
    survived = 0

    def start():
        for p in (sock, pidfile):
            if os.path.exists(p):
                os.unlink(p)
        proc = subprocess.Popen([nbd_bin, "-t", "-k", sock, "--pid-file", pidfile, "vm"],
                                env=env)
        for _ in range(300):
            if os.path.exists(pidfile) and os.path.getsize(pidfile) > 0:
                return proc
            if proc.poll() is not None:
                raise SystemExit(f"FAIL: isocache-nbd exited with {proc.returncode}")
            time.sleep(0.02)
        raise SystemExit("FAIL: isocache-nbd did not start")

    def connect_and_check(when):
        """Restart the server and check every block against what may be there."""
        proc = start()
        h = nbd.NBD()
        h.connect_unix(sock)
        for b in range(BLOCKS):
            got = decode(h.pread(BLOCK, b * BLOCK), b)
            if got is None or got == "zero" or got not in possible[b]:
                raise SystemExit(f"FAIL: {when}: block {b} reads write {got}, "
                                 f"expected one of {sorted(possible[b])} (seed {seed})")
            possible[b] = {got}
            last[b] = got
        return proc, h

    for k in range(kills):
        proc, h = connect_and_check(f"after kill {k}")
        survived += 1 if k else 0

        # Kill the server at a random moment of the next burst of writes.
        delay = rng.uniform(0.005, 0.15)
        killer = threading.Timer(delay, lambda: os.kill(proc.pid, signal.SIGKILL))
        killer.start()
        try:
            while True:
                op = rng.random()
                if op < 0.1:
                    h.flush()
                    possible = [{last[b]} for b in range(BLOCKS)]
                    continue
                start_b = rng.randrange(BLOCKS)
                n = min(rng.randint(1, 32), BLOCKS - start_b)
                wid += 1
                data = b"".join(content(wid, start_b + i) for i in range(n))
                for i in range(n):
                    possible[start_b + i].add(wid)
                fua = nbd.CMD_FLAG_FUA if op < 0.2 else 0
                h.pwrite(data, start_b * BLOCK, fua)
                for i in range(n):
                    last[start_b + i] = wid
                    if fua:
                        # Durable: this write is now the only possibility.
                        possible[start_b + i] = {wid}
        except nbd.Error:
            pass  # the server died under us: that is the point
        killer.join()
        proc.wait()
        del h

    proc, h = connect_and_check("final check")
    h.shutdown()
    proc.terminate()
    if proc.wait(timeout=30) != 0:
        raise SystemExit(f"FAIL: isocache-nbd exited {proc.returncode} on SIGTERM")
    print(f"crash-nbd: {survived + 1} kill points survived, {wid} writes sent", flush=True)


if __name__ == "__main__":
    main()
