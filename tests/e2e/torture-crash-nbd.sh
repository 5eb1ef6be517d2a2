#!/usr/bin/env bash
# Crash torture: SIGKILL isocache-nbd at random moments under random writes,
# flushes and FUA; every block must read as flushed or as a later write.
# IC_TORTURE_KILLS sets the number of kill points (default 60; the long
# run uses 200+). The seed is printed; IC_SEED replays it.
source "$(dirname "$0")/../functions.sh"
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd is not installed" >&2; exit 77; }
cd "$TESTDIR"
seed=${IC_SEED:-$RANDOM$RANDOM}

$ADMIN init --cluster-size 16K
# The base: block b holds content(0, b), as the torture script generates it.
/usr/bin/python3 -c "
import importlib.util, sys
spec = importlib.util.spec_from_file_location('t', '$IC_SRC/tests/torture/crash-nbd.py')
t = importlib.util.module_from_spec(spec); spec.loader.exec_module(t)
with open('base.raw', 'wb') as f:
    for b in range(t.BLOCKS):
        f.write(t.content(0, b))
"
$ADMIN import base.raw base
$ADMIN snap base@gold
$ADMIN clone base@gold vm
/usr/bin/python3 "$IC_SRC/tests/torture/crash-nbd.py" "$NBD" "$ISOCACHE_STORE" "$TESTDIR" \
	"${IC_TORTURE_KILLS:-60}" "$seed"
$ADMIN check
