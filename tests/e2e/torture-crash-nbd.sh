#!/usr/bin/env bash
# Crash torture through isocache-nbd: SIGKILL at random moments under
# random writes, flushes and FUA; every block must read as flushed or as a
# later write (tests/torture/crash.py). IC_TORTURE_KILLS, IC_SEED.
source "$(dirname "$0")/../functions.sh"
source "$IC_SRC/tests/torture/functions.bash"
torture_run nbd "$NBD"
