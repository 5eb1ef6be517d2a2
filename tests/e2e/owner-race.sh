#!/usr/bin/env bash
# A race: 20 isocache-nbd processes acquire the same vdisk at once, a few
# rounds over, every other one in a PID namespace of its own (where it is
# pid 1, so no pid in any record means anything to the others: only the
# kernel lock decides). Each writes its id to block 0 and reads it back
# while it owns the vdisk: reading another's id while our writes still
# succeed would mean two owners at once. Every attempt ends in success, a
# clear refusal naming the owner, or EPERM (or a refused connection) once
# it released the vdisk to the next.
# IC_ROUNDS (default 50) rounds, stopping early after IC_RACE_SECS (200).
source "$(dirname "$0")/owner-functions.bash"

RACERS=${IC_RACERS:-20}
ROUNDS=${IC_ROUNDS:-50}
SECS=${IC_RACE_SECS:-200}
owner_vdisk 16M vm
# Without root (or unshare) every racer runs in our namespace. In its own
# namespace a racer gets a pid no other racer and no host process has:
# LMDB marks its readers by locking the byte at their pid in meta.mdb-lock,
# so two openers of one store with the same pid in two namespaces collide
# (the second cannot open the store; docs/DECISIONS.md).
NS=()
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
	NS=(unshare --pid --fork --kill-child --mount-proc "$NS_DROP_MOUNTS"
		sh -c 'echo "$0" >/proc/sys/kernel/ns_last_pid && "$@"')
fi
cat >"$TESTDIR/probe.py" <<'PY'
import nbd, sys, time
uri, me = sys.argv[1], int(sys.argv[2])
h = nbd.NBD()
mine = me.to_bytes(4, "little") * 1024
try:
    h.connect_uri(uri)
    h.pwrite(mine, 0)
    h.flush()
    for _ in range(5):
        time.sleep(0.01)
        got = h.pread(4096, 0)
        if got != mine:
            print("VIOLATION: racer %d read %r" % (me, got[:4]), flush=True)
            sys.exit(9)
except nbd.Error as e:
    # Released to the next racer: writes get EPERM, a new connection is
    # refused at NBD_OPT_GO.
    if "EPERM" not in str(e) and "policy prevents" not in str(e):
        raise
    sys.exit(3)
PY

start=$(date +%s)
for round in $(seq "$ROUNDS"); do
	pids=()
	for r in $(seq "$RACERS"); do
		id=$((round * 1000 + r))
		wrap=()
		((r % 2)) && [ ${#NS[@]} -gt 0 ] && wrap=("${NS[@]}" $((1000000 + id)))
		"${wrap[@]}" "$NBD" --store "$ISOCACHE_STORE" --release=always \
			--run "/usr/bin/python3 $TESTDIR/probe.py \"\$uri\" $id" vm \
			>"$TESTDIR/r$id.out" 2>"$TESTDIR/r$id.err" &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		rc=0
		wait "${pids[i]}" || rc=$?
		id=$((round * 1000 + i + 1))
		case $rc in
		0 | 3) ;;
		1) grep -q "vm is owned by isocache-nbd pid" "$TESTDIR/r$id.err" ||
			fail "racer $id refused without naming the owner: $(cat "$TESTDIR/r$id.err")" ;;
		*) cat "$TESTDIR/r$id.out" "$TESTDIR/r$id.err"; fail "racer $id ended with $rc" ;;
		esac
	done
	grep -h VIOLATION "$TESTDIR"/r*.out && fail "two owners at once"
	# Bounded: stop after SECS on a slow or busy machine (3 rounds at least).
	if [ "$round" -ge 3 ] && [ $(($(date +%s) - start)) -ge "$SECS" ]; then
		ROUNDS=$round
		break
	fi
done
echo "rounds $ROUNDS x $RACERS racers done in $(($(date +%s) - start)) s;" \
	"$(cat "$TESTDIR"/r*.err | grep -c 'released to us') handoffs"
[ "$(owner_pid vm)" = 0 ] || fail "vm still owned after every racer exited"
echo PASS
