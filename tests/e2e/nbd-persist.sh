#!/usr/bin/env bash
# Data written through NBD survives a server restart (after flush), a
# second server can then export it, and while one server owns a vdisk
# another is refused with a clear message. Every qemu-io run must show
# its requests done: an export it could not open fails the test.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires qemu-io qemu-img
trace_on

nbd_store
"$ADMIN" create --size 16M vm
nbd_start a --release never vm
qemu-io -f raw -c "write -P 0x77 12345 1M" -c "write -P 0x78 -f 9M 4096" -c flush \
	"$(nbd_uri a)" >"$TESTDIR/wlog"
qemu_io_done "$TESTDIR/wlog" 2

# Owned: a second server naming the vdisk is refused and says why.
rc=0
"$NBD" --store "$ISOCACHE_STORE" -k "$TESTDIR/b.sock" vm 2>"$TESTDIR/err" || rc=$?
[ "$rc" = 1 ] || fail "second owner not refused (status $rc)"
cat "$TESTDIR/err"
grep -qi 'own' "$TESTDIR/err" || fail "refusal does not name the owner"
# A store-wide server lists it but refuses to serve it for writing.
nbd_start c
! qemu-io -f raw -c "read 0 4k" "$(nbd_uri c vm)" 2>"$TESTDIR/err2" || fail "GO on owned vdisk"
grep -q 'server reported: vm is owned by isocache-nbd' "$TESTDIR/err2" || fail "no reason given: $(cat "$TESTDIR/err2")"
nbd_stop c

nbd_stop a
nbd_start b vm
qemu-io -f raw -c "read -P 0x77 12345 1M" -c "read -P 0x78 9M 4096" -c "read -P 0 0 12345" \
	"$(nbd_uri b)" | tee "$TESTDIR/log"
qemu_io_done "$TESTDIR/log" 3
nbd_stop b
"$ADMIN" export vm "$TESTDIR/vm.raw"
qemu-io -f raw -c "read -P 0x77 12345 1M" "$TESTDIR/vm.raw" >"$TESTDIR/xlog"
qemu_io_done "$TESTDIR/xlog" 1
