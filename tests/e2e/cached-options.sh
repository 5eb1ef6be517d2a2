#!/usr/bin/env bash
# isocached's command line: --help, bad options, a second daemon on the
# same socket, --socket creating its directory, and SIGTERM exiting 0
# with the socket and pid file removed, even with a client that never
# reads its replies.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
trace_on

"$CACHED" --help | grep -q -- "--quota UID=SIZE"
for bad in "--memory lots" "--quota 5" "--quota nosuchuser=1M" "--log-level loud" "--bogus" "extra" \
	"--sessions-per-uid 0" "--sessions-per-uid 4097" "--sessions-per-uid x"; do
	rc=0
	# shellcheck disable=SC2086
	"$CACHED" --foreground $bad 2>"$TESTDIR/err" || rc=$?
	[ "$rc" = 2 ] || fail "'$bad' exited $rc, not 2"
	grep -q "isocached" "$TESTDIR/err" || fail "'$bad': no message"
done

sock=$TESTDIR/run/deep/cached.sock
start=$(date +%s%N)
start_bg "$TESTDIR/cached.pid" "$CACHED" --foreground --socket "$sock" \
	--pid-file "$TESTDIR/cached.pid" --memory 1G
echo "ready after $((($(date +%s%N) - start) / 1000000)) ms"
[ -S "$sock" ] || fail "no socket at $sock"
rc=0
"$CACHED" --foreground --socket "$sock" 2>"$TESTDIR/err" || rc=$?
[ "$rc" = 1 ] && grep -q "another isocached" "$TESTDIR/err" || fail "second daemon: $rc"

"$CTL" -s "$sock" abuse noread >"$TESTDIR/stuck.out" &
stuck=$!
cleanup_fn kill "$stuck"
wait_until 30 grep -q stalled "$TESTDIR/stuck.out" || fail "the client did not stall the daemon"
pid=$(cat "$TESTDIR/cached.pid")
t0=$(date +%s%N)
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 0 ] || fail "SIGTERM: exit status $rc"
# The daemon gives a stuck client 5 s, then exits: bounded, not at once.
took=$((($(date +%s%N) - t0) / 1000000))
echo "SIGTERM with a stuck client: exited after $took ms"
((took <= 15000)) || fail "SIGTERM took $took ms"
[ ! -e "$sock" ] || fail "socket left behind"
[ ! -e "$TESTDIR/cached.pid" ] || fail "pid file left behind"
echo PASS
