#!/usr/bin/env bash
# A front end's sessions with isocached give back the pages of their reply
# slots once quiet (filter/cache.c, CACHE_IDLE_MS): after a cold read of a
# clone through the cache filter, the buffers the server shares with the
# daemon hold the blocks of the last replies; a few seconds after the
# reads stop they hold no more than the hit rings, and the clone reads the
# same bytes again through the same sessions. Reads of 64 KiB: larger ones
# that the daemon fills are spliced from its arena, not copied through the
# reply slots (docs/NBD.md, "Reads spliced from the cache").
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/cached-functions.bash"
trace_on
requires nbdcopy

cached_golden 16 vm
cached_start --memory 64M
nbd_start s --filter cache vm
pid=$(cat "$TESTDIR/s.pid")

# session_kb: KiB resident of the server's mappings of the buffers it
# shares with the daemon (memfd "isocache-cached": reply slot, hit ring).
session_kb() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { on = /memfd:isocache-cached/ } on && /^Rss:/ { kb += $2 }
		END { print kb + 0 }' "/proc/$pid/smaps"
}
quiet() { (($(session_kb) <= 4 * 24)); } # four sessions' hit rings at most

nbdcopy --request-size=65536 "$(nbd_uri s vm)" "$TESTDIR/copy1.raw"
cmp "$TESTDIR/copy1.raw" "$TESTDIR/base.raw" || fail "the first read differs"
busy=$(session_kb)
((busy > 4 * 24)) || fail "the reads left $busy KiB in the session buffers: nothing to give back"
wait_until 30 quiet || fail "the session buffers still hold $(session_kb) KiB after 30 s quiet"
echo "session buffers: $busy KiB after the reads, $(session_kb) KiB once quiet"

# Evicted, so that the second read is served through the reply slots again.
for f in $(find "$ISOCACHE_STORE" -name '*.raw' -perm 0444); do "$CTL" drop "$f"; done
nbdcopy --request-size=65536 "$(nbd_uri s vm)" "$TESTDIR/copy2.raw"
cmp "$TESTDIR/copy2.raw" "$TESTDIR/base.raw" || fail "the read after the slots were given back differs"
nbd_stop s
echo PASS
