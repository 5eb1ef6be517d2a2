#!/usr/bin/env python3
"""Damage a store's meta.mdb at random and run every admin command on it.

Usage: fault-meta-damage.py ADMIN WORKDIR SEEDS SECONDS

For each seed (the regressions below, then 1..SEEDS until SECONDS have
passed), a copy of a store with golden images, snapshots and linked clones
gets 1-8 damaged bytes in its metadata file, mostly in the headers and
nodes of the pages its trees use; then each command below runs on its own
copy. Counted: crashes (killed by a signal, or a hang
past 10 s) and silent failures (a non-zero exit with nothing on stderr).
Both must be zero. Exit status 1 otherwise.
"""
import os
import random
import shutil
import struct
import subprocess
import sys
import time

ADMIN, WORK, SEEDS, SECONDS = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
# Seeds that once crashed or failed silently, run first every time: 33
# (a creation time past any calendar crashed `info` in strftime) and 83
# (a missing next_disk_id failed create, snap and clone with no message).
REGRESSIONS = [33, 83]
COMMANDS = [["ls"], ["ls", "--json"], ["info", "c2"], ["tree"], ["check"],
            ["create", "n", "--size", "1M"], ["snap", "c2@x"], ["clone", "gold@v1", "n2"],
            ["rm", "b1"], ["rm", "c2"], ["rm", "base@s"], ["info", "b2"], ["resize", "c1", "2M"], ["flatten", "c2"]]


def admin(store, *args, **kw):
    env = dict(os.environ, ISOCACHE_STORE=store, ISOCACHE_RUN_DIR=store + ".run")
    return subprocess.run([ADMIN, *args], env=env, stdout=subprocess.DEVNULL, **kw)


def make_good(store):
    for c in (["init", "--cluster-size", "4K"], ["create", "gold", "--size", "1M"],
              ["snap", "gold@v1"], ["clone", "gold@v1", "c1"], ["snap", "c1@s"],
              ["clone", "c1@s", "c2"], ["create", "b1", "--size", "1M"]):
        admin(store, *c, check=True)
    # An imported image with data, so the allocation maps have entries.
    img = store + ".img"
    with open(img, "wb") as f:
        f.write(random.Random(0).randbytes(256 << 10))
    admin(store, "import", img, "base", check=True)
    admin(store, "snap", "base@s", check=True)
    admin(store, "clone", "base@s", "b2", check=True)


def damage(good, rng):
    b = bytearray(good)
    psize = struct.unpack_from("<I", b, 40)[0]
    metas = [struct.unpack_from("<QQ", b, i * psize + 136) for i in (0, 1)]
    last = max(metas, key=lambda m: m[1])[0]
    for _ in range(rng.randint(1, 8)):
        if rng.random() < 0.8 and last >= 2:
            # A byte of a page the trees use: its header, its node offsets
            # or its nodes (from the page's "upper" bound to its end).
            page = rng.randrange(2, last + 1) * psize
            upper = struct.unpack_from("<H", b, page + 14)[0]
            if rng.random() < 0.3 or not 16 <= upper < psize:
                o = page + rng.randrange(64)
            else:
                o = page + rng.randrange(upper, psize)
        else:
            o = rng.randrange(len(b))
        if rng.random() < 0.5:
            b[o] = rng.randrange(256)
        else:
            b[o] ^= 1 << rng.randrange(8)
    return bytes(b)


def main():
    good_dir = os.path.join(WORK, "good")
    make_good(good_dir)
    good = open(os.path.join(good_dir, "meta.mdb"), "rb").read()
    crashes = silent = runs = refused = 0
    start = time.monotonic()
    order = REGRESSIONS + [s for s in range(1, SEEDS + 1) if s not in REGRESSIONS]
    done = 0
    for seed in order:
        if done >= len(REGRESSIONS) and time.monotonic() - start >= SECONDS:
            break
        done += 1
        bad = damage(good, random.Random(seed))
        for cmd in COMMANDS:
            store = os.path.join(WORK, f"s{seed}-{runs}")
            shutil.copytree(good_dir, store, symlinks=True)
            with open(os.path.join(store, "meta.mdb"), "wb") as f:
                f.write(bad)
            try:
                p = admin(store, *cmd, stderr=subprocess.PIPE, timeout=10)
                rc, err = p.returncode, p.stderr.decode(errors="replace").strip()
            except subprocess.TimeoutExpired:
                rc, err = "hang", ""
            runs += 1
            what = f"seed {seed}: isocache-admin {' '.join(cmd)}"
            if rc == "hang" or rc < 0:
                crashes += 1
                print(f"CRASH ({rc}) {what}", flush=True)
            elif rc != 0 and not err:
                silent += 1
                print(f"SILENT (exit {rc}) {what}", flush=True)
            elif rc != 0:
                refused += 1
    print(f"{done} seeds, {runs} runs in {time.monotonic() - start:.1f} s: "
          f"{crashes} crashes, {silent} silent failures, {refused} refused with a message")
    return 1 if crashes or silent else 0


sys.exit(main())
