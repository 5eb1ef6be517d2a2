#!/usr/bin/env bash
# isocached killed -9 while clients read: every read still returns the
# layer's bytes (clients fall back to the file), a restarted daemon takes
# over the stale socket, and clients use it again.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
trace_on
requires setfattr

cached_layer "$TESTDIR/base" 16M
cached_start --memory 8M
(
	for i in $(seq 30); do
		"$CTL" cat "$TESTDIR/base" 2>>"$TESTDIR/reader.log" | cmp - "$TESTDIR/base" || exit 1
		echo "$i" >>"$TESTDIR/reads"
	done
) &
reader=$!
cleanup_fn kill "$reader"
# The kill lands while the reader goes on: after its first whole pass.
wait_until 60 test -s "$TESTDIR/reads" || fail "the reader did not finish a pass within 60 s"
kill -9 "$(cat "$TESTDIR/cached.pid")"
[ -S "$ISOCACHE_SOCKET" ] || fail "the socket file should outlive a killed daemon"
"$CTL" cat "$TESTDIR/base" 2>"$TESTDIR/direct.log" | cmp - "$TESTDIR/base"
grep -q " 0 blocks from the cache" "$TESTDIR/direct.log" || fail "read from a dead daemon?"
cached_start --memory 8M
wait "$reader" || fail "a read returned wrong data across the restart"
"$CTL" cat "$TESTDIR/base" >/dev/null 2>&1
"$CTL" cat "$TESTDIR/base" 2>"$TESTDIR/again.log" | cmp - "$TESTDIR/base"
grep -q " 0 read directly" "$TESTDIR/again.log" || fail "the restarted daemon is not used"
echo PASS
