#!/usr/bin/env bash
# L2 smaller than the data, RAM smaller still: L1 evicts, L2's FIFO hand
# wraps several times while four readers read two layers at once, and
# across a restart. Every read returns the layers' bytes; nothing fails a
# checksum except slots a stale index names (none here: clean stops).
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
source "$(dirname "$0")/cached-l2-functions.bash"
trace_on

cached_layer "$TESTDIR/a" 24M
cached_layer "$TESTDIR/b" 20M
for round in 1 2; do
	cached_start --memory 4M --l2 "$TESTDIR/l2" --l2-size 16M
	pids=()
	for f in a b a b; do
		("$CTL" cat "$TESTDIR/$f" 2>/dev/null | cmp - "$TESTDIR/$f") &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || fail "round $round: wrong data"; done
	cached_l2_cat "$TESTDIR/a"
	(($(cached_stat all l2_evictions) > 0)) || [ "$round" = 2 ] || fail "L2 did not wrap"
	(($(cached_stat all l2_hits) > 0)) || [ "$round" = 1 ] || fail "round 2: no L2 hits"
	[ "$(cached_stat all l2_csum_fails)" = 0 ] || fail "round $round: checksum failures"
	cached_l2_stop
done
echo PASS
