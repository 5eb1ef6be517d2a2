#!/usr/bin/env python3
"""Run an isocache-admin command and check the progress it reports.

admin-progress.py bar [--long] [--none] OUT -- CMD...
    CMD's stderr is a pseudo-terminal (its stdout goes to OUT): the bar
    "    (P/100%)" must be redrawn with \\r, never go back, end at 100.00
    followed by a newline, and be redrawn at most five times a second.
    --none: there must be no bar at all.
admin-progress.py json [--long] TOTAL -- CMD...
    CMD's stdout is a pipe: every line a JSON object, "progress" events
    whose done never goes back and whose total is TOTAL, then one "done"
    event at 100% with done == total, at most five lines a second.

--long[=P]: the caller made the work take well over a second (its source
reads through a delay filter), so it must have been redrawn on the way:
an interim value above the first and below P% (default 100).

Prints what it saw (the number of redraws or lines and the time taken);
exits 1 with the reason on a failed check, CMD's own status otherwise."""
import json
import os
import re
import select
import subprocess
import sys
import time

DEADLINE = 120  # seconds for the whole command
RATE = 5  # redraws a second, at most (admin/progress.c)


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run(cmd, read_fd, proc):
    """Read read_fd until EOF; returns (data, seconds, exit status)."""
    data = b""
    start = time.monotonic()
    while True:
        left = start + DEADLINE - time.monotonic()
        if left <= 0:
            proc.kill()
            proc.wait()
            fail("%s did not finish within %d s" % (" ".join(cmd), DEADLINE))
        ready, _, _ = select.select([read_fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:  # EIO: the terminal's last writer is gone
            chunk = b""
        if not chunk:
            break
        data += chunk
    rc = proc.wait()
    return data, time.monotonic() - start, rc


def interim_below(args):
    """--long[=P]: P (100 by default); None without --long."""
    for a in args:
        if a == "--long" or a.startswith("--long="):
            return float(a[len("--long="):]) if "=" in a else 100.0
    return None


def check_bar(args, cmd):
    below = interim_below(args)
    none = "--none" in args
    out = [a for a in args if not a.startswith("--")][0]
    master, slave = os.openpty()
    with open(out, "wb") as stdout:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=slave)
    os.close(slave)
    data, secs, rc = run(cmd, master, proc)
    os.close(master)
    text = data.decode(errors="replace")
    draws = [float(v) for v in re.findall(r"\r    \((\d+\.\d\d)/100%\)", text)]
    print("bar: %d redraws in %.2f s: %s" % (len(draws), secs, draws[:3] + ["..."] + draws[-2:]
                                           if len(draws) > 5 else draws))
    if none:
        if "/100%)" in text:
            fail("a bar on the terminal without -p: %r" % text[:200])
        return rc
    if rc != 0:
        fail("%s exited %d: %s" % (" ".join(cmd), rc, text))
    if not draws:
        fail("no bar on the terminal: %r" % text[:200])
    if any(b < a for a, b in zip(draws, draws[1:])):
        fail("the bar went back: %s" % draws)
    if draws[-1] != 100.0 or not re.search(r"\(100\.00/100%\)\r?\n", text):
        fail("the bar did not end at 100%% with a newline: %r" % text[-80:])
    if len(draws) > secs * RATE + 3:
        fail("%d redraws in %.2f s: more than %d a second" % (len(draws), secs, RATE))
    if below and not any(draws[0] < d < below for d in draws):
        fail("no redraw below %g%% while the work went on: %s" % (below, draws))
    with open(out, "rb") as f:
        if b"/100%)" in f.read():
            fail("the bar went to stdout")
    return rc


def check_json(args, cmd):
    below = interim_below(args)
    total = int([a for a in args if not a.startswith("--")][0])
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    data, secs, rc = run(cmd, proc.stdout.fileno(), proc)
    proc.stdout.close()
    if rc != 0:
        fail("%s exited %d" % (" ".join(cmd), rc))
    lines = data.decode().splitlines()
    try:
        events = [json.loads(line) for line in lines]
    except ValueError as e:
        fail("not a JSON line (%s) in %r" % (e, lines))
    print("json: %d lines in %.2f s, last %s" % (len(events), secs, lines[-1] if lines else None))
    if not events or events[-1].get("event") != "done":
        fail("the last line is not the done event: %r" % lines[-1:])
    if any(e.get("event") != "progress" for e in events[:-1]):
        fail("events other than progress before done: %r" % lines)
    for e in events:
        if e["total"] != total:
            fail("total %d, the image is %d bytes: %r" % (e["total"], total, e))
        if not 0 <= e["done"] <= e["total"]:
            fail("done outside 0..total: %r" % e)
        if abs(e["percent"] - 100.0 * e["done"] / e["total"]) > 0.01:
            fail("percent does not match done/total: %r" % e)
    if any(b["done"] < a["done"] for a, b in zip(events, events[1:])):
        fail("done went back: %r" % lines)
    last = events[-1]
    if last["done"] != total or last["percent"] != 100 or "elapsed_ms" not in last:
        fail("the done event is not at 100%%: %r" % last)
    if len(events) > secs * RATE + 3:
        fail("%d lines in %.2f s: more than %d a second" % (len(events), secs, RATE))
    if below and not any(0 < e["percent"] < below for e in events[:-1]):
        fail("no progress line below %g%% while the work went on: %r" % (below, lines))
    return rc


def main():
    argv = sys.argv[1:]
    if len(argv) < 4 or "--" not in argv or argv[0] not in ("bar", "json"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sep = argv.index("--")
    check = check_bar if argv[0] == "bar" else check_json
    sys.exit(check(argv[1:sep], argv[sep + 1:]))


if __name__ == "__main__":
    main()
