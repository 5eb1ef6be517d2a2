#!/usr/bin/env bash
# etcd compacts its history under a serving owner (operators run it with
# --auto-compaction-retention): host a's isocache-nbd serves vm, its watch
# of release requests begun from the revision of its claim. The cluster's
# history is compacted past that revision, so a's next watch is refused
# ("required revision has been compacted"): a reads its requests anew and
# watches on from there, and a claimant on host b that asks then holds vm
# (before, a's watch thread ended and requests went unanswered).
source "$(dirname "$0")/hosts-functions.bash"

hosts_serving --release=always
log_ms "$TESTDIR/a.log" 'claimed through etcd' >/dev/null
# Two writes past a's claim, then compact at the cluster's revision.
et put /t/after-claim 1 >/dev/null
rev=$(et put /t/after-claim 2)
_etcdctl "$ETCD_ENDPOINTS" compact "$rev" >/dev/null
echo "etcd compacted at revision $rev"
wait_until 30 grep -q 'compacted the history of its release requests' "$TESTDIR/a.log" ||
	fail "a did not read its requests anew after the compaction: $(cat "$TESTDIR/a.log")"
b_asks_a "the history compacted"
host_nbd_stop a
echo PASS
