#!/usr/bin/env bash
# A write of host a's that passed a's lease check, and then waited (a's
# process stopped past the TTL, as a paused VM or a filesystem client
# holding the data would), must not overwrite what host b writes once it
# has claimed the vdisk. Host a serves vm with a delay filter, which holds
# each write for 3 s after that check; its client writes block 0, and
# while that write is held a is stopped (SIGSTOP). b claims vm when a's
# lease has expired, writes block 0 and flushes; then a goes on, and its
# held write goes down to the layer files. b must still read its own
# block: b found a's held/NAME key (a never released vm), froze a's leaf
# as vm@takeover-TOKEN and writes to a new leaf, so a's late write could
# only reach the frozen layer, and on a filesystem that keeps the
# immutable flag (this one) it fails. Before, b wrote to a's leaf and a's
# late write replaced b's flushed block.
#
# Then a clean release: b stops (SIGTERM, deleting held/NAME) and a new
# server on b claims vm without a takeover, on the same leaf.
HOST_TTL=3
source "$(dirname "$0")/hosts-functions.bash"

hosts_serving --release=never --filter delay:write=3s
apid=$(cat "$TESTDIR/a.pid")

# a's client: block 0 = 0x11 (flushed), then 0xaa (the late one).
/usr/bin/python3 - "$(nbd_uri a)" >"$TESTDIR/client-a.log" 2>&1 <<'PY' &
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
h.pwrite(b"\x11" * 65536, 0)
h.flush()
print("first flushed", flush=True)
try:
    h.pwrite(b"\xaa" * 65536, 0)
    print("late ok", flush=True)
except nbd.Error as e:
    print("late error", e, flush=True)
PY
client=$!
cleanup_fn kill_job "$client"
wait_until 30 grep -q '^first flushed' "$TESTDIR/client-a.log" ||
	fail "a's client: $(cat "$TESTDIR/client-a.log")"

# The late write is held once one of a's threads sleeps in the delay filter:
# clock_nanosleep (230) on CLOCK_MONOTONIC (1) with TIMER_ABSTIME (1), which
# nothing else in isocache-nbd calls.
_held() { cat "/proc/$apid/task/"*/syscall 2>/dev/null | grep -q '^230 0x1 0x1 '; }
wait_until 10 _held || fail "a's second write never reached its delay filter"
kill -STOP "$apid"
_cont() { kill -CONT "$1" 2>/dev/null || true; }
cleanup_fn _cont "$apid"
echo "a stopped with a write held past its lease check"

host_nbd b b --release=never vm
grep -q 'never released it' "$TESTDIR/b.log" || fail "b took no notice of a's claim: $(cat "$TESTDIR/b.log")"
grep -o 'its leaf is frozen as [^ ,]*' "$TESTDIR/b.log" || fail "b did not leave a's leaf: $(cat "$TESTDIR/b.log")"
qemu-io -f raw -c "write -P 0xbb 0 64k" -c flush "$(nbd_uri b)" >"$TESTDIR/b.io"
qemu_io_done "$TESTDIR/b.io" 1

kill -CONT "$apid"
wait_until 30 grep -q '^late ' "$TESTDIR/client-a.log" ||
	fail "a's late write never completed: $(cat "$TESTDIR/client-a.log")"
cat "$TESTDIR/client-a.log"
# On this filesystem the frozen layer is immutable: the late write fails
# there and goes nowhere. (Where the flag is not kept, it lands in the
# frozen layer, which b reads only where its own leaf has nothing.)
grep -q '^late error' "$TESTDIR/client-a.log" || fail "a's late write succeeded"
qemu-io -f raw -c "read -P 0xbb 0 64k" "$(nbd_uri b)" >"$TESTDIR/b.io" ||
	fail "b's flushed block 0 was overwritten: $(cat "$TESTDIR/b.io")"
qemu_io_done "$TESTDIR/b.io" 1
echo "b's flushed block intact after a's late write"
"$ADMIN" ls | grep -E '^vm@takeover-[0-9]+' ||
	fail "no vm@takeover snapshot: $("$ADMIN" ls)"
host_nbd_stop a

# A clean release leaves nothing held: the next claim writes on.
host_nbd_stop b
host_nbd b b2 --release=never vm
! grep -q 'never released it' "$TESTDIR/b2.log" || fail "a clean release was taken for a lost owner"
qemu-io -f raw -c "read -P 0xbb 0 64k" "$(nbd_uri b2)" >"$TESTDIR/b.io"
qemu_io_done "$TESTDIR/b.io" 1
[ "$("$ADMIN" ls | grep -c '^vm@takeover-')" = 1 ] ||
	fail "a clean claim froze the leaf again: $("$ADMIN" ls)"
host_nbd_stop b2
echo PASS
