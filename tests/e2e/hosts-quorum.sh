#!/usr/bin/env bash
# The etcd cluster loses quorum under a serving owner: host a's
# isocache-nbd serves vm while a libnbd client writes and flushes through
# it, and a second isocache-nbd on a serves a frozen layer (base@gold).
# The member a uses frozen (SIGSTOP) for two TTLs: a keeps its lease and
# flushes on (on a local store). One member killed, a follower: nothing
# changes, more blocks are flushed.
# A second killed, the other follower, so that the one left is the leader
# (which goes on renewing leases until it notices it has no quorum, the
# worst case): a fences itself when its lease's validity runs out, and
# says so; it refuses writes and acknowledged no flush after its fence;
# the frozen layer still reads, on a new connection. Quorum back: a
# claimant on host b gets vm only after a's lease could expire (a, fenced,
# never released it), and reads every block a flushed.
#
# Also run on a store in etcd (e2e-etcdstore/hosts-quorum): there a
# commit sent to the frozen member is sent again to another, and the
# writer's flush in flight when quorum goes fails when a fences itself:
# its commit is not waited for once a's lease may have run out.
HOST_TTL=3
source "$(dirname "$0")/hosts-functions.bash"
requires qemu-img

# The writer must outlast every phase up to quorum's loss, however fast
# the machine writes: it wraps past the export's 4096 blocks (on a quiet
# machine 3914 blocks went in while m1 was frozen, and a writer of 4000
# had ended before the next phase could count 100 more).
hosts_writing 1000000 --release=never
random_image "$TESTDIR/base.raw" 8
"$ADMIN" import "$TESTDIR/base.raw" base
"$ADMIN" snap base@gold
# m1 is to be frozen as a follower (etcd_member_freeze): its leadership,
# if it has it, goes before a starts. Moved later, a's requests during the
# move may be answered "leader changed", and then go to the next member,
# and stay there: the freeze would not reach a at all (seen once, beside
# another host test).
lead=$(wait_until 10 etcd_leader) || fail "no etcd leader"
[ "$lead" != 1 ] || etcd_lead_move 1
host_nbd a gold base@gold

flushed_now() { grep -c '^flushed ' "$TESTDIR/w.log"; }
# flush_gap FROM: the longest pause (ms) between two flushes the writer
# reported after FROM (monotonic ms).
flush_gap() {
	awk -v from="$1" '$1 == "flushed" && $3 >= from {
		if (last && $3 - last > gap) gap = $3 - last; last = $3 } END { print gap + 0 }' \
		"$TESTDIR/w.log"
}

# The member a's requests go to (m1, the first of its URL) frozen for two
# TTLs: a's lease renewals and, on a local store, the token checks of its
# commits are safe to repeat and move on to the other members; a keeps its
# lease and goes on flushing. On a store in etcd a commit sent to m1 as it
# froze (rare: the commit's reads move on from m1 first) has an unknown
# outcome after its 5 s etcd timeout: it is sent again to another member
# (it applies at most once; tests/unit/test_meta_etcd_cases.h), and the
# flush waits for it instead of failing.
before=$(flushed_now)
frozen=$(now_ms)
etcd_member_freeze 1
flushed_since() { awk -v t="$1" '$1 == "flushed" && $3 >= t { n++ } END { exit !n }' "$TESTDIR/w.log"; }
# a's own log (its trace lines left out), for a failure's message.
a_said() { grep -v "^[0-9]* +" "$TESTDIR/a.log" | tail -n 20; }
wait_until 60 flushed_since $((frozen + 2 * HOST_TTL * 1000)) ||
	fail "writes stalled with m1 frozen (at $frozen): $(tail -3 "$TESTDIR/w.log"); a said: $(a_said)"
! grep '^error ' "$TESTDIR/w.log" || fail "a write failed with m1 frozen; a said: $(a_said)"
! grep -E 'fenced|lease [0-9]+ lost' "$TESTDIR/a.log" || fail "a lost its lease with m1 frozen"
grep -q "etcd [0-9.]*:${ETCD_CLIENT_PORTS[0]}: no answer to lease/keepalive within [0-9]* ms; asking the next member" \
	"$TESTDIR/a.log" || fail "a's renewal did not move on from the frozen m1: $(grep -v "^[0-9]* +" "$TESTDIR/a.log")"
echo "m1 frozen for two TTLs: $(($(flushed_now) - before)) more blocks flushed," \
	"the longest pause between two flushes $(flush_gap "$frozen") ms;" \
	"$(grep -c 'its outcome is unknown: sending it again' "$TESTDIR/a.log") commits sent again"
etcd_member_thaw 1
wait_until 30 etcd_healthy "$ETCD_ENDPOINTS" || fail "m1 did not come back healthy"

