#!/usr/bin/python3
"""The client of the fault tests (fault-eio.sh, fault-enospc.sh).

    fault-client.py SOCKET STATE run OPS SEED MAXBLOCKS ERRNOS
    fault-client.py SOCKET STATE verify

run sends OPS random requests to the export on the Unix socket SOCKET:
writes of 1 to MAXBLOCKS 4 KiB blocks (every tenth with FUA), flushes and
reads. A request may fail only with one of ERRNOS (comma-separated names,
or "none"); the server must keep answering. Per block, STATE (JSON) keeps
the contents it may hold: the last write that succeeded, plus any failed
write since (a failed write may have landed or not, never anything else).
Every successful read is checked against it. verify reads the whole export,
every read must succeed, and every block must be one of its possibilities;
then it flushes, which must succeed too.
Block contents are those of tests/torture/crash.py; 0 stands for zeroes.
"""
import collections
import errno
import importlib.util
import json
import os
import random
import sys

import nbd

spec = importlib.util.spec_from_file_location(
    "crash", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../torture/crash.py"))
crash = importlib.util.module_from_spec(spec)
spec.loader.exec_module(crash)
BLOCK, content, decode = crash.BLOCK, crash.content, crash.decode
CHUNK = 64  # blocks per read
ZERO = bytes(BLOCK)


def check_read(possible, data, first, where):
    for i in range(len(data) // BLOCK):
        b = first + i
        blk = data[i * BLOCK:(i + 1) * BLOCK]
        got = 0 if blk == ZERO else decode(blk, b)
        if got is None or got not in possible[b]:
            raise SystemExit(f"FAIL: {where}: block {b} reads write {got}, "
                             f"expected one of {sorted(possible[b])}")
        possible[b] = {got}  # once read, a block stays as it is


def run(h, possible, ops, seed, maxblocks, allowed):
    rng = random.Random(seed)
    blocks = len(possible)
    done = {k: [0, 0] for k in ("write", "flush", "read")}  # [succeeded, failed]
    errnos = collections.Counter()
    served_after_fault = 0
    wid = max(max(p) for p in possible)
    for _ in range(ops):
        op = rng.random()
        first = rng.randrange(blocks)
        n = min(rng.randint(1, maxblocks), blocks - first)
        try:
            if op < 0.15:
                kind = "flush"
                h.flush()
            elif op < 0.35:
                kind = "read"
                check_read(possible, h.pread(n * BLOCK, first * BLOCK), first, "read")
            else:
                kind = "write"
                wid += 1
                for b in range(first, first + n):
                    possible[b].add(wid)
                h.pwrite(b"".join(content(wid, b) for b in range(first, first + n)),
                         first * BLOCK, nbd.CMD_FLAG_FUA if op > 0.9 else 0)
                for b in range(first, first + n):
                    possible[b] = {wid}
        except nbd.Error as e:
            name = errno.errorcode.get(e.errno, str(e.errno))
            if name not in allowed:
                raise SystemExit(f"FAIL: {kind} failed with {name}, only {allowed} may: {e}")
            done[kind][1] += 1
            errnos[name] += 1
            continue
        done[kind][0] += 1
        if sum(f for _, f in done.values()):
            served_after_fault += 1
    print("fault-client: " + ", ".join(f"{k} {s} ok {f} failed" for k, (s, f) in done.items())
          + f"; {served_after_fault} requests served after the first fault; errors "
          + (" ".join(f"{k}={v}" for k, v in sorted(errnos.items())) or "none"), flush=True)
    if errnos and not served_after_fault:
        raise SystemExit("FAIL: the server answered nothing after the first fault")


def main():
    sock, state, mode = sys.argv[1:4]
    h = nbd.NBD()
    h.connect_unix(sock)
    blocks = h.get_size() // BLOCK
    if os.path.exists(state):
        with open(state) as f:
            possible = [set(p) for p in json.load(f)]
    else:
        possible = [{0} for _ in range(blocks)]
    if mode == "run":
        ops, seed, maxblocks = (int(a) for a in sys.argv[4:7])
        allowed = sys.argv[7].split(",")
        run(h, possible, ops, seed, maxblocks, allowed)
    else:
        for first in range(0, blocks, CHUNK):
            n = min(CHUNK, blocks - first)
            check_read(possible, h.pread(n * BLOCK, first * BLOCK), first, "verify")
        h.flush()
        print(f"fault-client: all {blocks} blocks verified", flush=True)
    h.shutdown()
    with open(state, "w") as f:
        json.dump([sorted(p) for p in possible], f)


if __name__ == "__main__":
    main()
