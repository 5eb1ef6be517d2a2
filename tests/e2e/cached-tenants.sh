#!/usr/bin/env bash
# One tenant cannot starve the others (issue 13 item 2): a uid other than
# root holds at most --sessions-per-uid sessions; DROP is for root and the
# layer file's owner, and costs that layer's blocks, not a walk of the whole
# cache; per-layer STATS need a handle of the session's own
# (cached-tenants.py); and a --quota holds in L2 as in RAM, so nobody's
# reads cannot push root's blocks out of the L2 file either.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
trace_on
cached_as_nobody

mkdir -m 0755 "$TESTDIR/roots"
cached_layer "$TESTDIR/roots/base" 8M
nobody_layer tiny 16K
nobody_layer big 16M

cached_start --memory 4G --sessions-per-uid 8
/usr/bin/python3 "$IC_SRC/tests/e2e/cached-tenants.py" "$ISOCACHE_SOCKET" \
	"$TESTDIR/roots/base" "$TESTDIR/shared/tiny"
_ic_kill_pidfile "$TESTDIR/cached.pid"

# L2 and quotas: RAM for 4M, an L2 file of 16M (4096 slots), nobody capped
# at 1M. Root's 6M go through L2; nobody then reads 16M, which without the
# quota in L2 would wrap the file and overwrite all of root's slots.
cached_layer "$TESTDIR/roots/six" 6M
cached_start --memory 4M --l2 "$TESTDIR/l2" --l2-size 16M --quota nobody=1M
"$CTL" cat "$TESTDIR/roots/six" | cmp - "$TESTDIR/roots/six"
before=$(cached_stat "$TESTDIR/roots/six" backing_bytes)
"${NOBODY[@]}" "$CTL" cat "$TESTDIR/shared/big" | cmp - "$TESTDIR/shared/big"
l2_blocks=$(cached_stat all l2_blocks)
((l2_blocks <= 1536 + 256)) || fail "L2 holds $l2_blocks blocks: nobody wrote past its quota"
"$CTL" cat "$TESTDIR/roots/six" | cmp - "$TESTDIR/roots/six"
after=$(cached_stat "$TESTDIR/roots/six" backing_bytes)
echo "root's second read: $((after - before)) bytes from its layer file, L2 holds $l2_blocks blocks"
((after - before <= 256 * 4096)) ||
	fail "root read $((after - before)) bytes from its file again: nobody evicted its L2 slots"
echo PASS
