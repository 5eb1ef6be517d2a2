#!/usr/bin/env bash
# The README's first command, on this build: the demo must finish with
# every step ok (it exits non-zero otherwise).
source "$(dirname "$0")/../functions.sh"
requires nbdcopy qemu-io losetup mkfs.ext4 fusermount3 bc
[ -e /dev/fuse ] || { echo "SKIP: no /dev/fuse" >&2; exit 77; }
cd "$TESTDIR"
IC_DEMO_DIR=$TESTDIR/demo IC_DEMO_CLONES=3 bash "$IC_SRC/scripts/demo" >demo.log 2>&1 ||
	{ cat demo.log; fail "the demo failed"; }
grep -q "^stop everything; isocache-admin check  *ok" demo.log || { cat demo.log; fail "summary lacks the last step"; }
grep -q "^remove the demo's store and files (isocache-admin destroy)  *ok" demo.log ||
	{ cat demo.log; fail "the demo did not remove its store"; }
[ ! -e "$TESTDIR/demo" ] || fail "the demo left $(du -sh "$TESTDIR/demo")"
grep -c " ok " demo.log
