#!/usr/bin/python3
"""Power-cut simulation through isocache-nbd (invariant 2 of docs/ARCHITECTURE.md §7).

Phase 1: isocache-nbd serves vdisk "vm" under the power-cut shim
(libpcshim.so), which journals every write and sync to the store's files,
while one client sends random writes, write-zeroes, flushes and FUA. Each request
notes the journal's length when it was sent and when it was answered.

Phase 2: for random cut points in the journal, pc-replay rebuilds the store
from a copy taken before phase 1 as a power cut right there would leave it
(unsynced writes dropped, or with --keep kept page by page at random), and
every block of the rebuilt vdisk must read as the contents it had at the
last flush answered before the cut, or as a write sent before the cut;
`isocache-admin check` must pass. The block contents are those of tests/torture/crash.py.

    powercut-nbd.py ADMIN NBD SHIM REPLAY WORKDIR OPS CUTS SEED [NBD_OPTION...]

NBD_OPTIONs go to isocache-nbd (--cache=none: O_DIRECT layer writes).

The store is made in WORKDIR/store (16 KiB clusters), with the vdisk "vm"
a linked clone of a base whose block b is content(0, b).
"""
import importlib.util
import os
import random
import subprocess
import sys

import nbd

spec = importlib.util.spec_from_file_location(
    "crash", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../torture/crash.py"))
crash = importlib.util.module_from_spec(spec)
spec.loader.exec_module(crash)
BLOCK, BLOCKS, content, decode = crash.BLOCK, crash.BLOCKS, crash.content, crash.decode
ZERO = bytes(BLOCK)


def run(*args, **kw):
    return subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True, **kw).stdout


def record(nbd_cmd, shim, work, ops, rng):
    """Phase 1: drive the server under the shim; return the request log."""
    store = os.path.join(work, "store")
    journal = os.path.join(work, "journal")
    sock = os.path.join(work, "nbd.sock")
    pidfile = os.path.join(work, "nbd.pid")
    env = dict(os.environ, LD_PRELOAD=shim, PC_JOURNAL=journal, PC_ROOT=store)
    proc = subprocess.Popen(nbd_cmd + ["--store", store, "--no-cache", "-k", sock, "--pid-file", pidfile, "vm"],
                            env=env)
    crash.wait_for(pidfile, proc, "isocache-nbd under the shim")
    h = nbd.NBD()
    h.connect_unix(sock)
    clock = lambda: os.stat(journal).st_size if os.path.exists(journal) else 0
    log = []  # (write id, "zero" or None for a flush, first block, blocks, fua, sent, answered)
    for wid in range(1, ops + 1):
        op = rng.random()
        sent = clock()
        if op < 0.1:
            h.flush()
            log.append((None, 0, 0, False, sent, clock()))
            continue
        first = rng.randrange(BLOCKS)
        n = min(rng.randint(1, 8), BLOCKS - first)
        fua = op < 0.2
        flags = nbd.CMD_FLAG_FUA if fua else 0
        value = "zero" if op > 0.95 else wid
        if value == "zero":
            h.zero(n * BLOCK, first * BLOCK, flags)
        else:
            h.pwrite(b"".join(content(wid, first + i) for i in range(n)), first * BLOCK, flags)
        log.append((value, first, n, fua, sent, clock()))
    h.shutdown()  # the last client gone, the server flushes and exits
    if proc.wait(timeout=30) != 0:
        raise SystemExit(f"FAIL: isocache-nbd under the shim exited {proc.returncode}")
    return log


def possible_at(log, cut):
    """Per block, the write ids ("zero": write-zeroes) a power cut at journal
    offset cut may leave."""
    possible = [{0} for _ in range(BLOCKS)]
    last = [0] * BLOCKS
    for value, first, n, fua, sent, answered in log:
        if sent >= cut:
            break  # sent after the cut: none of it reached the journal
        if value is None:
            if answered <= cut:
                possible = [{last[b]} for b in range(BLOCKS)]
            continue
        for b in range(first, first + n):
            last[b] = value
            possible[b] = {value} if fua and answered <= cut else possible[b] | {value}
    return possible


def check_cut(admin, replay, work, log, n, keep_seed):
    """Rebuild the store as cut after journal record n, and check it."""
    cutdir = os.path.join(work, "cut")
    run("rm", "-rf", cutdir)
    run("cp", "-a", "--sparse=always", os.path.join(work, "base"), cutdir)
    keep = ["-k", str(keep_seed)] if keep_seed is not None else []
    cut = int(run(replay, *keep, os.path.join(work, "journal"), str(n), cutdir))
    where = f"cut after record {n} (offset {cut}, keep seed {keep_seed})"
    res = subprocess.run([admin, "--store", cutdir, "check"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    if res.returncode:
        raise SystemExit(f"FAIL: {where}: isocache-admin check:\n{res.stdout}")
    image = os.path.join(work, "cut.raw")
    run(admin, "--store", cutdir, "export", "--force", "vm", image)
    possible = possible_at(log, cut)
    with open(image, "rb") as f:
        data = f.read()
    for b in range(BLOCKS):
        blk = data[b * BLOCK:(b + 1) * BLOCK]
        got = "zero" if blk == ZERO else decode(blk, b)
        if got is None or got not in possible[b]:
            raise SystemExit(f"FAIL: {where}: block {b} reads write {got}, "
                             f"expected one of {sorted(possible[b], key=str)}")
    return sum(len(p) > 1 for p in possible)


def main():
    admin, nbd_bin, shim, replay, work, ops, cuts, seed = sys.argv[1:9]
    nbd_cmd = [nbd_bin] + sys.argv[9:]
    ops, cuts, seed = int(ops), int(cuts), int(seed)
    rng = random.Random(seed)
    print(f"powercut-nbd: seed {seed}, {ops} requests, {cuts} cut points per mode, "
          f"isocache-nbd {' '.join(sys.argv[9:]) or 'with its defaults'}", flush=True)
    store = os.path.join(work, "store")
    base = os.path.join(work, "base.raw")
    with open(base, "wb") as f:
        for b in range(BLOCKS):
            f.write(content(0, b))
    run(admin, "--store", store, "init", "--cluster-size", "16K")
    run(admin, "--store", store, "import", base, "base")
    run(admin, "--store", store, "snap", "base@gold")
    run(admin, "--store", store, "clone", "base@gold", "vm")
    run("cp", "-a", "--sparse=always", store, os.path.join(work, "base"))
    log = record(nbd_cmd, shim, work, ops, rng)
    records = int(run(replay, os.path.join(work, "journal")))
    syncs = sum(1 for e in log if e[0] is None or e[3])
    print(f"powercut-nbd: journal of {records} records, {syncs} flushes and FUA writes",
          flush=True)
    undecided = 0
    for keep in (False, True):
        for _ in range(cuts):
            undecided += check_cut(admin, replay, work, log, rng.randint(1, records),
                                   rng.randrange(1 << 32) if keep else None)
    print(f"powercut-nbd: {2 * cuts} cut points survived (dropped and kept at random), "
          f"{undecided} block checks allowed old or new", flush=True)


if __name__ == "__main__":
    main()
