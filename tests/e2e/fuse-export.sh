#!/usr/bin/env bash
# Every file of the mount has the bytes `isocache-admin export` gives for
# the same image: vdisks, snapshots down a chain, and linked clones,
# including images made while mounted.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/fuse-functions.bash"
fuse_requires cmp python3
trace_on

fuse_store
random_image "$TESTDIR/base.raw" 12
"$ADMIN" import "$TESTDIR/base.raw" base
"$ADMIN" snap base@gold
"$ADMIN" clone base@gold vm1
"$ADMIN" clone base@gold vm2
mnt=$TESTDIR/mnt
fuse_mount "$mnt"

# Unaligned writes across cluster boundaries, then a snapshot of the
# result and one more layer on top, all while mounted.
python3 - "$mnt/vm1" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for off, n in ((1, 100), (65535, 3), (3 << 20, 200000), (12 * 1048576 - 7, 7)):
    os.pwrite(fd, os.urandom(n), off)
os.fsync(fd)
os.close(fd)
PY
fuse_retry "$ADMIN" snap vm1@one
dd if=/dev/urandom of="$mnt/vm1" bs=4k seek=100 count=50 conv=notrunc,fsync status=none
fuse_retry "$ADMIN" snap vm1@two
"$ADMIN" clone vm1@one vm3
dd if=/dev/urandom of="$mnt/vm3" bs=1M seek=5 count=2 conv=notrunc,fsync status=none

listed=$(ls "$mnt" | sort | tr '\n' ' ')
[ "$listed" = "base base@gold vm1 vm1@one vm1@two vm2 vm3 " ] || fail "mount lists: $listed"
for f in "$mnt"/*; do
	img=$(basename "$f")
	"$ADMIN" export "$img" "$TESTDIR/out.raw"
	cmp "$f" "$TESTDIR/out.raw" || fail "$img differs from its export"
	[ "$(stat -c %s "$f")" = "$(stat -c %s "$TESTDIR/out.raw")" ] || fail "$img: size"
	rm "$TESTDIR/out.raw"
done
cmp "$mnt/base@gold" "$TESTDIR/base.raw" || fail "base@gold differs from the imported file"
fuse_umount "$mnt"
"$ADMIN" check
