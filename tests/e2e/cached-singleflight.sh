#!/usr/bin/env bash
# Eight clients reading one cold layer at once cause one backing read of
# each block: concurrent misses join the fill in flight (joins > 0, every
# miss fills or joins), the daemon reads exactly the layer's bytes from the
# file, and every client gets the layer's bytes.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
trace_on
requires setfattr

cached_layer "$TESTDIR/base" 32M
cached_start --memory 64M

# The readers wait at a gate so that all eight start together, not one
# after another as a loaded machine might run them: each asks for a shared
# lock on a file this shell holds exclusively, and once the kernel shows
# all eight waiting (/proc/locks), the shell lets go and they start at
# once. (A gate polled every 50 ms let one reader read all 32 MiB before
# the others began: no miss joined a fill, in one CI run.)
exec {gate}>"$TESTDIR/gate"
flock -x "$gate"
inode=$(stat -c %i "$TESTDIR/gate")
pids=()
for i in $(seq 8); do
	# (without the shell's descriptor: the lock is let go when it closes)
	flock -s "$TESTDIR/gate" "$CTL" cat "$TESTDIR/base" >"$TESTDIR/out.$i" {gate}>&- &
	pids+=($!)
done
readers_waiting() { [ "$(grep -c -- "-> FLOCK .*:$inode " /proc/locks)" -ge 8 ]; }
wait_until 30 readers_waiting || fail "the readers did not all reach the gate: $(cat /proc/locks)"
exec {gate}>&-
for p in "${pids[@]}"; do wait "$p" || fail "a reader failed"; done
for i in $(seq 8); do cmp "$TESTDIR/out.$i" "$TESTDIR/base" || fail "reader $i got wrong data"; done

# Every block was read from the layer file once: one fill covered it, and
# every other miss on it joined that fill. Misses start the fills that are
# not readahead's (the readers read in sequence, so some are).
for c in misses fills joins blocks backing_bytes readahead_fills; do
	declare "$c=$(cached_stat "$TESTDIR/base" "$c")"
done
size=$(stat -c %s "$TESTDIR/base")
echo "misses $misses fills $fills (readahead $readahead_fills) joins $joins blocks $blocks" \
	"backing_bytes $backing_bytes"
((joins > 0)) || fail "no miss joined a fill"
((readahead_fills > 0)) || fail "nothing was read ahead of eight sequential readers"
((misses == fills - readahead_fills + joins)) ||
	fail "$misses misses, but $fills fills ($readahead_fills readahead) and $joins joins"
((backing_bytes == size)) || fail "backing bytes $backing_bytes != the layer's $size"
((blocks == size / 4096)) || fail "$blocks blocks cached for a $size-byte layer"
echo PASS
