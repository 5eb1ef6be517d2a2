#!/usr/bin/env bash
# A live snapshot while a client writes through isocache-nbd: the owner
# takes it without disconnecting anyone, the client never sees an error,
# and the snapshot holds a prefix of the writes: everything flushed before
# the snapshot began, nothing issued after it ended.
source "$(dirname "$0")/owner-functions.bash"

N=600
owner_vdisk 64M vm
nbd_start a --release=never vm
touch "$TESTDIR/w.log"
owner_writer "$(nbd_uri a)" 0 "$N" "$TESTDIR/w.log" &
writer=$!
cleanup_fn kill "$writer"
wait_until 60 lines_at_least 30 "$TESTDIR/w.log" || fail "the writer did not start"
before=$(grep -c '^flushed ' "$TESTDIR/w.log")
"$ADMIN" snap vm@s1 2>"$TESTDIR/snap.err"
after=$(grep -c '^flushed ' "$TESTDIR/w.log")
cat "$TESTDIR/snap.err"
grep -q 'taken live by the owner' "$TESTDIR/snap.err" || fail "the snapshot was not taken by the owner"
wait "$writer"
! grep '^error' "$TESTDIR/w.log" || fail "the client saw an error"
[ "$(grep -c '^flushed ' "$TESTDIR/w.log")" = "$N" ] || fail "writes missing"
[ "$before" -lt "$after" ] || [ "$before" -lt "$N" ] || fail "the writer finished before the snapshot"

# vm holds everything; vm@s1 a prefix [0, m) with before <= m <= after + 1.
owner_check_blocks "$(nbd_uri a)" 0 "$N"
nbd_start s -r vm@s1
/usr/bin/python3 - "$(nbd_uri s)" "$N" "$before" "$after" <<'PY'
import nbd, sys
uri, n, before, after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
h = nbd.NBD()
h.connect_uri(uri)
blocks = [h.pread(65536, i * 65536) for i in range(n)]
m = 0
while m < n and blocks[m] == bytes([m % 251 + 1]) * 65536:
    m += 1
for i in range(m, n):
    if blocks[i] != bytes(65536):
        sys.exit("snapshot block %d is neither the pattern of a prefix nor zero" % i)
print("snapshot holds blocks [0, %d); flushed before %d, after %d" % (m, before, after))
if not before <= m <= after + 1:
    sys.exit("snapshot prefix %d outside [%d, %d]" % (m, before, after + 1))
PY
nbd_stop s
nbd_stop a
echo PASS
