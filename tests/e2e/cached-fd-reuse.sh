#!/usr/bin/env bash
# isocached closes every descriptor it receives exactly once: after each
# hostile exchange of a session (a hang-up with a reply unread, descriptors
# on messages that take none, more than fit, garbage with one) its
# descriptor table is what it was; and a failed receive no longer closes
# the number of the previous message's descriptor, which had let a user
# get her own file's blocks served as root's layer (issue 13 item 1).
# The exchanges are in cached-fd-reuse.py.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
trace_on
cached_as_nobody

mkdir -m 0700 "$TESTDIR/private"
cached_layer "$TESTDIR/private/golden" 8M
nobody_layer mine 1M
nobody_layer other 1M
cached_start --memory 16M
/usr/bin/python3 "$IC_SRC/tests/e2e/cached-fd-reuse.py" "$ISOCACHE_SOCKET" \
	"$(cat "$TESTDIR/cached.pid")" "$TESTDIR/private/golden" "$TESTDIR/shared/mine" \
	"$TESTDIR/shared/other"
kill -0 "$(cat "$TESTDIR/cached.pid")" || fail "isocached died"
echo PASS
