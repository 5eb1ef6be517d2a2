# Sourced by tests/e2e/cached-l2-*.sh after cached-functions.bash.
requires setfattr getfattr

# cached_l2_start ARGS...: isocached with an L2 file in $TESTDIR/l2.
cached_l2_start() {
	cached_start --memory 16M --l2 "$TESTDIR/l2" --l2-size 32M "$@"
}

# cached_l2_stop: SIGTERM the daemon and wait for its clean exit (the L2
# index is written then).
cached_l2_stop() {
	local pid rc=0
	pid=$(cat "$TESTDIR/cached.pid")
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	[ "$rc" = 0 ] || fail "isocached exited $rc after SIGTERM"
}

# cached_l2_cat FILE: read FILE through the daemon (read-through) and
# compare it with the file itself.
cached_l2_cat() {
	"$CTL" cat "$1" 2>"$TESTDIR/cat.log" | cmp - "$1" || fail "wrong data read through the daemon"
	grep -q " 0 read directly" "$TESTDIR/cat.log" || fail "the daemon did not serve: $(cat "$TESTDIR/cat.log")"
}
