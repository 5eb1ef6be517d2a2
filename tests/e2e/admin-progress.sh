#!/usr/bin/env bash
# Progress of long admin work: with -p, import (raw and qcow2), export,
# flatten, resize, the merge of rm and cache warm draw qemu-img's
# "    (P/100%)" bar on stderr when it is a terminal (a pseudo-terminal
# here), redrawn in place at most five times a second and ended at 100%
# with a newline; nothing when stderr is piped, nor on a terminal without
# -p. With --json they print JSON lines on stdout instead: progress events
# that never go back, then "done" at 100% with total the image's size.
# admin-progress.py runs each command and checks what it printed.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/fuse-functions.bash"
fuse_requires /usr/bin/python3 cmp qemu-img nbdcopy
cd "$TESTDIR"
check() { /usr/bin/python3 "$IC_SRC/tests/e2e/admin-progress.py" "$@"; }

fuse_store
random_image img.raw 96 # 96 MiB, 64 of data
size=$((96 << 20))
# A source that takes over a second to read, whatever the machine: the
# image as a file of a FUSE mount whose every read waits 20 ms (delay
# filter; direct_io, so no read is served from the page cache). import reads
# its 64 MiB of data 1 MiB at a time: at least 64 reads, 1.3 s; qemu-img
# reads a qcow2 in pieces of at most 2 MiB: at least 32 reads, 0.6 s.
$ADMIN import img.raw src
$ADMIN snap src@s
# The same image as a qcow2, whose bytes a vdisk holds as they are, to be
# read through the slow mount too (qemu-img reads it there).
qemu-img convert -f raw -O qcow2 img.raw img.qcow2
truncate -s %512 img.qcow2 # whole sectors
$ADMIN create qc --size "$(stat -c %s img.qcow2)"
$NBD --run 'nbdcopy img.qcow2 "$uri"' qc
$ADMIN snap qc@s
fuse_mount "$TESTDIR/mnt" -r -o direct_io --no-cache --filter delay:read=20ms
slow=$TESTDIR/mnt/src@s

# import -p on a terminal: the bar, redrawn while the copy goes on, ending
# at 100%; the summary on stdout.
check bar --long out.txt -- $ADMIN import -p "$slow" a
grep -q "^imported $slow (raw) as vdisk a: 96 MiB" out.txt ||
	fail "import's summary: $(cat out.txt)"
# The same piped: no progress at all; on a terminal without -p: no bar.
$ADMIN import -p img.raw b 2>err.txt >out.txt
[ ! -s err.txt ] || fail "import -p piped printed on stderr: $(od -c err.txt | head -3)"
grep -q "^imported img.raw" out.txt || fail "import -p piped: $(cat out.txt)"
check bar --none out.txt -- $ADMIN import img.raw c
# --json: the lines, and nothing else on stdout (the done event is the summary).
check json --long $size -- $ADMIN import --json "$slow" d
$ADMIN export d d.raw
cmp img.raw d.raw || fail "import --json made a vdisk that differs from the image"
# A qcow2 is gone through twice: qemu-img's conversion (its own -p, read
# from its output), then the copy. The conversion reads slowly, so it must
# show before the copy's half.
check bar --long=50 out.txt -- $ADMIN import -p "$TESTDIR/mnt/qc@s" q1
check json --long=50 $((2 * size)) -- $ADMIN import --json "$TESTDIR/mnt/qc@s" q2
$ADMIN export q2 q2.raw
cmp img.raw q2.raw || fail "the qcow2 imported with --json differs from the image"

# export: the bar, and the JSON lines of a snapshot, whose files are right.
$ADMIN snap a@s
check bar e1.txt -- $ADMIN export -p a@s e1.raw
check json $size -- $ADMIN export --json a@s e2.raw
cmp img.raw e1.raw && cmp img.raw e2.raw || fail "an export with progress differs from the image"
$ADMIN export -p a@s e3.raw 2>err.txt
[ ! -s err.txt ] || fail "export -p piped printed on stderr: $(cat err.txt)"

# flatten: a clone of a@s copies the 96 MiB chain into its leaf.
$ADMIN clone a@s f1
$ADMIN clone a@s f2
check bar fl.txt -- $ADMIN flatten -p f1
check json $size -- $ADMIN flatten --json f2
$ADMIN info f2 --json |
	/usr/bin/python3 -c 'import json,sys; assert len(json.load(sys.stdin)["chain"]) == 1'
$ADMIN export f2 f2.raw
cmp img.raw f2.raw || fail "flatten with --json changed the data"
# A flatten whose work has started and then fails (tests/killshim fails the
# process's second commit, flatten's first: the first opens the store) ends
# with a "failed" line; the error itself is on stderr.
$ADMIN clone a@s f3
if IC_COMMIT_FAULT=fail:2 LD_PRELOAD=$IC_BUILD/tests/killshim/libkillshim.so \
	$ADMIN flatten --json f3 >failed.json 2>failed.err; then
	fail "flatten with a failed commit succeeded"
fi
/usr/bin/python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert ev[0]["event"] == "progress" and ev[-1]["event"] == "failed", ev
assert ev[-1]["total"] == '$size' and "elapsed_ms" in ev[-1], ev' failed.json
grep -q "isocache-admin" failed.err || fail "no error on stderr: $(cat failed.err)"

# resize changes metadata only: one completed line, one done event.
check bar rs.txt -- $ADMIN resize -p f1 --size 128M
check json $((128 << 20)) -- $ADMIN resize --json f2 --size 128M

# rm of a snapshot merges it into its only child: the merge's own bytes.
$ADMIN snap b@s
$ADMIN rm --json b@s | /usr/bin/python3 -c '
import json, sys
ev = [json.loads(l) for l in sys.stdin]
assert ev[-1]["event"] == "done" and ev[-1]["done"] == ev[-1]["total"] > 0, ev'

# cache warm asks a real isocached for a snapshot's chain.
start_bg cached.pid "$CACHED" --foreground --socket "$ISOCACHE_SOCKET" --memory 128M \
	--pid-file cached.pid
check bar w1.txt -- $ADMIN cache warm -p a@s
grep -q "^a@s: asked isocached to load" w1.txt || fail "warm's summary: $(cat w1.txt)"
check json $size -- $ADMIN cache warm --json a@s

# Where progress means nothing, -p is refused, naming it.
expect_fail "--progress does not apply to ls" $ADMIN ls -p
expect_fail "--progress does not apply to cache stats" $ADMIN cache stats --progress
expect_fail "--progress does not apply to cache drop" $ADMIN cache drop -p
expect_fail "--progress does not apply to snap" $ADMIN snap a@t -p
echo "admin-progress: ok"
