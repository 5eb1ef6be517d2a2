#!/usr/bin/env bash
# "Lock held, no record" is the moment inside another process's claim (or
# release): its metadata commit, seconds long on a loaded machine. A claim
# that meets it waits for the outcome instead of refusing a vdisk that is
# about to be free (it refused after 1 s, and tsan/e2e/owner-race failed so).
source "$(dirname "$0")/owner-functions.bash"

owner_vdisk 16M vm
# Stand in for a claimer stuck 3 s in its commit: hold vm's byte of
# owners.lock (an OFD lock, as owner/lock.c takes it) with no record.
/usr/bin/python3 - "$ISOCACHE_STORE/owners.lock" vm "$TESTDIR/held" <<'PY' &
import fcntl, os, struct, sys, time
path, name, flag = sys.argv[1:]
h = 0xcbf29ce484222325
for c in name.encode():
    h = ((h ^ c) * 0x100000001b3) & (2**64 - 1)
F_OFD_SETLK = 37
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
fcntl.fcntl(fd, F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, h >> 2, 1, 0))
open(flag, "w").close()
time.sleep(3)   # the length of the stuck commit this test models
os.close(fd)
PY
holder=$!
cleanup_fn kill "$holder"
wait_until 30 test -e "$TESTDIR/held" || fail "the lock holder did not start"
t0=$(date +%s%N)
"$ADMIN" resize vm --size 32M 2>"$TESTDIR/resize.err" ||
	fail "resize refused while the lock holder was between lock and record: $(cat "$TESTDIR/resize.err")"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$("$ADMIN" info vm --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')" = 33554432 ] ||
	fail "vm was not resized"
echo "resize waited $ms ms for the holder to go"
echo PASS