# One member down, a follower that a's requests do not go to, so that the
# next phase can leave the leader alone: writes and flushes go on.
# (hosts-member-down kills the member a's requests go to, and the leader.)
first=$(etcd_follower 1)
before=$(flushed_now)
killed=$(now_ms)
etcd_member_kill "$first"
wait_until 60 _hosts_flushed $((before + 100)) ||
	fail "writes stalled with one etcd member down: $(tail -3 "$TESTDIR/w.log")
a's log since: $(grep -v "^[0-9]* +" "$TESTDIR/a.log" | tail -30)"
! grep '^error ' "$TESTDIR/w.log" || fail "a write failed with one etcd member down"
! grep -E 'fenced|lease [0-9]+ lost' "$TESTDIR/a.log" || fail "a lost its lease with one member down"
echo "follower m$first down: $(($(flushed_now) - before)) more blocks flushed," \
	"the longest pause between two flushes $(flush_gap "$((killed - 1000))") ms"

# Quorum lost, the leader left alone: a fences itself within its lease's
# validity after its last renewal (TTL 3 s - margin 0.6 s), which that
# leader may answer for up to two election timeouts (2 x 500 ms) after
# the loss: by TTL + 0.4 s, and 1 s more for a loaded machine (etcd's
# ticks and the log's stamps come late there). No sooner than that
# validity after the renewal before the loss (at most TTL/3 before it):
# 1.4 s. Its log says why: renewals failed, the lease was lost.
wait_until 10 etcd_leader >/dev/null || fail "no etcd leader after m$first went"
second=$(etcd_follower)
lost=$(now_ms)
etcd_member_kill "$second"
wait_until 20 grep -q 'fenced: its etcd lease' "$TESTDIR/a.log" ||
	fail "a did not fence itself without quorum: $(tail -5 "$TESTDIR/a.log")"
fenced=$(log_ms "$TESTDIR/a.log" 'fenced: its etcd lease')
grep -E 'etcd lease [0-9]+: renewal failed \(' "$TESTDIR/a.log" || fail "a did not log a failed renewal"
grep -E 'vm: fenced: its etcd lease [0-9]+ was lost \(.*\); every write now fails' "$TESTDIR/a.log" ||
	fail "a's fence does not say why: $(grep fenced "$TESTDIR/a.log")"
took=$((fenced - lost))
echo "quorum lost (m$first, m$second down): a fenced itself after $took ms (TTL $HOST_TTL s)"
((took >= HOST_TTL * 1000 * 4 / 5 - HOST_TTL * 1000 / 3 - 100)) || fail "a fenced itself early: $took ms"
((took <= HOST_TTL * 1000 + 400 + 1000)) || fail "a fenced itself late: $took ms"
wait "$writer" || true
tail -2 "$TESTDIR/w.log"
flushed=$(flushed_now)
last_ok=$(grep '^flushed ' "$TESTDIR/w.log" | tail -1 | cut -d' ' -f3)
grep -q '^error ' "$TESTDIR/w.log" || fail "a's client saw no error without quorum"
((last_ok < fenced)) || fail "a acknowledged a flush after it fenced itself"
! qemu-io -f raw -c "write -P 0x55 0 4k" "$(nbd_uri a)" >"$TESTDIR/a.err" 2>&1 ||
	fail "a accepted a write without quorum"
cat "$TESTDIR/a.err"
# With a's earlier client still counted, it says why; once it is gone, a
# claims vm anew, which fails without quorum (~12 s) and says so.
grep -Eq "vm is no longer served here: its etcd lease (was lost|ran out)|vm could not be claimed|vm cannot be opened" \
	"$TESTDIR/a.err" || fail "a's refusal does not say why"
qemu-img compare -f raw -F raw "$TESTDIR/base.raw" "$(nbd_uri gold)" ||
	fail "the frozen layer stopped reading without quorum"

# Quorum back: b claims vm once a's lease expires. A leader elected again
# gives every lease its TTL anew (and one election timeout), counted from
# after the restart began: b cannot have it sooner than TTL after that.
restart=$(now_ms)
etcd_member_start "$second"
back=$(now_ms)
host_nbd b b --release=never vm
claimed=$(log_ms "$TESTDIR/b.log" 'claimed through etcd')
echo "quorum back $((back - restart)) ms after the restart began; b claimed vm" \
	"$((claimed - restart)) ms after it, $((claimed - back)) ms after quorum was back"
((claimed - restart >= HOST_TTL * 1000)) || fail "b claimed vm before a's lease could expire"
((claimed - back <= HOST_TTL * 1000 + 2500)) || fail "b claimed vm late"
! grep -E 'released (through etcd )?to' "$TESTDIR/a.log" || fail "a, fenced, released vm"
etcd_member_start "$first"
owner_check_blocks "$(nbd_uri b)" 0 "$flushed"
echo "$flushed flushed blocks intact on b"
qemu-io -f raw -c "write -P 0x66 0 4k" -c "read -P 0x66 0 4k" "$(nbd_uri b)" >"$TESTDIR/b.io"
qemu_io_done "$TESTDIR/b.io" 2
host_nbd_stop b
host_nbd_stop gold
echo PASS
