#!/usr/bin/env bash
# Faults: a real ENOSPC. The store sits on a 64 MiB ext4 on a loop device
# with a ballast file; a libnbd client writes until the filesystem is full.
# Only failing writes (and flushes) see ENOSPC or EIO, reads keep working
# and every block reads as written (a failed write: old or new). Once the
# ballast is removed, writes and flushes work again, flushed data survives
# SIGKILL and a restart, and isocache-admin check passes. IC_SEED replays.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/fault-functions.bash"
requires losetup mkfs.ext4 mount umount
[ "$(id -u)" = 0 ] || { echo "SKIP: loop devices and mount need root" >&2; exit 77; }
cd "$TESTDIR"
seed=${IC_SEED:-$RANDOM$RANDOM}
echo "fault-enospc: seed $seed"

truncate -s 64M fs.img
loop=$(losetup -f --show fs.img) || { echo "SKIP: no loop device" >&2; exit 77; }
cleanup_fn losetup -d "$loop"
mkfs.ext4 -q -F -m 0 "$loop"
mkdir mnt
mount "$loop" mnt
cleanup_fn umount -l "$TESTDIR/mnt"
export ISOCACHE_STORE=$TESTDIR/mnt/store
fallocate -l 8M mnt/ballast

nbd_store
$ADMIN create vm --size 256M
nbd_start full --no-cache vm
out=$(fault_client full run 1500 "$seed" 64 ENOSPC,EIO)
echo "$out"
grep -q 'ENOSPC=[1-9]' <<<"$out" || fail "the filesystem never filled up"
df -h mnt | tail -1

# Free the ballast: writes and flushes work again, and everything reads back.
rm mnt/ballast
fault_client full verify
fault_client full run 100 "$((seed + 1))" 4 none
fault_client full verify

fault_crash_restart full again
