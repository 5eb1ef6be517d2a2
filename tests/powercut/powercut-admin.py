#!/usr/bin/python3
"""Power cuts while isocache-admin makes layer files (issue 13 item 10).

Phase 1: a store with a golden image holding data is copied aside; then
snap, clone, import, flatten, a second snap and clone, and rm of a clone
run one after the other under the power-cut shim (libpcshim.so), which
journals every write, sync, file creation, mkdir, unlink, rename and
directory fsync under the store.

Phase 2: for cut points in the journal (every record when there are at
most CUTS, else CUTS spread evenly, each once dropping and once keeping at
random what was not durable), pc-replay rebuilds the store from the copy
as the cut would leave it, and then:
- every layer file the metadata names exists and is not truncated
  (`isocache-admin check` reports no missing or truncated layer; a layer
  file no record owns, or data no map references, is allowed: space a cut
  leaked, not data lost);
- every image `isocache-admin ls` lists exports, and each image that
  existed before phase 1 reads back its contents.

    powercut-admin.py ADMIN SHIM REPLAY WORKDIR CUTS SEED
"""
import json
import os
import random
import subprocess
import sys

# Space a cut leaked (a file or data the metadata does not name yet), and
# what the model leaves out (a frozen layer's xattr and mode).
ALLOWED = ("a file no layer owns", "not referenced by its map", "lacks its", "is writable")


def run(*args, **kw):
    return subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True, **kw).stdout


def admin(adm, store, *args, env=None, check=True):
    return subprocess.run([adm, "--store", store, *args], env=env, check=check,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def export(adm, store, image, out):
    admin(adm, store, "export", image, out)
    with open(out, "rb") as f:
        data = f.read()
    os.unlink(out)
    return data


def main():
    adm, shim, replay, work, cuts, seed = sys.argv[1:7]
    cuts, rng = int(cuts), random.Random(int(seed))
    store, base = os.path.join(work, "store"), os.path.join(work, "base")
    journal = os.path.join(work, "journal")
    img = os.path.join(work, "img.raw")
    with open(img, "wb") as f:
        f.write(random.Random(1).randbytes(192 << 10))
    admin(adm, store, "init", "--cluster-size", "16K")
    admin(adm, store, "import", img, "gold")
    admin(adm, store, "create", "vm", "--size", "256K")
    run("cp", "-a", "--sparse=always", store, base)
    before = {name: export(adm, base, name, os.path.join(work, "x.raw")) for name in ("gold", "vm")}

    env = dict(os.environ, LD_PRELOAD=shim, PC_JOURNAL=journal, PC_ROOT=store)
    for cmd in (["snap", "gold@v1"], ["clone", "gold@v1", "c1"], ["import", img, "imp"],
                ["flatten", "c1"], ["snap", "c1@s"], ["clone", "c1@s", "c2"], ["rm", "c2"],
                ["snap", "vm@s"]):
        admin(adm, store, *cmd, env=env)
    records = int(run(replay, journal))
    points = list(range(1, records + 1))
    if len(points) > cuts:
        points = sorted(rng.sample(points, cuts))
    print(f"powercut-admin: {records} journal records, {len(points)} cut points, seed {seed}",
          flush=True)
    checked = 0
    for n in points:
        for keep in (None, rng.randrange(1 << 30)):
            where = f"cut after record {n} of {records}" + (f", -k {keep}" if keep is not None else "")
            cutdir = os.path.join(work, "cut")
            subprocess.run(["chattr", "-R", "-i", cutdir], stderr=subprocess.DEVNULL)
            run("rm", "-rf", cutdir)
            run("cp", "-a", "--sparse=always", base, cutdir)
            run(replay, *(["-k", str(keep)] if keep is not None else []), journal, str(n), cutdir)
            res = admin(adm, cutdir, "check", check=False)
            bad = [l for l in res.stdout.splitlines()
                   if l.startswith("problem:") and not any(a in l for a in ALLOWED)]
            if res.returncode not in (0, 1) or bad or (res.returncode and not res.stdout):
                raise SystemExit(f"FAIL: {where}: isocache-admin check (exit {res.returncode}):\n"
                                 f"{res.stdout}{res.stderr}")
            for item in json.loads(admin(adm, cutdir, "ls", "--json").stdout):
                data = export(adm, cutdir, item["name"], os.path.join(work, "x.raw"))
                if item["name"] in before and data != before[item["name"]]:
                    raise SystemExit(f"FAIL: {where}: {item['name']} changed")
            checked += 1
    subprocess.run(["chattr", "-R", "-i", work], stderr=subprocess.DEVNULL)
    print(f"powercut-admin: {checked} cuts survived")


main()
