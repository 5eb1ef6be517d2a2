#!/usr/bin/env bash
# A claimant waiting for a live owner to release takes no other claimant's
# request going away for a denial (the flaky hosts-claimers: "it denied the
# release" from an owner that never denies). There, a claimant that had
# read an older record put its request attached to that record's lease
# after the record went, and its owner revoked the lease a moment later,
# which deleted the request; with one request key for every claimant, the
# others saw their request go while the new owner stayed. Here a lease of
# the test's stands in for that dying one: b's claimant asks a's holder,
# then a request attached to the stand-in lease is put at release/vm (the
# old shared key) and under it, and the lease is revoked. b keeps waiting,
# and claims vm only once a has let it go.
source "$(dirname "$0")/../functions.sh"
source "$IC_SRC/tests/etcd.sh"
source "$IC_SRC/tests/hosts.sh"
OWNERTOOL=$IC_BUILD/tests/tools/isocache-ownertool
HOLD_S=10
trace_on

hosts_start
mkdir -p "$ISOCACHE_STORE"
requests=/isocache/test/release/vm
on_host_exec a "$OWNERTOOL" "$ISOCACHE_STORE" hold vm "$HOLD_S" \
	>"$TESTDIR/a.out" 2>"$TESTDIR/a.err" &
a=$!
cleanup_fn kill_job "$a"
held() { grep -q '^held ' "$TESTDIR/$1.out"; }
wait_until 30 held a || fail "a did not claim vm: $(cat "$TESTDIR/a.err")"
on_host_exec b "$OWNERTOOL" "$ISOCACHE_STORE" hold vm 0 >"$TESTDIR/b.out" 2>"$TESTDIR/b.err" &
b=$!
cleanup_fn kill_job "$b"
asked() { et list "$requests" | grep -q =; }
wait_until 30 asked || fail "b never asked a to release: $(cat "$TESTDIR/b.err")"

# The stale claimant's request, and its lease's end.
lease=$(et lease-put "$requests" stale 60)
et put "$requests/stale" stale "$lease"
et revoke "$lease"
! et get "$requests/stale" || fail "the stand-in request outlived its lease"

wait "$b" || fail "b gave up while a held vm: $(tail -3 "$TESTDIR/b.err")"
wait "$a" || fail "a failed: $(tail -3 "$TESTDIR/a.err")"
read -r _ ta t0a <"$TESTDIR/a.out"
read -r _ tb t0b <"$TESTDIR/b.out"
[ "$tb" -gt "$ta" ] || fail "b's token $tb is not after a's $ta"
[ "$t0b" -ge $((t0a + HOLD_S * 1000)) ] || fail "b held vm from $t0b, a until $((t0a + HOLD_S * 1000))"
echo "b claimed vm $((t0b - t0a - HOLD_S * 1000)) ms after a let it go"
echo PASS
