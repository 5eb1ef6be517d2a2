#!/usr/bin/env bash
# The etcd client (etcd/) against a real 3-member cluster on loopback:
# values survive the base64 trip, one of 20 racing claimers wins the
# compare-and-swap, a lease that is not renewed takes its key with it after
# the TTL while a kept one keeps it, a watch sees puts and deletes in
# order, reads and lease calls move on from a member that hangs or cuts
# the connection, and with a member killed every call goes on through the
# others.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../etcd.sh"
etcd_cluster_start

# Keys and values as given: spaces, '=', '/', non-ASCII.
rev=$(et put "/t/kv/a b" 'x=1/é ü')
[ "$(et get "/t/kv/a b")" = 'x=1/é ü' ] || fail "value changed on the way"
et put /t/kv/c 3 >/dev/null
et put /t/kv0 beyond >/dev/null # sorts right after the prefix range
[ "$(et list /t/kv/ | grep -v '^revision ' | tr '\n' ' ')" = '/t/kv/a b=x=1/é ü /t/kv/c=3 ' ] ||
	fail "prefix range: $(et list /t/kv/)"
if et get /t/kv/none; then fail "an absent key was found"; fi

# Compare-and-swap on mod_revision: the first writer wins, a stale one loses.
[ "$(et cas /t/kv/c 0 again)" = lost ] || fail "cas on an existing key with MOD 0 won"
mod=$(et put /t/kv/c 4)
out=$(et cas /t/kv/c "$mod" 5)
[[ $out == "won "* ]] || fail "cas with the current mod_revision lost: $out"
[ "$(et cas /t/kv/c "$mod" 6 || true)" = lost ] || fail "cas with a stale mod_revision won"
[ "$(et get /t/kv/c)" = 5 ] || fail "the lost cas wrote"

# 20 claimers released at once by one gate: exactly one wins.
pids=()
for i in $(seq 20); do
	et claim /t/claim "claimer-$i" "$TESTDIR/gate" >"$TESTDIR/claim.$i" 2>&1 &
	pids+=($!)
	cleanup_fn kill "$!"
done
touch "$TESTDIR/gate"
for pid in "${pids[@]}"; do wait "$pid" || true; done
winners=$(grep -l '^won ' "$TESTDIR"/claim.* | wc -l)
losers=$(grep -lx 'lost' "$TESTDIR"/claim.* | wc -l)
echo "claim race: $winners won, $losers lost"
[ "$winners" -eq 1 ] && [ "$losers" -eq 19 ] || { cat "$TESTDIR"/claim.*; fail "claim race"; }
winner=$(grep -l '^won ' "$TESTDIR"/claim.*)
[ "$(et get /t/claim)" = "claimer-${winner##*.}" ] || fail "the record is not the winner's"

# A lease never renewed: its key goes once the TTL has passed, not before.
start=$(date +%s%N)
et lease-put /t/lease/short v 2 >/dev/null
[ "$(et get /t/lease/short)" = v ] || fail "the leased key is not there"
key_gone() { ! et get /t/lease/short >/dev/null; }
wait_until 10 key_gone || fail "the key outlived its 2 s lease by 8 s"
ms=$((($(date +%s%N) - start) / 1000000))
echo "leased key gone ${ms} ms after the lease was asked for (TTL 2 s)"
((ms >= 2000)) || fail "the key went before its TTL"

# A lease kept alive by the keeper for three TTLs keeps its key.
out=$(et hold /t/lease/kept v 2 500 6)
echo "$out"
grep -qx 'kept v lease ours' <<<"$out" || fail "the kept lease lost its key: $out"
if et get /t/lease/kept; then fail "the key outlived its revoked lease"; fi

# Watch from a revision: the history, then a live event, in order.
first=$(et put /t/w/a 1)
et put /t/w/b 2 >/dev/null
et del /t/w/a >/dev/null
et watch /t/w/ "$first" 4 >"$TESTDIR/watch.out" &
watcher=$!
cleanup_fn kill "$watcher"
has_lines() { [ "$(wc -l <"$TESTDIR/watch.out")" -ge "$1" ]; }
wait_until 10 has_lines 3 || fail "the watch did not replay the history"
et put /t/w/c 3 >/dev/null
wait "$watcher" || fail "the watch failed"
cat "$TESTDIR/watch.out"
printf 'PUT /t/w/a 1\nPUT /t/w/b 2\nDELETE /t/w/a\nPUT /t/w/c 3\n' >"$TESTDIR/watch.want"
cut -d' ' -f1-3 "$TESTDIR/watch.out" | sed 's/^\(DELETE [^ ]*\) .*/\1/' | diff - "$TESTDIR/watch.want" ||
	fail "watch events"

# A quiet watch that runs its time out ends with that, and logs no error:
# a served vdisk's two watches end so every slice (a few seconds), and
# each logged "no answer within N ms (quorum lost?)".
rc=0
"$ETCDTOOL" -t 1000 "$ETCD_URL" watch /t/quiet/ 0 1 >/dev/null 2>"$TESTDIR/quiet.err" || rc=$?
cat "$TESTDIR/quiet.err"
[ "$rc" = 2 ] && grep -q 'the watch ran its 1000 ms' "$TESTDIR/quiet.err" ||
	fail "a quiet watch did not end at its time ($rc)"
! grep -q 'quorum lost' "$TESTDIR/quiet.err" || fail "a quiet watch's end was logged as an error"

# One member frozen (SIGSTOP), first in the client's list: reads, lease
# calls and watches move on from it within their deadline, and a lease
# kept for three TTLs survives it.
etcd_member_freeze 1
wait_until 30 etcd_healthy "$(etcd_member_endpoint 2),$(etcd_member_endpoint 3)" ||
	fail "no leader among m2 and m3 within 30 s"
