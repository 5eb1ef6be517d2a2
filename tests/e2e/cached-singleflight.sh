#!/usr/bin/env bash
# Eight clients reading one cold layer at once cause one backing read of
# each block: the daemon's backing bytes stay within 1.05x the layer size,
# and every client gets the layer's bytes.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
set -x
requires setfattr

cached_layer "$TESTDIR/base" 32M
cached_start --memory 64M

pids=()
for i in $(seq 8); do
	"$CTL" cat "$TESTDIR/base" >"$TESTDIR/out.$i" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a reader failed"; done
for i in $(seq 8); do cmp "$TESTDIR/out.$i" "$TESTDIR/base" || fail "reader $i got wrong data"; done

backing=$(cached_stat "$TESTDIR/base" backing_bytes)
size=$(stat -c %s "$TESTDIR/base")
((backing * 100 <= size * 105)) || fail "backing bytes $backing > 1.05 x $size"
echo PASS
