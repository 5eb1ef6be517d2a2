#!/usr/bin/env bash
# A hung owner (SIGSTOP): a release request times out with a message naming
# the owner; takeover --force kills it, and none of the writes queued to it
# land afterwards.
source "$(dirname "$0")/owner-functions.bash"

owner_vdisk 16M vm
nbd_start a --release=always vm
apid=$(cat "$TESTDIR/a.pid")
qemu-io -f raw -c "write -P 0x21 0 1M" -c flush "$(nbd_uri a)" >/dev/null
# A client connects and finishes its handshake, then the owner stops, then
# the client sends a write of 0x99: it is fully sent (libnbd has nothing left
# to write and awaits the reply), so it sits queued at the hung owner.
/usr/bin/python3 - "$(nbd_uri a)" "$TESTDIR/client" <<'PY' &
import nbd, os, select, sys, time
uri, state = sys.argv[1], sys.argv[2]
h = nbd.NBD()
h.connect_uri(uri)
open(state + ".connected", "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(state + ".go"):
    if time.monotonic() > deadline:
        sys.exit("no go")
    time.sleep(0.02)
cookie = h.aio_pwrite(b"\x99" * 65536, 0)
while h.aio_get_direction() & nbd.AIO_DIRECTION_WRITE:
    if time.monotonic() > deadline:
        sys.exit("the write was never sent")
    select.select([], [h.aio_get_fd()], [], 0.1)
    h.aio_notify_write()
with open(state + ".queued", "w") as f:
    f.write("queued\n")
try:
    while not h.aio_command_completed(cookie):
        h.poll(-1)
    print("the queued write completed")
except nbd.Error as e:
    print("the queued write failed: %s" % e)
PY
client=$!
cleanup_fn kill "$client"
wait_until 30 test -e "$TESTDIR/client.connected" || fail "the client did not connect"
kill -STOP "$apid"
cleanup_fn kill -CONT "$apid"
touch "$TESTDIR/client.go"
wait_until 30 test -e "$TESTDIR/client.queued" || fail "the client's write was not sent"

rc=0
"$ADMIN" owner release vm --timeout 1 2>"$TESTDIR/rel.err" || rc=$?
cat "$TESTDIR/rel.err"
[ "$rc" = 1 ] || fail "release of a hung owner returned $rc"
grep -q "vm is owned by isocache-nbd pid $apid (open vm) since .*; it did not answer a release request within 1 s; use --force to take it over" \
	"$TESTDIR/rel.err" || fail "unclear timeout message"

"$ADMIN" owner takeover vm --force --timeout 1 2>"$TESTDIR/take.err"
cat "$TESTDIR/take.err"
grep -q "killing its owner isocache-nbd pid $apid" "$TESTDIR/take.err" || fail "the kill was not logged"
! kill -0 "$apid" 2>/dev/null || fail "the old owner still runs"
wait "$client" 2>/dev/null || true

# The queued write of 0x99 never landed: the data is still 0x21.
nbd_start b -r vm
qemu-io -f raw -r -c "read -P 0x21 0 1M" "$(nbd_uri b)" >/dev/null || fail "a queued write landed"
nbd_stop b
echo PASS
