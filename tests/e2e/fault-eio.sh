#!/usr/bin/env bash
# Faults: the error filter fails reads, writes and flushes at random (EIO)
# under a libnbd client. Only the failing requests see errors, the server
# keeps serving, and once the filter is removed live every block reads as
# written (or, for a failed write, old or new); flushed data survives
# SIGKILL and a restart; isocache-admin check passes. IC_FAULT_OPS sets the
# number of requests (default 1500); IC_SEED replays a run.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd is not installed" >&2; exit 77; }
cd "$TESTDIR"
seed=${IC_SEED:-$RANDOM$RANDOM}
ops=${IC_FAULT_OPS:-1500}
client() { /usr/bin/python3 "$IC_SRC/tests/e2e/fault-client.py" "$TESTDIR/$1.sock" state "${@:2}"; }
echo "fault-eio: seed $seed, $ops requests"

nbd_store 16K
$ADMIN create vm --size 16M
nbd_start faulty --no-cache --filter "error:read=0.1:write=0.1:flush=0.2:seed=$seed" vm
client faulty run "$ops" "$seed" 16 EIO
injected=$($ADMIN filter ls vm | /usr/bin/python3 -c '
import json, sys
print(next(f["report"]["injected"] for f in json.load(sys.stdin) if f["name"] == "error"))')
echo "fault-eio: $injected faults injected"
[ "$injected" -gt 0 ] || fail "the error filter injected nothing"

# Live removal: the same server now answers everything.
$ADMIN filter rm vm error
client faulty run 300 "$((seed + 1))" 16 none
client faulty verify

# Everything acknowledged has been flushed: it survives SIGKILL.
kill -9 "$(cat faulty.pid)"
while kill -0 "$(cat faulty.pid)" 2>/dev/null; do sleep 0.1; done
nbd_start clean --no-cache vm
client clean verify
$ADMIN check
