#!/usr/bin/env bash
# Hits come from the shared arena by default (counted as shared_hits once
# the daemon drains the hit ring), and never with isocached --no-shared or
# the cache filter's shared=0: then every hit is a request, and the data is
# the same.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
source "$(dirname "$0")/nbd-functions.bash"
trace_on
requires setfattr nbdcopy

cached_layer "$TESTDIR/base" 4M
blocks=1024

# The shared_hits of a warm read of the whole layer, after a cold one
# (whose blocks read ahead may be arena hits too).
two_reads() {
	local before
	"$CTL" cat "$TESTDIR/base" | cmp - "$TESTDIR/base"
	before=$(cached_stat "$TESTDIR/base" shared_hits)
	"$CTL" cat "$TESTDIR/base" | cmp - "$TESTDIR/base"
	echo $(($(cached_stat "$TESTDIR/base" shared_hits) - before))
}

cached_start --memory 16M
[ "$(two_reads)" = "$blocks" ] || fail "the warm read was not served from the arena"
_ic_kill_pidfile "$TESTDIR/cached.pid"

cached_start --memory 16M --no-shared
[ "$(two_reads)" = 0 ] || fail "--no-shared: hits were served from an arena"
hits=$(cached_stat "$TESTDIR/base" hits)
((hits >= blocks)) || fail "--no-shared: only $hits hits over the socket"
"$CTL" shm writable "$TESTDIR/base" && fail "--no-shared: MAP answered"
_ic_kill_pidfile "$TESTDIR/cached.pid"

# Through isocache-nbd's cache filter: shared by default, not with shared=0.
cached_golden 8 vm
cached_start --memory 64M
export ISOCACHE_SOCKET
total_shared() { cached_stat all shared_hits; }
$NBD -r --filter cache --run 'nbdcopy "$uri" '"$TESTDIR/cold.raw" vm
$NBD -r --filter cache --run 'nbdcopy "$uri" '"$TESTDIR/warm.raw" vm
cmp "$TESTDIR/warm.raw" "$TESTDIR/base.raw" || fail "shared: wrong data"
before=$(total_shared)
((before > 0)) || fail "the cache filter served no hit from the arena"
$NBD -r --filter cache:shared=0 --run 'nbdcopy "$uri" '"$TESTDIR/off.raw" vm
cmp "$TESTDIR/off.raw" "$TESTDIR/base.raw" || fail "shared=0: wrong data"
[ "$(total_shared)" = "$before" ] || fail "shared=0: hits were served from the arena"
echo PASS
