#!/usr/bin/env bash
# isocached killed -9 while isocache-nbd reads through the cache filter:
# every read still returns the image's bytes, and once the daemon is back
# the filter reconnects and is served from the cache again.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/cached-functions.bash"
set -x
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
sleep 0.3
kill -9 "$(cat "$TESTDIR/cached.pid")"
wait "$reader" || fail "a read through the filter returned wrong data or failed"

cached_start --memory 64M
sleep 1.2 # the filter retries a lost daemon at most once a second
for i in 1 2; do
	nbdcopy "$uri" "$TESTDIR/again.raw"
	cmp "$TESTDIR/again.raw" "$TESTDIR/base.raw" || fail "wrong data after the restart"
done
hits=$(cached_stat all hits)
((hits > 0)) || fail "the filter did not reconnect to the restarted daemon"
echo PASS
