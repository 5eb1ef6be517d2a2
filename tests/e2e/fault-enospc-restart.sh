#!/usr/bin/env bash
# Faults: a full filesystem must not leave the store stuck (issue 13 item
# 8). The store sits on a 48 MiB ext4 on a loop device; a libnbd client
# writes through isocache-nbd until writes fail with ENOSPC, and the
# filesystem stays full from then on. The server is killed (SIGKILL) and
# must start again on the full filesystem (its ownership claim commits
# metadata: the reserve of meta.mdb, docs/FORMAT.md, makes room); the
# flushed data reads back; 40 creates and removes (long names: the
# metadata grows) commit metadata on the
# full filesystem. isocache-admin check must report the space
# the failed writes left in the leaf that no map references, check --repair
# must punch it out (df shows the space back), and every flushed byte must
# still read back after another restart. IC_SEED replays.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/fault-functions.bash"
cd "$TESTDIR"
seed=${IC_SEED:-$RANDOM$RANDOM}
echo "fault-enospc-restart: seed $seed"

fault_small_fs 48M
fault_fill "$seed"

# Still full: SIGKILL, and the server starts again; every block reads as
# written and the flush at the end of verify succeeds.
pid=$(cat full.pid)
kill -9 "$pid"
wait_until 30 gone "$pid" || fail "pid $pid lives on after SIGKILL"
# The client's last writes left some blocks free: take them too.
dd if=/dev/zero of=mnt/filler bs=4k status=none 2>/dev/null || true
df -k mnt | tail -1
nbd_start again --no-cache vm
fault_client again verify
nbd_stop again

# Still full: commands that commit metadata work (the reserve), and
# removing an image gives space back.
df -k mnt | tail -1
long=$(printf 'x%.0s' $(seq 1 120))
for i in $(seq 1 40); do
	$ADMIN create "extra$i-$long" --size 1M >/dev/null 2>err || fail "create extra$i on the full filesystem: $(cat err)"
done
for i in $(seq 1 40); do $ADMIN rm "extra$i-$long" >/dev/null; done

# Space no map references: check names it (leaked space, not a
# disagreement: exit 0), --repair punches it out.
$ADMIN check | tee check.out
grep -q "^unreferenced: disk .* (vm): .* not referenced by its map" check.out ||
	fail "check did not name the unreferenced space"
free_before=$(df -k --output=avail mnt | tail -1)
$ADMIN check --repair | tee repair.out
grep -q "^repaired: .*reclaimed" repair.out || fail "check --repair reclaimed nothing"
free_after=$(df -k --output=avail mnt | tail -1)
echo "free space: $free_before KiB before the repair, $free_after KiB after"
[ "$free_after" -gt "$free_before" ] || fail "the repair freed no space"
$ADMIN check | tee check.out
! grep -q "^unreferenced:" check.out || fail "unreferenced data is left after the repair"

nbd_start last --no-cache vm
fault_client last verify
nbd_stop last
