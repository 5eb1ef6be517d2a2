#!/usr/bin/env bash
# Eight clients reading one cold layer at once cause one backing read of
# each block: concurrent misses join the fill in flight (joins > 0, every
# miss fills or joins), the daemon reads exactly the layer's bytes from the
# file, and every client gets the layer's bytes.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
set -x
requires setfattr

cached_layer "$TESTDIR/base" 32M
cached_start --memory 64M

# The readers wait at a gate (polled, with a deadline) so that all eight
# start together, not one after another as a loaded machine might run them.
pids=()
for i in $(seq 8); do
	(wait_until 30 test -e "$TESTDIR/go" && exec "$CTL" cat "$TESTDIR/base") >"$TESTDIR/out.$i" &
	pids+=($!)
done
touch "$TESTDIR/go"
for p in "${pids[@]}"; do wait "$p" || fail "a reader failed"; done
for i in $(seq 8); do cmp "$TESTDIR/out.$i" "$TESTDIR/base" || fail "reader $i got wrong data"; done

# Every block was read from the layer file once: one fill covered it, and
# every other miss on it joined that fill.
for c in misses fills joins blocks backing_bytes; do
	declare "$c=$(cached_stat "$TESTDIR/base" "$c")"
done
size=$(stat -c %s "$TESTDIR/base")
echo "misses $misses fills $fills joins $joins blocks $blocks backing_bytes $backing_bytes"
((joins > 0)) || fail "no miss joined a fill"
((misses == fills + joins)) || fail "$misses misses, but $fills fills and $joins joins"
((backing_bytes == size)) || fail "backing bytes $backing_bytes != the layer's $size"
((blocks == size / 4096)) || fail "$blocks blocks cached for a $size-byte layer"
echo PASS
