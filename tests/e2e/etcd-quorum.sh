#!/usr/bin/env bash
# A 3-member etcd cluster loses quorum (two members stopped): an owner's
# lease keeper gives the lease up before its TTL can run out, measured from
# the last renewal it sent, and writes fail within the client's timeout with
# an error that names the member and says what happened. Quorum back:
# writes work again.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../etcd.sh"
ETCD_TIMEOUT_MS=2000
etcd_cluster_start

TTL=3
MARGIN_MS=500
# Hold the lease for up to a minute; the keeper renews every TTL/3 = 1 s.
"$ETCDTOOL" -t 2000 "$ETCD_URL" hold /q/owner me $TTL $MARGIN_MS 60 >"$TESTDIR/hold.out" \
	2>"$TESTDIR/hold.err" &
holder=$!
cleanup_fn kill "$holder"
held() { grep -q '^held ' "$TESTDIR/hold.out"; }
wait_until 10 held || fail "no lease held: $(cat "$TESTDIR/hold.err")"

etcd_member_kill 2 TERM
etcd_member_kill 3 TERM
lost_from=$(date +%s%N)
# Timed to the tool's 'lost' line, not its exit (which under ASan includes
# the leak check).
said_lost() { grep -q '^lost after' "$TESTDIR/hold.out"; }
wait_until $((TTL + 2)) said_lost || fail "the keeper still held the lease $((TTL + 2)) s into quorum loss"
lost_ms=$((($(date +%s%N) - lost_from) / 1000000))
wait_until 10 gone "$holder" || fail "the tool did not exit after losing the lease"
wait "$holder" && fail "hold ended well without quorum" || true
cat "$TESTDIR/hold.out"
grep -q '^lost after' "$TESTDIR/hold.out" || fail "no 'lost': $(cat "$TESTDIR/hold.out")"
echo "lease given up ${lost_ms} ms after quorum was lost (TTL ${TTL} s, margin ${MARGIN_MS} ms)"
# The safety bound: the keeper gives up TTL - margin after it SENT its last
# good renewal, so before etcd (which started the TTL later, on receipt)
# can expire the lease; 200 ms of slack for waking the thread on a loaded
# machine, which is still below the TTL.
since=$(sed -n 's/.* \([0-9]*\) ms after the last renewal was sent.*/\1/p' "$TESTDIR/hold.out")
[ -n "$since" ] || fail "no renewal age in: $(cat "$TESTDIR/hold.out")"
((since >= TTL * 1000 - MARGIN_MS)) || fail "lease given up early: ${since} ms after the last renewal"
((since <= TTL * 1000 - MARGIN_MS + 200)) || fail "lease given up late: ${since} ms after the last renewal"
# And as seen from outside: a leader without quorum renews until raft's
# CheckQuorum makes it step down, within two election timeouts (2 x 500 ms;
# ~975 ms seen), so the last renewal may come that late; 500 ms of slack.
((lost_ms <= TTL * 1000 - MARGIN_MS + 1000 + 500)) || fail "lease lost late: ${lost_ms} ms"

# Writes fail within the timeout (2 s) as the tool measured it, clearly.
expect_fail "etcd 127\.0\.0\.1:[0-9]+: (no answer within [0-9]+ ms|.*no leader|.*timed out)" et put /q/w x
ms=$(sed -n 's/.*; after \([0-9]*\) ms)$/\1/p' "$TESTDIR/expect_fail.err")
[ -n "$ms" ] || fail "no time in: $(cat "$TESTDIR/expect_fail.err")"
echo "write without quorum failed after ${ms} ms"
((ms <= 2000 + 200)) || fail "the write took ${ms} ms to fail with a 2000 ms timeout"

etcd_member_start 2
wait_until 20 et put /q/w back >/dev/null || fail "writes did not come back with quorum"
[ "$(et get /q/w)" = back ] || fail "read after quorum came back"
echo "PASS"
