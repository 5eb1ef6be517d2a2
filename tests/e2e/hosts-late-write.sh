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
# server on b claims vm without a takeover, on the same leaf. An admin
# command that leaves the leaf itself also ends the hold: a server on a
# stopped the same way, `isocache-admin snap` from b freezes the leaf (and
# the late write fails), and the next server claims vm without a takeover.
# Removing vm and making it again: its first server claims it clean.
HOST_TTL=3
source "$(dirname "$0")/hosts-functions.bash"

_cont() { kill -CONT "$1" 2>/dev/null || true; }

# held_write NAME BLOCK: through server NAME on host a (serving vm with a
# delay filter), write block BLOCK = 0x11 and flush, then 0xaa, which the
# filter holds; stop NAME (SIGSTOP) while it holds it. $apid is NAME's pid;
# its client logs to $TESTDIR/client-NAME.log ("late ok|error ..." at the end).
held_write() {
	local name=$1 block=$2
	apid=$(cat "$TESTDIR/$name.pid")
	: >"$TESTDIR/client-$name.log"
	/usr/bin/python3 - "$(nbd_uri "$name")" "$block" >"$TESTDIR/client-$name.log" 2>&1 <<'PY' &
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
off = int(sys.argv[2]) * 65536
h.pwrite(b"\x11" * 65536, off)
h.flush()
print("first flushed", flush=True)
try:
    h.pwrite(b"\xaa" * 65536, off)
    print("late ok", flush=True)
except nbd.Error as e:
    print("late error", e, flush=True)
PY
	cleanup_fn kill_job "$!"
	wait_until 30 grep -q '^first flushed' "$TESTDIR/client-$name.log" ||
		fail "$name's client: $(cat "$TESTDIR/client-$name.log")"
	# Held once one of its threads sleeps in the delay filter:
	# clock_nanosleep (230) on CLOCK_MONOTONIC (1) with TIMER_ABSTIME (1),
	# which nothing else in isocache-nbd calls.
	wait_until 10 _held || fail "$name's second write never reached its delay filter"
	kill -STOP "$apid"
	cleanup_fn _cont "$apid"
	echo "$name stopped with a write held past its lease check"
}
_held() { cat "/proc/$apid/task/"*/syscall 2>/dev/null | grep -q '^230 0x1 0x1 '; }

# late_write_fails NAME: resume NAME; its held write must fail. On this
# filesystem the frozen layer is immutable: the late write goes nowhere.
# (Where the flag is not kept, it lands in the frozen layer, which the new
# owner reads only where its own leaf has nothing.)
late_write_fails() {
	kill -CONT "$apid"
	wait_until 30 grep -q '^late ' "$TESTDIR/client-$1.log" ||
		fail "$1's late write never completed: $(cat "$TESTDIR/client-$1.log")"
	tail -1 "$TESTDIR/client-$1.log"
	grep -q '^late error' "$TESTDIR/client-$1.log" || fail "$1's late write succeeded"
}

# claims_clean NAME WHY [PATTERN OFFSET]: a server NAME on host b claims vm
# without a takeover (else fail saying WHY), reads 64 KiB of PATTERN at
# OFFSET (when given), and stops.
claims_clean() {
	host_nbd b "$1" --release=never vm
	! grep -q 'never released it' "$TESTDIR/$1.log" || fail "$2"
	if [ -n "${3:-}" ]; then
		qemu-io -f raw -c "read -P $3 $4 64k" "$(nbd_uri "$1")" >"$TESTDIR/b.io"
		qemu_io_done "$TESTDIR/b.io" 1
	fi
	host_nbd_stop "$1"
}

# takeovers: how many vm@takeover- snapshots there are.
takeovers() { "$ADMIN" ls | grep -c '^vm@takeover-' || true; }

hosts_serving --release=never --filter delay:write=3s
held_write a 0

host_nbd b b --release=never vm
grep -q 'never released it' "$TESTDIR/b.log" || fail "b took no notice of a's claim: $(cat "$TESTDIR/b.log")"
grep -o 'its leaf is frozen as [^ ,]*' "$TESTDIR/b.log" || fail "b did not leave a's leaf: $(cat "$TESTDIR/b.log")"
qemu-io -f raw -c "write -P 0xbb 0 64k" -c flush "$(nbd_uri b)" >"$TESTDIR/b.io"
qemu_io_done "$TESTDIR/b.io" 1

late_write_fails a
qemu-io -f raw -c "read -P 0xbb 0 64k" "$(nbd_uri b)" >"$TESTDIR/b.io" ||
	fail "b's flushed block 0 was overwritten: $(cat "$TESTDIR/b.io")"
qemu_io_done "$TESTDIR/b.io" 1
echo "b's flushed block intact after a's late write"
[ "$(takeovers)" = 1 ] || fail "not one vm@takeover snapshot: $("$ADMIN" ls)"
host_nbd_stop a

# A clean release leaves nothing held: the next claim writes on.
host_nbd_stop b
claims_clean b2 "a clean release was taken for a lost owner" 0xbb 0

# An admin snapshot after a lost owner freezes the leaf itself: the late
# write fails, and the next server claims vm clean.
host_nbd a a3 --release=never --filter delay:write=3s vm
held_write a3 1
admin_on_b snap vm@after || fail "the snapshot from b failed"
late_write_fails a3
host_nbd_stop a3
claims_clean b3 "the snapshot's claim left vm held" 0x11 64k
[ "$(takeovers)" = 1 ] || fail "a server after the snapshot froze the leaf again: $("$ADMIN" ls)"

# vm removed and made again: its first server claims it clean.
admin_on_b rm vm
admin_on_b create --size 256M vm
claims_clean b4 "a vdisk made again was taken for held"
echo PASS
