#!/usr/bin/env bash
# kill -9 of isocache-fuse in the middle of writes: `fusermount3 -u`
# recovers the mount point, data flushed before the kill is intact, the
# store checks clean, and a new mount reclaims the dead owner's vdisk.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/fuse-functions.bash"
fuse_requires cmp
trace_on

fuse_store
random_image "$TESTDIR/base.raw" 16
"$ADMIN" import "$TESTDIR/base.raw" base
"$ADMIN" snap base@gold
"$ADMIN" clone base@gold vm
mnt=$TESTDIR/mnt
fuse_mount "$mnt"

head -c 4M /dev/urandom >"$TESTDIR/flushed"
dd if="$TESTDIR/flushed" of="$mnt/vm" bs=1M seek=1 conv=notrunc,fsync status=none
# Unflushed writes all over the rest of the disk, in flight at the kill.
(while :; do
	dd if=/dev/urandom of="$mnt/vm" bs=64k seek=$((RANDOM % 150 + 96)) count=4 \
		conv=notrunc status=none || exit 0
	echo >>"$TESTDIR/writes"
done) &
writer=$!
cleanup_fn kill "$writer"
wrote() { [ "$(wc -l <"$TESTDIR/writes" 2>/dev/null || echo 0)" -ge 10 ]; }
wait_until 60 wrote || fail "the writer did not write 10 times within 60 s"
kill -9 "$(fuse_pid "$mnt")"
wait "$writer" || true
ls "$mnt" 2>/dev/null && fail "the mount still answers after kill -9"
fusermount3 -u "$mnt" || fail "fusermount3 -u after kill -9"
mountpoint -q "$mnt" && fail "still mounted"

"$ADMIN" check || fail "check after kill -9"
"$ADMIN" export vm "$TESTDIR/out.raw"
cmp -n 4M -i 1M:0 "$TESTDIR/out.raw" "$TESTDIR/flushed" || fail "flushed data lost"
cmp -n 1M "$TESTDIR/out.raw" "$TESTDIR/base.raw" || fail "untouched data changed"
cmp "$TESTDIR/out.raw" "$TESTDIR/base.raw" -i 5M:5M -n 1M || fail "untouched data changed"

# The dead process's claim does not block the next writer.
fuse_mount "$mnt"
dd if="$TESTDIR/flushed" of="$mnt/vm" bs=1M seek=10 count=1 conv=notrunc,fsync status=none ||
	fail "a new mount could not write after kill -9"
cmp "$mnt/base@gold" "$TESTDIR/base.raw" || fail "the snapshot changed"
fuse_umount "$mnt"
"$ADMIN" check
