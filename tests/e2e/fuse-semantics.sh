#!/usr/bin/env bash
# What the files of the mount promise: modes and sizes, st_blocks from the
# allocation, mtime of the last write, truncate refused (EPERM), snapshots
# read-only (EROFS), fallocate punch-hole and zero-range, SEEK_DATA and
# SEEK_HOLE; and the lifecycle: refusals before mounting, daemon mode with
# a pid file, SIGTERM unmounting with everything flushed, --filter, -r.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/fuse-functions.bash"
fuse_requires python3 fallocate cmp
trace_on

fuse_store
"$ADMIN" create vm --size 16M
"$ADMIN" snap vm@empty
mnt=$TESTDIR/mnt

# Refused before mounting, with a message saying why.
mkdir -p "$mnt" && touch "$mnt/precious"
rc=0; "$FUSE" -f "$mnt" 2>"$TESTDIR/err" || rc=$?
[ $rc = 2 ] && grep -q 'not empty' "$TESTDIR/err" || fail "non-empty mountpoint: rc $rc"
rm "$mnt/precious"
rc=0; "$FUSE" -f --store "$TESTDIR/nowhere" "$mnt" 2>"$TESTDIR/err" || rc=$?
[ $rc = 1 ] && grep -q 'nowhere' "$TESTDIR/err" || fail "missing store: rc $rc"
rc=0; "$FUSE" --cache sometimes "$mnt" 2>"$TESTDIR/err" || rc=$?
[ $rc = 2 ] || fail "bad --cache accepted"
"$FUSE" --help | grep -q 'MOUNTPOINT' || fail "--help"
mountpoint -q "$mnt" && fail "mounted after refusing"

fuse_mount "$mnt" --filter stats
[ "$(stat -c '%a %s %b' "$mnt/vm")" = "600 16777216 0" ] || fail "vm: $(stat -c '%a %s %b' "$mnt/vm")"
[ "$(stat -c '%a %s' "$mnt/vm@empty")" = "400 16777216" ] || fail "vm@empty: mode or size"
before=$(stat -c %Y "$mnt/vm")
# mtime counts whole seconds: write in a later second than $before.
clock_past() { [ "$(date +%s)" -gt "$1" ]; }
wait_until 5 clock_past "$before" || fail "the clock did not move"
dd if=/dev/urandom of="$TESTDIR/data" bs=1M count=4 status=none
dd if="$TESTDIR/data" of="$mnt/vm" bs=1M seek=2 conv=notrunc,fsync status=none
# The kernel caches attributes for a second: wait for the new ones.
blocks_and_mtime() { [ "$(stat -c %b "$mnt/vm")" = $((4 * 2048)) ] && [ "$(stat -c %Y "$mnt/vm")" -gt "$before" ]; }
wait_until 10 blocks_and_mtime ||
	fail "st_blocks $(stat -c %b "$mnt/vm") (want $((4 * 2048))), mtime $(stat -c %Y "$mnt/vm") (was $before)"

[ "$(fuse_errno "$mnt/vm@empty" O_WRONLY)" = EROFS ] || fail "snapshot opened for write"
truncate -s 1M "$mnt/vm" 2>"$TESTDIR/err" && fail "truncate succeeded"
grep -q 'not permitted' "$TESTDIR/err" || fail "truncate: $(cat "$TESTDIR/err")"
[ "$(stat -c %s "$mnt/vm")" = 16777216 ] || fail "size changed"

# Punch 1 MiB and zero 64 KiB + 5 bytes inside the data, then compare
# with the expected image and check the allocation map seen by lseek.
fallocate -p -o 3M -l 1M "$mnt/vm"
fallocate -z -o $((4 << 20)) -l 65541 "$mnt/vm"
python3 - "$mnt/vm" "$TESTDIR/data" <<'PY'
import os, sys
M = 1 << 20
exp = bytearray(16 * M)
exp[2 * M:6 * M] = open(sys.argv[2], "rb").read()
exp[3 * M:4 * M] = bytes(M)
exp[4 * M:4 * M + 65541] = bytes(65541)
fd = os.open(sys.argv[1], os.O_RDONLY)
got = os.pread(fd, 16 * M, 0)
assert got == bytes(exp), "contents after punch/zero"
assert os.lseek(fd, 0, os.SEEK_DATA) == 2 * M
assert os.lseek(fd, 2 * M, os.SEEK_HOLE) == 3 * M
assert os.lseek(fd, 3 * M + 5, os.SEEK_DATA) >= 4 * M
assert os.lseek(fd, 6 * M, os.SEEK_HOLE) == 6 * M
assert os.lseek(fd, 7 * M, os.SEEK_HOLE) == 7 * M
try:
    os.lseek(fd, 6 * M, os.SEEK_DATA)
    raise SystemExit("SEEK_DATA found data past the last extent")
except OSError as e:
    assert e.errno == 6, e  # ENXIO
os.close(fd)
PY
# Images removed while mounted disappear from the listing.
"$ADMIN" create gone --size 1M
[ -e "$mnt/gone" ] || fail "a new vdisk did not appear"
"$ADMIN" rm gone
ls "$mnt" | grep -qx gone && fail "a removed vdisk is still listed"
fuse_umount "$mnt"

# Daemon mode: the command returns once mounted; SIGTERM unmounts after
# flushing (no fsync here: the final flush must do it).
"$FUSE" --pid-file "$TESTDIR/daemon.pid" "$mnt" || fail "daemon start"
pid=$(cat "$TESTDIR/daemon.pid")
cleanup_fn kill "$pid"
cleanup_fn fusermount3 -uz "$mnt"
mountpoint -q "$mnt" || fail "daemon: not mounted"
dd if=/dev/urandom of="$TESTDIR/more" bs=64k count=3 status=none
dd if="$TESTDIR/more" of="$mnt/vm" bs=64k seek=200 conv=notrunc status=none
kill -TERM "$pid"
wait_until 10 gone "$pid" || fail "daemon still runs after SIGTERM"
mountpoint -q "$mnt" && fail "still mounted after SIGTERM"
[ -e "$TESTDIR/daemon.pid" ] && fail "pid file left behind"
"$ADMIN" export vm "$TESTDIR/out.raw"
cmp -n $((3 << 16)) -i $((200 << 16)):0 "$TESTDIR/out.raw" "$TESTDIR/more" || fail "unflushed write lost at SIGTERM"
"$ADMIN" check

# -r: nothing opens for write.
fuse_mount "$mnt" -r
[ "$(fuse_errno "$mnt/vm" O_RDWR)" = EROFS ] || fail "-r: vm opened for write"
[ "$(stat -c %a "$mnt/vm")" = 400 ] || fail "-r: mode"
cmp -n 1M "$mnt/vm" "$TESTDIR/out.raw" || fail "-r: contents"
fuse_umount "$mnt"
