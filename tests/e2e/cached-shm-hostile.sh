#!/usr/bin/env bash
# Clients that attack the shared arenas (docs/SECURITY.md, "The cache
# daemon"): MAP before REGISTER gets no descriptor; a mapped arena cannot be
# made writable, resized, written, punched or sealed (nor reopened writable
# by another uid); garbage in the hit ring changes nothing for anyone
# else; a client killed while copying hits leaves the daemon and every
# other client serving correct data, and the daemon's descriptors where
# they were.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
trace_on
requires setfattr

cached_layer "$TESTDIR/base" 8M
cached_start --memory 16M --log-level warn
pid=$(cat "$TESTDIR/cached.pid")
"$CTL" cat "$TESTDIR/base" | cmp - "$TESTDIR/base" # cached and registered: the arena exists
fds_idle() { [ "$(ls "/proc/$pid/fd" | wc -l)" = "$fds" ]; }
fds=$(ls "/proc/$pid/fd" | wc -l)

# A well-behaved reader, copying hits from the arena all the time the
# attacks go on, and a drop now and then so its copies race evictions.
(
	for i in $(seq 20); do
		"$CTL" cat "$TESTDIR/base" 2>/dev/null | cmp - "$TESTDIR/base" || exit 1
		((i % 5)) || "$CTL" drop "$TESTDIR/base" >/dev/null
	done
) &
reader=$!
cleanup_fn kill "$reader"

"$CTL" shm nofd "$TESTDIR/base" || fail "MAP before REGISTER"
"$CTL" shm writable "$TESTDIR/base" | tee "$TESTDIR/writable.out" ||
	fail "a mapped arena could be written"
grep -q "mprotect PROT_WRITE: " "$TESTDIR/writable.out" || fail "writable: no output"
"$CTL" shm ring "$TESTDIR/base" || fail "garbage in the hit ring ended the session"

# Another uid: its own layer's arena, and no reopen of it for writing.
if [ "$(id -u)" = 0 ]; then
	cached_as_nobody
	nobody_layer mine 1M
	"${NOBODY[@]}" "$CTL" cat "$TESTDIR/shared/mine" | cmp - "$TESTDIR/shared/mine"
	"${NOBODY[@]}" "$CTL" shm writable "$TESTDIR/shared/mine" | tee "$TESTDIR/nobody.out" ||
		fail "nobody could write its arena"
	grep -q "reopen writable: Permission denied" "$TESTDIR/nobody.out" ||
		fail "nobody's reopen was not refused by the arena's mode"
	fds=$((fds + 3)) # a new layer: its file, its arena and the arena's read-only reopen
fi

# Killed mid-copy: a spinner copies hits as fast as it can, then SIGKILL.
"$CTL" shm spin "$TESTDIR/base" >"$TESTDIR/spin.out" &
spin=$!
cleanup_fn kill -9 "$spin"
wait_until 60 grep -q spinning "$TESTDIR/spin.out" || fail "the spinner never copied hits"
kill -9 "$spin"
wait "$spin" || true

wait "$reader" || fail "the good reader read wrong data or failed"
kill -0 "$pid" || fail "isocached died"
"$CTL" cat "$TESTDIR/base" | cmp - "$TESTDIR/base"
shared=$(cached_stat "$TESTDIR/base" shared_hits)
((shared > 0)) || fail "no hit was served from the arena"
wait_until 10 fds_idle || fail "isocached holds $(ls "/proc/$pid/fd" | wc -l) fds, not $fds"
echo PASS
