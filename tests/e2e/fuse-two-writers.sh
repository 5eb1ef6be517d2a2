#!/usr/bin/env bash
# One writer per vdisk: while one mount holds vm open for write, a second
# mount (another process) gets EBUSY opening it for write, yet may read it;
# isocache-admin's snapshot is taken live by the owner. Within one
# mount, writable descriptors share the one claim. Nothing is corrupted,
# and the vdisk is free again once the first writer closes.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/fuse-functions.bash"
fuse_requires python3 cmp
trace_on

fuse_store
random_image "$TESTDIR/base.raw" 8
"$ADMIN" import "$TESTDIR/base.raw" vm
a=$TESTDIR/a
b=$TESTDIR/b
fuse_mount "$a"
fuse_mount "$b"

head -c 1M /dev/urandom >"$TESTDIR/one"
head -c 1M /dev/urandom >"$TESTDIR/two"
exec 3<>"$a/vm"
cleanup_fn exec 3>&-
[ "$(fuse_errno "$a/vm" O_RDWR)" = OK ] || fail "a second descriptor in the owning mount"
dd if="$TESTDIR/one" of="$a/vm" bs=1M seek=2 conv=notrunc,fsync status=none
[ "$(fuse_errno "$b/vm" O_WRONLY)" = EBUSY ] || fail "second writer was not refused"
[ "$(fuse_errno "$b/vm" O_RDWR)" = EBUSY ] || fail "second writer (O_RDWR) was not refused"
grep -q "owned by isocache-fuse" "$TESTDIR/fuse.log" || fail "EBUSY not logged with the owner"
# A snapshot of a vdisk this mount writes is taken live, by the owner.
"$ADMIN" snap vm@during || fail "live snapshot of a vdisk a mount writes"
cp "$TESTDIR/base.raw" "$TESTDIR/during"
dd if="$TESTDIR/one" of="$TESTDIR/during" bs=1M seek=2 conv=notrunc status=none
"$ADMIN" export vm@during "$TESTDIR/during.raw"
cmp "$TESTDIR/during.raw" "$TESTDIR/during" || fail "the live snapshot lacks the flushed write"
dd if="$TESTDIR/two" of="$b/vm" bs=1M seek=2 conv=notrunc status=none 2>/dev/null &&
	fail "dd through the second mount wrote"
# A reader in the other mount sees the flushed data.
cmp -n 1M -i 2M:0 "$b/vm" "$TESTDIR/one" || fail "reader in the second mount"
exec 3>&-

# Closed: the second mount can take it now, and sees the first's writes.
fuse_retry python3 -c "import os; os.close(os.open('$b/vm', os.O_WRONLY))"
dd if="$TESTDIR/two" of="$b/vm" bs=1M seek=5 conv=notrunc,fsync status=none
cp "$TESTDIR/base.raw" "$TESTDIR/expect"
dd if="$TESTDIR/one" of="$TESTDIR/expect" bs=1M seek=2 conv=notrunc status=none
dd if="$TESTDIR/two" of="$TESTDIR/expect" bs=1M seek=5 conv=notrunc status=none
cmp "$b/vm" "$TESTDIR/expect" || fail "second mount's view"
cmp "$a/vm" "$TESTDIR/expect" || fail "first mount's view after the handover"
fuse_umount "$a"
fuse_umount "$b"
"$ADMIN" export vm "$TESTDIR/out.raw"
cmp "$TESTDIR/out.raw" "$TESTDIR/expect" || fail "export"
"$ADMIN" check
