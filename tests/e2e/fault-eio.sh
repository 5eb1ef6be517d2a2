#!/usr/bin/env bash
# Faults: the error filter fails reads, writes and flushes at random (EIO)
# under a libnbd client. Only the failing requests see errors, the server
# keeps serving, and once the filter is removed live every block reads as
# written (or, for a failed write, old or new); flushed data survives
# SIGKILL and a restart; isocache-admin check passes. IC_FAULT_OPS sets the
# number of requests (default 1500); IC_SEED replays a run.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/fault-functions.bash"
cd "$TESTDIR"
seed=${IC_SEED:-$RANDOM$RANDOM}
ops=${IC_FAULT_OPS:-1500}
echo "fault-eio: seed $seed, $ops requests"

nbd_store 16K
$ADMIN create vm --size 16M
nbd_start faulty --no-cache --filter "error:read=0.1:write=0.1:flush=0.2:seed=$seed" vm
out=$(fault_client faulty run "$ops" "$seed" 16 EIO)
echo "$out"
seen=$(sed -n 's/.*errors EIO=\([0-9]*\).*/\1/p' <<<"$out")
injected=$($ADMIN filter ls vm --json | /usr/bin/python3 -c '
import json, sys
print(next(f["report"]["injected"] for f in json.load(sys.stdin) if f["name"] == "error"))')
echo "fault-eio: $injected faults injected"
[ "$injected" -gt 0 ] || fail "the error filter injected nothing"
# A request fails only for a fault of its own (a background commit's flush
# may take some of them, a request with several segments more than one).
[ "${seen:-0}" -le "$injected" ] || fail "the client saw $seen errors for $injected faults"

# Live removal: the same server now answers everything.
$ADMIN filter rm vm error
fault_client faulty run 300 "$((seed + 1))" 16 none
fault_client faulty verify

# Everything acknowledged has been flushed: it survives SIGKILL.
fault_crash_restart faulty clean
