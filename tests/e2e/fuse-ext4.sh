#!/usr/bin/env bash
# The whole stack: a loop device on a vdisk file of the mount, mkfs.ext4,
# a tree of files, sync, unmount, fsck clean; then a snapshot and a linked
# clone made while mounted, whose file system holds the same files.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/fuse-functions.bash"
fuse_requires losetup mkfs.ext4 fsck.ext4 sha256sum
trace_on

fuse_store
"$ADMIN" create vm --size 256M
mnt=$TESTDIR/mnt
fs=$TESTDIR/fs
mkdir -p "$fs"
fuse_mount "$mnt"

fuse_losetup "$mnt/vm"
dev=$FUSE_LOOP
mkfs.ext4 -q -F "$dev"
mount "$dev" "$fs"
cleanup_fn umount -l "$fs"
mkdir -p "$fs/tree/a/b" "$fs/tree/c"
for i in $(seq 1 40); do
	head -c $((RANDOM * 37 + i)) /dev/urandom >"$fs/tree/$((i % 3 == 0 ? 0 : 1))-$i"
done
mv "$fs"/tree/0-* "$fs/tree/a/b/"
head -c 20M /dev/urandom >"$fs/tree/c/big"
(cd "$fs" && find tree -type f -print0 | sort -z | xargs -0 sha256sum) >"$TESTDIR/sums"
sync
umount "$fs"
fsck.ext4 -fn "$dev" || fail "fsck.ext4 found errors"
fuse_lodetach "$dev"

# The loop device lets go of the file asynchronously; snap waits for it.
fuse_retry "$ADMIN" snap vm@fs
"$ADMIN" clone vm@fs copy
[ -e "$mnt/copy" ] || fail "the clone did not appear in the mount"
fuse_losetup "$mnt/copy"
dev=$FUSE_LOOP
fsck.ext4 -fn "$dev" || fail "fsck.ext4 on the clone"
mount "$dev" "$fs"
(cd "$fs" && sha256sum --quiet -c "$TESTDIR/sums") || fail "the clone's files differ"
echo extra >"$fs/tree/extra"
umount "$fs"
fuse_lodetach "$dev"
fuse_umount "$mnt"
"$ADMIN" check
