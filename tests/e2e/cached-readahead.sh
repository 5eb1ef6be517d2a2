#!/usr/bin/env bash
# isocached reads a layer read in sequence ahead of its readers
# (--readahead): the blocks it reads ahead are counted in readahead_fills
# and readahead_blocks, it reads nothing past the layer's end, and the
# readers get the layer's bytes. Random reads start no readahead, nor does
# a daemon started with --readahead 0. Through the test client and through
# isocache-nbd's cache filter read by nbdcopy and libnbd.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
source "$(dirname "$0")/nbd-functions.bash"
trace_on
requires setfattr nbdcopy python3

cached_layer "$TESTDIR/seq" 16M
size=$(stat -c %s "$TESTDIR/seq")

# One reader in sequence: read ahead, the whole layer read from the file
# exactly once (not one block past its end).
cached_start --memory 64M
"$CTL" cat "$TESTDIR/seq" | cmp - "$TESTDIR/seq" || fail "wrong data"
ahead=$(cached_stat "$TESTDIR/seq" readahead_blocks)
backing=$(cached_stat "$TESTDIR/seq" backing_bytes)
echo "sequential: readahead_blocks $ahead backing_bytes $backing of $size"
((ahead > size / 4096 / 2)) || fail "only $ahead of $((size / 4096)) blocks were read ahead"
((backing == size)) || fail "backing bytes $backing != the layer's $size"
_ic_kill_pidfile "$TESTDIR/cached.pid"

# --readahead 0: the same read, nothing ahead.
cached_start --memory 64M --readahead 0
"$CTL" cat "$TESTDIR/seq" | cmp - "$TESTDIR/seq" || fail "--readahead 0: wrong data"
[ "$(cached_stat "$TESTDIR/seq" readahead_fills)" = 0 ] || fail "--readahead 0 read ahead"
_ic_kill_pidfile "$TESTDIR/cached.pid"
"$CACHED" --readahead 1G --help >/dev/null 2>&1 && fail "--readahead 1G was taken"

# Through isocache-nbd: nbdcopy reads in sequence, on one connection, one
# request at a time. (With its defaults, 4 connections of up to 64 requests,
# the whole 16 MiB is asked for at once, the misses reach the daemon
# interleaved, and the layer's one sequential cursor may find none that
# follows the last: nothing was read ahead in one CI run under ASan.)
cached_golden 16 vm
cached_start --memory 64M
export ISOCACHE_SOCKET
$NBD -r --filter cache --run 'nbdcopy -C 1 -R 1 "$uri" '"$TESTDIR/copy.raw" vm
cmp "$TESTDIR/copy.raw" "$TESTDIR/base.raw" || fail "nbdcopy: wrong data"
ahead=$(cached_stat all readahead_blocks)
echo "nbdcopy: readahead_blocks $ahead"
((ahead > 0)) || fail "nbdcopy: nothing was read ahead"
# isocache-admin cache stats --json says so too, for the layer and in all.
"$ADMIN" cache stats --json | /usr/bin/python3 -c '
import json, sys
rows = {r["layer"]: r for r in json.load(sys.stdin)}
assert rows["base@gold"]["readahead_blocks"] > 0, rows["base@gold"]
assert rows["(daemon total)"]["readahead_fills"] > 0, rows["(daemon total)"]
assert rows["(daemon total)"]["trace_fills"] == 0, rows["(daemon total)"]
' || fail "cache stats --json does not show the readahead"
_ic_kill_pidfile "$TESTDIR/cached.pid"

# Random 4 KiB reads, none at a 64 KiB boundary (where a fill that read a
# cluster ends): no stream, nothing read ahead; each block checked.
cached_start --memory 64M
cat >"$TESTDIR/random_reads.py" <<'EOF'
import random, sys
import nbd

h = nbd.NBD()
h.connect_uri(sys.argv[1])
want = open(sys.argv[2], "rb").read()
rng = random.Random(7)
for _ in range(400):
    off = (rng.randrange(len(want) // 65536) * 16 + rng.randrange(1, 16)) * 4096
    if h.pread(4096, off) != want[off:off + 4096]:
        sys.exit("wrong data at %d" % off)
h.shutdown()
EOF
$NBD -r --filter cache --run '/usr/bin/python3 '"$TESTDIR/random_reads.py"' "$uri" '"$TESTDIR/base.raw" vm ||
	fail "random reads failed"
fills=$(cached_stat all fills)
ahead=$(cached_stat all readahead_fills)
echo "random: fills $fills, of them readahead $ahead"
((fills > 0)) || fail "the random reads filled nothing"
[ "$ahead" = 0 ] || fail "random reads were read ahead ($ahead fills)"
echo PASS
