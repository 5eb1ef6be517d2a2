#!/usr/bin/env bash
# Crash torture through isocache-fuse: SIGKILL at random moments under
# random writes, fsyncs and fdatasyncs on MNT/vm; the mount point is
# recovered with fusermount3 -u -z and every block checked
# (tests/torture/crash.py). IC_TORTURE_KILLS, IC_SEED.
source "$(dirname "$0")/../functions.sh"
source "$IC_SRC/tests/torture/functions.bash"
requires fusermount3
[ -e /dev/fuse ] || { echo "SKIP: no /dev/fuse" >&2; exit 77; }
cleanup_fn fusermount3 -u -z "$TESTDIR/mnt"
torture_run fuse "$FUSE"
