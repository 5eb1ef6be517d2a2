#!/usr/bin/env bash
# isocache-fuse on a store whose metadata is in etcd (docs/MULTI-HOST.md),
# opened as a local one: the mount lists the store's images with their
# bytes, a write through it reaches the map with fsync, and after the
# unmount the admin tool exports what was written.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/fuse-functions.bash"
source "$(dirname "$0")/../etcd.sh"
fuse_requires cmp
etcd_cluster_start
cleanup_fn chattr -R -i "$ISOCACHE_STORE"

"$ADMIN" init --meta "etcd://$ETCD_ENDPOINTS/fuse"
random_image "$TESTDIR/base.raw" 8
"$ADMIN" import "$TESTDIR/base.raw" base
"$ADMIN" snap base@gold
"$ADMIN" clone base@gold vm1
mnt=$TESTDIR/mnt
fuse_mount "$mnt"
listed=$(ls "$mnt" | sort | tr '\n' ' ')
[ "$listed" = "base base@gold vm1 " ] || fail "the mount lists: $listed"
cmp "$TESTDIR/base.raw" "$mnt/base@gold" || fail "base@gold differs through the mount"
cp "$TESTDIR/base.raw" "$TESTDIR/expect.raw"
head -c 300000 /dev/urandom >"$TESTDIR/patch"
dd if="$TESTDIR/patch" of="$mnt/vm1" bs=1k seek=3000 conv=notrunc,fsync status=none
dd if="$TESTDIR/patch" of="$TESTDIR/expect.raw" bs=1k seek=3000 conv=notrunc status=none
cmp "$TESTDIR/expect.raw" "$mnt/vm1" || fail "vm1 reads other bytes than were written"
fuse_umount "$mnt"
"$ADMIN" export vm1 "$TESTDIR/vm1.raw"
cmp "$TESTDIR/expect.raw" "$TESTDIR/vm1.raw" || fail "the write through the mount was lost"
"$ADMIN" check
