#!/usr/bin/env bash
# isocached killed -9 while isocache-nbd reads through the cache filter:
# every read still returns the image's bytes, and once the daemon is back
# the filter reconnects and is served from the cache again.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/cached-functions.bash"
trace_on
requires nbdcopy

cached_golden 32 vm
cached_start --memory 64M
nbd_start srv --filter cache vm
uri=$(nbd_uri srv vm)

(
	for i in $(seq 10); do
		nbdcopy "$uri" "$TESTDIR/copy.$i.raw" && cmp "$TESTDIR/copy.$i.raw" "$TESTDIR/base.raw" || exit 1
		rm -f "$TESTDIR/copy.$i.raw"
	done
) &
reader=$!
cleanup_fn kill "$reader"
# Kill the daemon while the reader is being served through it.
reader_served() { (($(cached_stat all lookups) > 0)); }
wait_until 30 reader_served || fail "the reader did not reach the daemon"
kill -9 "$(cat "$TESTDIR/cached.pid")"
wait "$reader" || fail "a read through the filter returned wrong data or failed"

cached_start --memory 64M
# The filter retries a lost daemon at most once a second: read until the
# restarted daemon serves hits, each read returning the image's bytes.
served_again() {
	nbdcopy "$uri" "$TESTDIR/again.raw"
	cmp "$TESTDIR/again.raw" "$TESTDIR/base.raw" || fail "wrong data after the restart"
	(($(cached_stat all hits) > 0))
}
wait_until 30 served_again || fail "the filter did not reconnect to the restarted daemon"
echo PASS
