#!/usr/bin/env bash
# A worker's buffer stays resident between requests (nbd/conn.c), so a
# warm connection serves large reads without page faults: 64 reads of
# 1 MiB, 8 in flight, after 64 that warmed the connection, may cost the
# server at most 8 minor faults each. Handing the pages past 256 KiB back
# after every request cost 192 each (the read's copy faults them in
# again), and the server 10x the CPU of nbdkit per 1 MiB read. Every byte
# is checked against the imported file, and a read of 32 MiB (more than
# the connection keeps) is served and checked after. A connection that
# goes quiet gives its pages back (after 5 s), and serves on.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
nbd_need_python
trace_on

nbd_random_gold 64
"$ADMIN" clone base@gold vm
nbd_start s vm
pid=$(cat "$TESTDIR/s.pid")
uri=$(nbd_uri s)

nbd_client seq "$uri" "$TESTDIR/base.raw" 64 8 $((1 << 20)) "$pid" >"$TESTDIR/seq.out" ||
	fail "client: $(cat "$TESTDIR/seq.out")"
grep -qx "verified 128" "$TESTDIR/seq.out" || fail "client: $(cat "$TESTDIR/seq.out")"
faults=$(sed -n 's/^faults //p' "$TESTDIR/seq.out")
echo "64 reads of 1 MiB on a warm connection: $faults minor faults in the server"
((faults <= 64 * 8)) || fail "$faults page faults for 64 reads of 1 MiB: buffers given back"

# Larger than the pages a connection keeps: served whole, and given back.
nbd_client seq "$uri" "$TESTDIR/base.raw" 2 2 $((32 << 20)) "$pid" >"$TESTDIR/big.out" ||
	fail "client: $(cat "$TESTDIR/big.out")"
grep -qx "verified 4" "$TESTDIR/big.out" || fail "client: $(cat "$TESTDIR/big.out")"

nbd_client idle "$uri" "$TESTDIR/base.raw" 64 8 $((1 << 20)) "$pid" >"$TESTDIR/idle.out" ||
	fail "client: $(cat "$TESTDIR/idle.out")"
grep -qx "verified 128" "$TESTDIR/idle.out" || fail "client: $(cat "$TESTDIR/idle.out")"
echo "a quiet connection: $(sed -n 's/^idle //p' "$TESTDIR/idle.out") KiB (grew, left)"
nbd_stop s
