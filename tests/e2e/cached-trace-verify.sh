#!/usr/bin/env bash
# A boot trace's prefetch never returns a wrong byte and never reads a
# block twice: one clone's full read records the base layer's trace; after
# a daemon restart, eight clones on two servers are read at once while the
# daemon replays that trace (the readers' first read registers the layer,
# so prefetch and demand reads race). Every clone compares equal to the raw
# image, the replay did fill blocks (trace_fills > 0), and the layer file
# was read about once in all (backing bytes <= 1.1 x its allocated bytes:
# demand misses joined prefetch fills rather than reading again).
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/cached-functions.bash"
trace_on
requires nbdcopy

clones=(vm1 vm2 vm3 vm4 vm5 vm6 vm7 vm8)
cached_golden 48 "${clones[@]}"
layer=$(find "$ISOCACHE_STORE" -name '*.raw' -perm 0444)

cached_stop() {
	local pid
	pid=$(cat "$TESTDIR/cached.pid")
	kill -TERM "$pid"
	wait_until 30 gone "$pid" || fail "isocached did not stop"
}

# Record: one clone boots (reads everything), the trace is written at exit.
cached_start --memory 256M
nbd_start r --filter cache vm1
nbdcopy "$(nbd_uri r vm1)" "$TESTDIR/record.raw"
cmp "$TESTDIR/record.raw" "$TESTDIR/base.raw" || fail "the recording read differs"
nbd_stop r
cached_stop
"$ADMIN" cache trace show base@gold || fail "no trace was recorded"

# Replay racing eight readers.
cached_start --memory 256M
nbd_start a --filter cache "${clones[@]:0:4}"
nbd_start b --filter cache "${clones[@]:4:4}"
pids=()
for i in "${!clones[@]}"; do
	server=$([ "$i" -lt 4 ] && echo a || echo b)
	nbdcopy "$(nbd_uri "$server" "${clones[i]}")" "$TESTDIR/${clones[i]}.raw" &
	pids+=($!)
done
for i in "${!pids[@]}"; do wait "${pids[i]}" || fail "nbdcopy of ${clones[i]} failed"; done
for c in "${clones[@]}"; do
	cmp "$TESTDIR/$c.raw" "$TESTDIR/base.raw" || fail "$c differs from the base image"
done

"$CTL" stats "$layer" | tee "$TESTDIR/stats"
fills=$(awk '$1 == "trace_fills" { print $2 }' "$TESTDIR/stats")
backing=$(awk '$1 == "backing_bytes" { print $2 }' "$TESTDIR/stats")
allocated=$(stat -c '%b * %B' "$layer")
allocated=$((allocated))
echo "trace fills $fills, backing bytes $backing, layer allocated $allocated"
[ -n "$fills" ] && ((fills > 0)) || fail "the trace was not replayed (trace_fills '$fills')"
((backing * 100 <= allocated * 110)) || fail "backing bytes $backing > 1.1 x $allocated"
echo PASS
