#!/usr/bin/env bash
# A member that freezes under the owner's watch: host a's isocache-nbd
# serves vm, its watch of release requests answering from m1 (the first
# member of its URL); m1 is frozen (SIGSTOP), so that watch goes silent
# without an error. A claimant on host b asks a through etcd. a begins its
# watch again within a third of what a claimant waits for a live owner (5 s
# and a TTL), moves on from the silent m1 to another member, sees the
# request and releases vm: the claimant holds it within 30 s of asking
# (before, a noticed only when its watch's 60 s ran out: 64.9 s).
source "$(dirname "$0")/hosts-functions.bash"

hosts_serving --release=always
# a's watch is under way on m1 (the only watcher of the cluster): m1
# counts it. Frozen before then, a's watch would move on at once.
m1_watching() {
	curl -s --noproxy '*' "http://$(etcd_member_endpoint 1)/metrics" |
		awk '$1 == "etcd_debugging_mvcc_watcher_total" && $2 >= 1 { found = 1 } END { exit !found }'
}
wait_until 30 m1_watching || fail "a's watch never reached m1"
etcd_member_freeze 1
b_asks_a "m1 frozen"
# Its lease is revoked through another member: a revocation moves on from
# m1 within a third of the owner's 2 s etcd timeout (a conditional delete
# of the record, sent to m1 first, waited the whole 2 s: 2006 ms here).
sed -n 's/.*vm: \(released through etcd to .* in [0-9]* ms\).*/a \1/p' "$TESTDIR/a.log"
grep -q "etcd [0-9.]*:${ETCD_CLIENT_PORTS[0]}: no answer to watch within [0-9]* ms; asking the next member" \
	"$TESTDIR/a.log" || fail "a's watch did not move on from the frozen m1: $(cat "$TESTDIR/a.log")"
etcd_member_thaw 1
host_nbd_stop a
echo PASS
