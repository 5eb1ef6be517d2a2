#!/usr/bin/env bash
# isocache-fuse in the background logs to syslog; where none listens (a
# container without /dev/log) it says so before detaching instead of losing
# every message silently, and --log FILE keeps them in a file.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/fuse-functions.bash"
fuse_requires
cd "$TESTDIR"
fuse_store
"$ADMIN" create vm --size 1M >/dev/null

# bg_mount MNT ARGS...: mount in the background (the parent returns once
# mounted); unmounted and the server waited for at exit.
bg_mount() {
	local mnt=$1
	shift
	mkdir -p "$mnt"
	"$FUSE" --pid-file "$TESTDIR/fuse-$(basename "$mnt").pid" "$@" "$mnt"
	cleanup_fn fuse_umount "$mnt"
	mountpoint -q "$mnt" || fail "$mnt is not mounted"
}

# --log FILE: messages of the background process reach FILE.
bg_mount m1 --log "$TESTDIR/m1.log" 2>m1.err
cmp -s <(head -c 1M m1/vm) <(head -c 1M /dev/zero) || fail "m1/vm does not read as zeroes"
fuse_umount m1
grep -q "isocache-fuse\[[0-9]*\]: .*m1: unmounted" m1.log || fail "the unmount was not logged to --log: $(cat m1.log)"

# Without --log, on a host with no syslog, the mount warns before detaching.
if [ -S /dev/log ]; then
	echo "this host has /dev/log: the no-syslog warning is not tested here"
else
	bg_mount m2 2>m2.err
	grep -q "no syslog listens on /dev/log.*--log FILE" m2.err ||
		fail "no warning about lost messages: $(cat m2.err)"
	fuse_umount m2
fi

# An unwritable --log is said at once, not lost.
bg_mount m3 --log /nonexistent/dir/x.log 2>m3.err
grep -q -- "--log /nonexistent/dir/x.log: No such file or directory" m3.err ||
	fail "an unwritable --log was not reported: $(cat m3.err)"
fuse_umount m3
echo PASS
