# Sourced by tests/e2e/fuse-*.sh after functions.sh: skip where FUSE
# cannot work, mount the test store with cleanup at exit, loop devices
# that are always detached.

# fuse_requires [CMD...]: skip (77) without the binary, /dev/fuse or fusermount3.
fuse_requires() {
	[ -x "$FUSE" ] || { echo "SKIP: $FUSE was not built (libfuse3 missing?)" >&2; exit 77; }
	if ! { exec 9<>/dev/fuse; } 2>/dev/null; then
		echo "SKIP: /dev/fuse cannot be opened here: FUSE tests cannot run" >&2
		exit 77
	fi
	exec 9>&-
	requires fusermount3 mountpoint "$@"
}

# fuse_store: an empty store for the test.
fuse_store() { "$ADMIN" init >/dev/null; }

# fuse_mount MNT [OPTIONS...]: mount the test store on MNT (made if
# missing) in the foreground, wait until it is mounted, and unmount and
# kill it at exit. Its pid is in $TESTDIR/fuse-$(basename MNT).pid.
fuse_mount() {
	local mnt=$1
	shift
	mkdir -p "$mnt"
	local pidfile=$TESTDIR/fuse-$(basename "$mnt").pid
	rm -f "$pidfile" # a killed server leaves its own behind
	start_bg "$pidfile" "$FUSE" -f --pid-file "$pidfile" "$@" "$mnt" 2>>"$TESTDIR/fuse.log"
	cleanup_fn fuse_umount "$mnt"
	mountpoint -q "$mnt" || fail "$mnt is not mounted"
}
fuse_pid() { cat "$TESTDIR/fuse-$(basename "$1").pid"; }

# fuse_umount MNT: unmount, retrying while the kernel still releases
# files (a detached loop device closes its file asynchronously); wait for
# the server to exit.
fuse_umount() {
	local mnt=$1 pid
	pid=$(fuse_pid "$mnt" 2>/dev/null || true)
	wait_until 5 _fuse_unmounted "$mnt" || fusermount3 -uz "$mnt"
	if [ -n "$pid" ] && ! wait_until 10 gone "$pid"; then
		echo "FAIL: isocache-fuse (pid $pid) did not exit after unmounting $mnt" >&2
		stacks "$pid"
		return 1
	fi
	fuse_check_log
}

_fuse_unmounted() { ! mountpoint -q "$1" || fusermount3 -u "$1" 2>/dev/null; }

# fuse_check_log: fail when a server reported a sanitizer error or a leak.
fuse_check_log() {
	if grep -qE 'Sanitizer|runtime error' "$TESTDIR/fuse.log" 2>/dev/null; then
		cat "$TESTDIR/fuse.log" >&2
		echo "FAIL: isocache-fuse reported a sanitizer error" >&2
		return 1
	fi
}

# fuse_losetup FILE: attach FILE to a free loop device, named in $FUSE_LOOP.
# fuse_lodetach DEV detaches it; one still attached at exit (a failed
# check on the way) is detached then. Not to be called in $(...): the
# exit's cleanup must be known to this shell, not to a subshell (it was,
# and a failed test left its loop device attached).
_fuse_loops=()
fuse_losetup() {
	FUSE_LOOP=$(losetup -f --show "$1")
	((${#_fuse_loops[@]})) || [ -n "${_fuse_loop_cleanup:-}" ] ||
		{ cleanup_fn _fuse_lodetach_all; _fuse_loop_cleanup=1; }
	_fuse_loops+=("$FUSE_LOOP")
}
fuse_lodetach() {
	local i
	losetup -d "$1"
	for i in "${!_fuse_loops[@]}"; do
		[ "${_fuse_loops[i]}" != "$1" ] || unset '_fuse_loops[i]'
	done
}
_fuse_lodetach_all() {
	local dev
	for dev in "${_fuse_loops[@]}"; do losetup -d "$dev" || true; done
}

# fuse_retry CMD...: run CMD until it succeeds, for up to 5 s (ownership is
# released when the kernel's last release of a file reaches the server).
fuse_retry() {
	wait_until 5 _fuse_quiet "$@" || "$@"
}
_fuse_quiet() { "$@" 2>/dev/null; }

# fuse_errno FILE MODE: try os.open(FILE, MODE) and print the errno name
# ("OK" on success).
fuse_errno() {
	python3 - "$1" "$2" <<'PY'
import errno, os, sys
try:
    os.close(os.open(sys.argv[1], getattr(os, sys.argv[2])))
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
PY
}
