#!/usr/bin/env bash
# Ownership handoff seen from NBD: a served vdisk released to another
# process (isocache-admin owner release, or a second server claiming it)
# hangs up the old server's connections to it, refuses new ones naming the
# new owner, and the data acknowledged before is all there for the next.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires nbdsh nbdinfo qemu-io
trace_on

nbd_store
"$ADMIN" create --size 16M vm
nbd_start a --release always vm

# A client on a writes, then the vdisk is released under it.
nbdsh -u "$(nbd_uri a)" -c "
import subprocess
h.pwrite(b'before' * 1000, 65536)
r = subprocess.run(['$ADMIN', '--store', '$ISOCACHE_STORE', 'owner', 'release', 'vm'],
                   capture_output=True, text=True)
print(r.stdout, r.stderr)
assert r.returncode == 0, r
try:
    h.pread(4096, 0)
    raise AssertionError('read served after the release')
except nbd.Error as e:
    print('after release:', e)
# The server hangs up (after answering what was in flight, so a request
# may still get EPERM first): soon a request finds the connection gone.
import time
deadline = time.monotonic() + 30
while not (h.aio_is_dead() or h.aio_is_closed()):
    assert time.monotonic() < deadline, 'connection still open 30 s after the release'
    try:
        h.pread(4096, 0)
        raise AssertionError('read served after the release')
    except nbd.Error as e:
        print('then:', e)
    time.sleep(0.05)
" || fail "connection not ended by the release"

# A second server claims it and sees the data written through the first.
# (--release=never: by default an unused b would hand vm back to a's next
# client, as owner-quiet-client.sh shows.)
nbd_start b --release=never vm
qemu-io -f raw -c "read -P 0x62 65536 1" "$(nbd_uri b)" | tee "$TESTDIR/log"
! grep -q 'verification failed' "$TESTDIR/log" || fail "data lost in the handoff"
cmp <(nbdsh -u "$(nbd_uri b)" -c 'import sys; sys.stdout.buffer.write(h.pread(6000, 65536))') \
	<(python3 -c 'import sys; sys.stdout.buffer.write(b"before" * 1000)') || fail "data differs"

# The first server refuses new clients of vm and names the new owner.
# (libnbd shows the server's message only in its debug output.)
! LIBNBD_DEBUG=1 nbdinfo "$(nbd_uri a)" 2>"$TESTDIR/err" || fail "released export still served"
cat "$TESTDIR/err"
grep -q "server error message: vm is owned by isocache-nbd open vm (pid $(cat "$TESTDIR/b.pid"))" \
	"$TESTDIR/err" || fail "new owner not named"
nbd_stop b
nbd_stop a
