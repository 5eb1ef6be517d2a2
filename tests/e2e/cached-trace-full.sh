#!/usr/bin/env bash
# A boot trace replay stops before it would evict: a 16 MiB layer read
# whole is recorded (4096 blocks); a daemon of 1 MiB (256 blocks) then
# replays the trace, fills what fits, says it stopped, and evicts nothing.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
trace_on

cached_layer "$TESTDIR/layer" $((16 << 20))
cached_stop() {
	local pid
	pid=$(cat "$TESTDIR/cached.pid")
	kill -TERM "$pid"
	wait_until 30 gone "$pid" || fail "isocached did not stop"
}
stat_of() { cached_stat "$TESTDIR/layer" "$1"; }

cached_start --trace-window 600
cmp <("$CTL" cat "$TESTDIR/layer") "$TESTDIR/layer" || fail "read through the daemon differs"
cached_stop
[ -s "$(ls "$ISOCACHE_TRACE_DIR"/*.trace)" ] || fail "no trace recorded"

cached_start --memory 1M 2>"$TESTDIR/cached.log"
"$CTL" stats "$TESTDIR/layer" >/dev/null # the first REGISTER: the replay starts
wait_until 30 grep -q "boot trace replay stopped at run .*: the cache is full" "$TESTDIR/cached.log" ||
	fail "the replay did not stop: $(cat "$TESTDIR/cached.log")"
"$CTL" stats "$TESTDIR/layer" | tee "$TESTDIR/stats"
(($(stat_of trace_blocks) > 0)) || fail "the replay filled nothing"
(($(stat_of trace_blocks) <= 256)) || fail "the replay filled more than the cache holds"
[ "$(stat_of evictions)" = 0 ] || fail "the replay evicted $(stat_of evictions) blocks"
cmp <("$CTL" cat "$TESTDIR/layer") "$TESTDIR/layer" || fail "reads after the replay differ"
echo PASS
