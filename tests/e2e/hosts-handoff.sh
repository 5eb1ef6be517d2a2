#!/usr/bin/env bash
# Handoff of a vdisk between hosts while a client writes: host a's
# isocache-nbd serves vm, a libnbd client writes and flushes block after
# block through it; host b's isocache-nbd claims vm, which asks a through
# etcd (release/vm/ID). a quiesces, flushes, fences and gives the record up;
# b serves every flushed block, and a refuses further writes. A claimant b
# denies (its policy is never) is refused at once.
source "$(dirname "$0")/hosts-functions.bash"

hosts_writing 2000 --release=always

host_nbd b b --release=never vm
wait "$writer" || true
tail -3 "$TESTDIR/w.log"
grep -q '^error ' "$TESTDIR/w.log" || fail "a kept accepting writes after releasing"
flushed=$(grep -c '^flushed ' "$TESTDIR/w.log")
grep -E 'released (through etcd )?to' "$TESTDIR/a.log" || fail "a did not release: $(cat "$TESTDIR/a.log")"
grep 'released to us through etcd in' "$TESTDIR/b.log" || fail "b did not ask: $(cat "$TESTDIR/b.log")"

# Every flushed block reads back through b; b writes; a refuses to.
owner_check_blocks "$(nbd_uri b)" 0 "$flushed"
echo "$flushed flushed blocks intact on b"
qemu-io -f raw -c "write -P 0x66 0 4k" -c "read -P 0x66 0 4k" "$(nbd_uri b)" >"$TESTDIR/b.io"
qemu_io_done "$TESTDIR/b.io" 2
! qemu-io -f raw -c "write -P 0x55 0 4k" "$(nbd_uri a)" >"$TESTDIR/a.err" 2>&1 || fail "a accepted a write"

# b's policy is never: a claimant on host a is denied at once, not after
# its deadline (the tool waits up to 120 s), and b keeps serving.
t0=$SECONDS
expect_fail 'denied the release' on_host a env ISOCACHE_OWNER_ETCD="$HOST_OWNER_URL" \
	"$OWNERTOOL" "$ISOCACHE_STORE" hold vm 1
((SECONDS - t0 < 20)) || fail "the denial took $((SECONDS - t0)) s"
grep 'denied a release through etcd' "$TESTDIR/b.log" || fail "b did not log its denial"
qemu-io -f raw -c "read -P 0x66 0 4k" "$(nbd_uri b)" >"$TESTDIR/b.io"
qemu_io_done "$TESTDIR/b.io" 1

# A server whose control socket could not be made (its run directory
# unusable) said it cannot be asked to let go: a request through etcd is
# denied too, with that reason, and the server goes on.
"$ADMIN" create --size 16M vm2
ISOCACHE_RUN_DIR=/dev/null/none host_nbd a c --release=always vm2
grep -q 'no control socket' "$TESTDIR/c.log" || fail "c did not warn: $(cat "$TESTDIR/c.log")"
expect_fail 'denied the release' on_host b env ISOCACHE_OWNER_ETCD="$HOST_OWNER_URL" \
	"$OWNERTOOL" "$ISOCACHE_STORE" hold vm2 1
grep -q 'vm2: denied a release through etcd .*: it has no control socket' "$TESTDIR/c.log" ||
	fail "c's denial does not say why: $(cat "$TESTDIR/c.log")"
kill -0 "$(cat "$TESTDIR/c.pid")" || fail "c died on a release request"
nbdinfo --size "$(nbd_uri c)" | grep -qx 16777216 || fail "c stopped serving vm2"
host_nbd_stop c
host_nbd_stop b
host_nbd_stop a
echo PASS
