# Helpers for the tests/e2e/fault-*.sh scripts (sourced after
# tests/functions.sh and nbd-functions.bash; not a test itself).

/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd is not installed" >&2; exit 77; }

# fault_client NAME ARGS...: tests/e2e/fault-client.py against the server
# NAME (nbd_start), with its block states in $TESTDIR/state.
fault_client() {
	/usr/bin/python3 "$IC_SRC/tests/e2e/fault-client.py" "$TESTDIR/$1.sock" "$TESTDIR/state" "${@:2}"
}

# fault_crash_restart OLD NEW: SIGKILL the server OLD once every block has
# been verified and flushed, serve vm again as NEW (without any filter),
# verify every block, and check the store.
fault_crash_restart() {
	local pid
	pid=$(cat "$TESTDIR/$1.pid")
	kill -9 "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	nbd_start "$2" --no-cache vm
	fault_client "$2" verify
	"$ADMIN" check
}
