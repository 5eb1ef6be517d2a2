#!/usr/bin/env bash
# Greedy clients cannot take the server's memory, and -e/--shared limits
# the clients served at once. 8 clients (NBD_LIMITS_CLIENTS) each pipeline
# 16 reads of 32 MiB and read no reply until told to: the server's peak
# RSS (VmHWM) must stay under 512 MiB, while stalled and after every reply
# has been read, and a ninth client is still served meanwhile. Then with
# -e 1 a second client waits (no greeting) until the first leaves, and
# multi-conn is not offered. SIGTERM ends even with a client stalled.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires nbdinfo python3
trace_on

CLIENT=$IC_SRC/tests/e2e/nbd-greedy-client.py
CLIENTS=${NBD_LIMITS_CLIENTS:-8}
BOUND_KB=$((512 * 1024))

nbd_store
"$ADMIN" create --size 64M vm1

# hwm NAME: the server's peak resident set in KiB.
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$(cat "$TESTDIR/$1.pid")/status"; }

nbd_start mem -e 0 vm1
pids=()
for ((i = 0; i < CLIENTS; i++)); do
	python3 "$CLIENT" greedy "$TESTDIR/mem.sock" 16 $((32 << 20)) "$TESTDIR/drain" \
		>"$TESTDIR/greedy$i.out" &
	pids+=($!)
	cleanup_fn kill "$!"
done
for ((i = 0; i < CLIENTS; i++)); do
	wait_line "$TESTDIR/greedy$i.out" stalled
done
stalled=$(hwm mem)
echo "VmHWM with $CLIENTS stalled greedy clients: $((stalled / 1024)) MiB"
nbdinfo --size "$(nbd_uri mem)" | grep -qx 67108864 || fail "server stuck behind greedy clients"
touch "$TESTDIR/drain"
for ((i = 0; i < CLIENTS; i++)); do
	wait "${pids[i]}" || fail "greedy client $i failed: $(cat "$TESTDIR/greedy$i.out")"
	grep -qx drained "$TESTDIR/greedy$i.out" || fail "greedy client $i not answered in full"
done
peak=$(hwm mem)
echo "VmHWM after every reply was read: $((peak / 1024)) MiB (bound $((BOUND_KB / 1024)) MiB)"
((stalled < BOUND_KB)) || fail "peak RSS $stalled KiB with stalled clients, bound $BOUND_KB"
((peak < BOUND_KB)) || fail "peak RSS $peak KiB, bound $BOUND_KB"
nbd_stop mem

# -e 1: the second client waits in the backlog until the first leaves.
nbd_start one -e 1 vm1
python3 "$CLIENT" hold "$TESTDIR/one.sock" "$TESTDIR/leave" >"$TESTDIR/hold.out" &
hold=$!
cleanup_fn kill "$hold"
wait_line "$TESTDIR/hold.out" ready
python3 "$CLIENT" queued "$TESTDIR/one.sock" 2 >"$TESTDIR/queued.out" &
queued=$!
cleanup_fn kill "$queued"
wait_line "$TESTDIR/queued.out" queued
touch "$TESTDIR/leave"
wait "$hold" || fail "holding client failed"
wait "$queued" || fail "queued client failed: $(cat "$TESTDIR/queued.out")"
grep -qx served "$TESTDIR/queued.out" || fail "queued client never served"
nbdinfo "$(nbd_uri one)" | grep -q 'can_multi_conn: false' || fail "multi-conn offered with -e 1"
nbd_stop one

# SIGTERM with a client that reads no replies: the server waits its grace
# (10 s) for it, then disconnects it and exits 0 instead of hanging.
nbd_start stop vm1
python3 "$CLIENT" greedy "$TESTDIR/stop.sock" 16 $((32 << 20)) "$TESTDIR/never" \
	>"$TESTDIR/stuck.out" 2>/dev/null &
stuck=$!
cleanup_fn kill "$stuck"
wait_line "$TESTDIR/stuck.out" stalled
pid=$(cat "$TESTDIR/stop.pid")
kill -TERM "$pid"
# 30 s: well past the grace, well before the client gives up (60 s).
wait_until 30 gone "$pid" || fail "server hangs on SIGTERM behind a client reading nothing"
rc=0; wait "$pid" || rc=$?
[ "$rc" = 0 ] || fail "server exited $rc after disconnecting a stuck client"

# Bad values are refused.
rc=0; "$NBD" -e -1 vm1 2>"$TESTDIR/err" || rc=$?
[ "$rc" = 2 ] || fail "-e -1 gave $rc"
grep -q -- "--shared takes a number" "$TESTDIR/err" || fail "no message for -e -1: $(cat "$TESTDIR/err")"
grep -q -- '--shared=NUM' <<<"$("$NBD" --help)" || fail "--help lacks --shared"
echo PASS