frozen_first="etcd://$(etcd_member_endpoint 1),$(etcd_member_endpoint 2),$(etcd_member_endpoint 3)/test"
[ "$("$ETCDTOOL" -t 3000 "$frozen_first" get /t/kv/c 2>"$TESTDIR/frozen.err")" = 5 ] ||
	fail "get with m1 frozen: $(cat "$TESTDIR/frozen.err")"
grep -q "etcd $(etcd_member_endpoint 1): no answer to kv/range within [0-9]* ms; asking the next member" \
	"$TESTDIR/frozen.err" || fail "the move from the frozen member was not reported: $(cat "$TESTDIR/frozen.err")"
out=$("$ETCDTOOL" -t 3000 "$frozen_first" hold /t/frozen-lease v 2 500 6 2>"$TESTDIR/frozen.err") ||
	fail "a lease kept with m1 frozen was lost: $out $(cat "$TESTDIR/frozen.err")"
grep -qx 'kept v lease ours' <<<"$out" || fail "hold with m1 frozen: $out"
# A watch moves on too: a working member answers a watch at once (the
# watch created), so silence from m1 sends it to the next member.
rev=$(et list /t/fw/ | sed -n 's/^revision //p')
"$ETCDTOOL" -t 8000 "$frozen_first" watch /t/fw/ $((rev + 1)) 1 >"$TESTDIR/fw.out" 2>"$TESTDIR/fw.err" &
fw=$!
cleanup_fn kill_job "$fw"
"$ETCDTOOL" -t 3000 "etcd://$(etcd_member_endpoint 2),$(etcd_member_endpoint 3)/test" \
	put /t/fw/k seen >/dev/null
wait "$fw" || fail "a watch with m1 frozen: $(cat "$TESTDIR/fw.err")"
grep -q '^PUT /t/fw/k seen ' "$TESTDIR/fw.out" || fail "the watch with m1 frozen saw: $(cat "$TESTDIR/fw.out")"
grep -q "etcd $(etcd_member_endpoint 1): no answer to watch within [0-9]* ms; asking the next member" \
	"$TESTDIR/fw.err" || fail "the watch's move was not reported: $(cat "$TESTDIR/fw.err")"
etcd_member_thaw 1

# A member that takes the connection and closes it without an answer:
# reads move on from it too.
python3 -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
sys.stdout.close()
while True:
    s.accept()[0].close()
' >"$TESTDIR/cutter.port" &
cutter=$!
cleanup_fn kill_job "$cutter"
wait_until 10 test -s "$TESTDIR/cutter.port" || fail "the cutting listener did not start"
cut_first="etcd://127.0.0.1:$(cat "$TESTDIR/cutter.port"),$ETCD_ENDPOINTS/test"
[ "$("$ETCDTOOL" -t 3000 "$cut_first" get /t/kv/c 2>"$TESTDIR/cut.err")" = 5 ] ||
	fail "get with a member that cuts connections first: $(cat "$TESTDIR/cut.err")"
grep -q "asking the next member" "$TESTDIR/cut.err" || fail "the cut was not reported: $(cat "$TESTDIR/cut.err")"
# A put there has an unknown outcome: it is not repeated elsewhere, and
# the error says it was sent.
expect_fail "etcd 127\.0\.0\.1:$(cat "$TESTDIR/cutter.port"): .* after the request was sent" \
	"$ETCDTOOL" -t 3000 "$cut_first" put /t/cut x
! et get /t/cut >/dev/null || fail "the put cut at its first member was sent again to another"
kill "$cutter"

# One member killed: the client fails over and every call still succeeds,
# the dead member first in its list.
etcd_member_kill 1
# A put sent while the survivors elect a leader waits (etcd answers it only
# at its own request timeout): wait for the election first.
wait_until 30 etcd_healthy "$(etcd_member_endpoint 2),$(etcd_member_endpoint 3)" ||
	fail "no leader among m2 and m3 within 30 s"
dead_first="etcd://$(etcd_member_endpoint 1),$(etcd_member_endpoint 2),$(etcd_member_endpoint 3)/test"
"$ETCDTOOL" -t 3000 "$dead_first" put /t/failover ok >/dev/null 2>"$TESTDIR/failover.err" ||
	fail "put with m1 down: $(cat "$TESTDIR/failover.err")"
grep -q "etcd $(etcd_member_endpoint 1): " "$TESTDIR/failover.err" ||
	fail "the failover was not reported: $(cat "$TESTDIR/failover.err")"
[ "$("$ETCDTOOL" -t 3000 "$dead_first" get /t/failover 2>/dev/null)" = ok ] || fail "get with m1 down"
out=$("$ETCDTOOL" -t 3000 "$dead_first" cas /t/failover-cas 0 x 2>/dev/null)
[[ $out == "won "* ]] || fail "cas with m1 down: $out"
"$ETCDTOOL" -t 3000 "$dead_first" hold /t/failover-lease v 2 500 3 2>/dev/null | grep -qx 'kept v lease ours' ||
	fail "lease keepalive with m1 down"
etcd_member_start 1
[ "$("$ETCDTOOL" -t 3000 "etcd://$(etcd_member_endpoint 1)/test" get /t/failover)" = ok ] ||
	fail "the restarted member did not catch up"

# A cluster that is all down: a clear error naming a member, in time.
etcd_member_kill 1
etcd_member_kill 2
etcd_member_kill 3
start=$SECONDS
expect_fail "etcd 127\.0\.0\.1:[0-9]+: .*(refused|connect)" et put /t/none x
((SECONDS - start <= 4)) || fail "the failure took $((SECONDS - start)) s with a 3 s timeout"
echo "PASS"
