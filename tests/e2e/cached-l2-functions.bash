# Sourced by tests/e2e/cached-l2-*.sh after cached-functions.bash.
source "$(dirname "${BASH_SOURCE[0]}")/nbd-functions.bash"
requires setfattr getfattr

# cached_l2_start ARGS...: isocached with an L2 file in $TESTDIR/l2.
cached_l2_start() {
	cached_start --memory 16M --l2 "$TESTDIR/l2" --l2-size 32M "$@"
}

# cached_l2_stop: SIGTERM the daemon and expect a clean exit (the L2
# index is written then).
cached_l2_stop() { nbd_stop cached; }

# cached_l2_cat FILE: read FILE through the daemon (read-through) and
# compare it with the file itself.
cached_l2_cat() {
	"$CTL" cat "$1" 2>"$TESTDIR/cat.log" | cmp - "$1" || fail "wrong data read through the daemon"
	grep -q " 0 read directly" "$TESTDIR/cat.log" || fail "the daemon did not serve: $(cat "$TESTDIR/cat.log")"
}

# cached_l2_filled FILE SIZE: a frozen layer of SIZE random bytes, read once
# through a daemon with L2 (so L2 holds all of it), and the daemon stopped.
cached_l2_filled() {
	cached_layer "$1" "$2"
	cached_l2_start
	cached_l2_cat "$1"
	cached_l2_stop
}
