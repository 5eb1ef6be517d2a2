#!/usr/bin/env bash
# A hung owner (SIGSTOP): a release request times out with a message naming
# the owner; takeover --force kills it, and none of the writes queued to it
# land afterwards.
source "$(dirname "$0")/owner-functions.bash"

owner_vdisk 16M vm
nbd_start a --release=always vm
apid=$(cat "$TESTDIR/a.pid")
qemu-io -f raw -c "write -P 0x21 0 1M" -c flush "$(nbd_uri a)" >/dev/null
# A client connects, then the owner stops before it serves the write.
kill -STOP "$apid"
cleanup_fn kill -CONT "$apid"
qemu-io -f raw -c "write -P 0x99 0 1M" -c flush "$(nbd_uri a)" >/dev/null 2>&1 &
client=$!
cleanup_fn kill "$client"
sleep 0.3

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
