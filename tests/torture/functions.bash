# Sourced by tests/e2e/torture-*.sh after tests/functions.sh: the store the
# crash torture runs on (a linked clone "vm" of a base whose every block is
# the torture's write 0) and the run itself.

# torture_run nbd|fuse BINARY: IC_TORTURE_KILLS kill points (default 60; the
# long run uses 200 or more), seed IC_SEED or random, printed for replay.
torture_run() {
	local seed=${IC_SEED:-$RANDOM$RANDOM}
	/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd is not installed" >&2; exit 77; }
	cd "$TESTDIR"
	$ADMIN init --cluster-size 16K
	/usr/bin/python3 "$IC_SRC/tests/torture/crash.py" base base.raw
	$ADMIN import base.raw base
	$ADMIN snap base@gold
	$ADMIN clone base@gold vm
	/usr/bin/python3 "$IC_SRC/tests/torture/crash.py" "$1" "$2" "$ISOCACHE_STORE" "$TESTDIR" \
		"${IC_TORTURE_KILLS:-60}" "$seed"
	$ADMIN check
}
