#!/usr/bin/env bash
# A second isocached on the same socket is refused, with a message and exit
# status 1, whether the first and the second run in the foreground or
# daemonized; the first keeps serving and keeps its pid file (issue 19
# item 1: a daemonized first listened before it forked, so its socket named
# the exited parent, and a second start replaced it and exited 0).
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
trace_on

# second MODE...: start isocached with the arguments, expect a refusal.
second() {
	local rc=0
	# A second that starts serving in the foreground is stopped at 10 s.
	timeout 10 "$CACHED" --pid-file "$TESTDIR/cached.pid" "$@" 2>"$TESTDIR/err" || rc=$?
	cat "$TESTDIR/err"
	[ "$rc" = 1 ] || fail "a second isocached $* exited with $rc, not 1"
	grep -q "another isocached is running" "$TESTDIR/err" || fail "no clear refusal"
}

# first_serves: the first daemon still answers, and its pid file names it.
first_serves() {
	[ "$(cat "$TESTDIR/cached.pid")" = "$first" ] || fail "the pid file was overwritten"
	kill -0 "$first" || fail "the first isocached died"
	[ "$("$CTL" stats all | awk '$1 == "mem_limit" { print $2 }')" = $((8 << 20)) ] ||
		fail "the first isocached does not answer"
}

for mode in foreground daemonized; do
	if [ $mode = foreground ]; then
		cached_start --memory 8M
	else
		# Returns once the daemon accepts; its pid file is written by then.
		"$CACHED" --memory 8M --pid-file "$TESTDIR/cached.pid"
		cleanup_fn _ic_kill_pidfile "$TESTDIR/cached.pid"
	fi
	first=$(cat "$TESTDIR/cached.pid")
	[ "$(readlink "/proc/$first/exe")" = "$(readlink -f "$CACHED")" ] ||
		fail "$TESTDIR/cached.pid does not name the serving daemon"
	second --memory 16M --foreground
	first_serves
	second --memory 16M
	first_serves
	_ic_kill_pidfile "$TESTDIR/cached.pid"
	[ ! -e "$ISOCACHE_SOCKET" ] || fail "the first isocached left its socket behind"
done
echo PASS
