#!/usr/bin/env bash
# Release with the FUSE front end: a mount writing vm lets go when asked
# (--release=always), after which its open file answers EROFS; the flushed
# data is there for the next owner.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/fuse-functions.bash"
fuse_requires python3 cmp
trace_on

fuse_store
"$ADMIN" create --size 16M vm
fuse_mount "$TESTDIR/a" --release=always
/usr/bin/python3 - "$TESTDIR/a/vm" "$ADMIN" <<'PY'
import errno, os, subprocess, sys
path, admin = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR)
os.pwrite(fd, b"\x42" * 65536, 0)
os.fsync(fd)
show = subprocess.run([admin, "owner", "show", "vm"], capture_output=True, text=True)
print(show.stdout)
assert "isocache-fuse" in show.stdout, show.stdout
out = subprocess.run([admin, "owner", "release", "vm"], capture_output=True, text=True)
print(out.stdout, out.stderr)
assert out.returncode == 0 and "released after" in out.stdout, out
try:
    os.pwrite(fd, b"\x43" * 65536, 0)
    os.fsync(fd)
except OSError as e:
    assert e.errno == errno.EROFS, e
    print("EROFS after the release")
else:
    sys.exit("the mount wrote after releasing vm")
os.close(fd)
PY
grep -q "vm: released to isocache-admin owner release" "$TESTDIR/fuse.log" || fail "the release was not logged"
"$ADMIN" export vm "$TESTDIR/out.raw"
head -c 65536 "$TESTDIR/out.raw" | cmp - <(head -c 65536 /dev/zero | tr '\0' '\102') ||
	fail "the flushed data is not in the store"
echo PASS
