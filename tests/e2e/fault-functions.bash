# Helpers for the tests/e2e/fault-*.sh scripts (sourced after
# tests/functions.sh and nbd-functions.bash; not a test itself).

/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd is not installed" >&2; exit 77; }

# fault_small_fs SIZE: a SIZE ext4 on a loop device mounted at
# $TESTDIR/mnt (unmounted and detached at exit), with the store in it and
# an empty store made; skips (77) without root or a loop device.
fault_small_fs() {
	local loop
	requires losetup mkfs.ext4 mount umount
	[ "$(id -u)" = 0 ] || { echo "SKIP: loop devices and mount need root" >&2; exit 77; }
	truncate -s "$1" "$TESTDIR/fs.img"
	loop=$(losetup -f --show "$TESTDIR/fs.img") || { echo "SKIP: no loop device" >&2; exit 77; }
	cleanup_fn losetup -d "$loop"
	mkfs.ext4 -q -F -m 0 "$loop"
	mkdir "$TESTDIR/mnt"
	mount "$loop" "$TESTDIR/mnt"
	cleanup_fn umount -l "$TESTDIR/mnt"
	export ISOCACHE_STORE=$TESTDIR/mnt/store
}

# fault_fill SEED: serve vm (256 MiB, made here) as "full" and write random
# 64-block runs through it (1500 requests) until the filesystem is full;
# writes may fail with ENOSPC or EIO only. Prints the client's summary.
fault_fill() {
	local out
	nbd_store
	$ADMIN create vm --size 256M
	nbd_start full --no-cache vm
	out=$(fault_client full run 1500 "$1" 64 ENOSPC,EIO)
	echo "$out"
	grep -q 'ENOSPC=[1-9]' <<<"$out" || fail "the filesystem never filled up"
	df -k "$TESTDIR/mnt" | tail -1
}

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
	wait_until 30 gone "$pid" || fail "pid $pid lives on after SIGKILL"
	nbd_start "$2" --no-cache vm
	fault_client "$2" verify
	"$ADMIN" check
}
