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
cd "$TESTDIR"
seed=${IC_SEED:-$RANDOM$RANDOM}
echo "fault-enospc: seed $seed"

fault_small_fs 64M
fallocate -l 8M mnt/ballast
fault_fill "$seed"

# Free the ballast: writes and flushes work again, and everything reads back.
rm mnt/ballast
fault_client full verify
fault_client full run 100 "$((seed + 1))" 4 none
fault_client full verify

fault_crash_restart full again
