#!/usr/bin/env bash
# One etcd member down, or moving its leadership, changes nothing,
# whichever member it is: host a's isocache-nbd serves vm while a libnbd
# client writes and flushes through it, one new block at a time.
# - m1, the first member of a's URL and so the one its requests go to,
#   hands etcd's leadership over 30 times (made leader again each time):
#   it drops the proposals it gets meanwhile, applied nowhere.
# - m1 is killed (SIGKILL) with requests in flight; started again.
# - The leader is killed; started again.
# Each time no write or flush fails, a keeps its lease, and more blocks
# are flushed. At the end host b claims vm (a releases it: the handoff
# works after all that) and reads every block a flushed.
#
# Also run on a store in etcd (e2e-etcdstore/hosts-member-down): there
# every flush is a commit. One in flight at a member that dies, or that
# forwarded it to a leader that died, has an unknown outcome: it goes to
# the next member (it is applied at most once) within the flush's time,
# not after etcd's own request timeout (5 s and two election timeouts).
# A leader's death costs an election (about 1 s; more than 2 s on a loaded
# 2-core machine: with a TTL of 3 s, a lost its lease once, run beside
# another host test). Nothing here waits for a TTL to run out.
HOST_TTL=6
# Every block the writer flushes is new, and so a commit, until it wraps
# past the export's end: 32768 blocks, more than it flushes here.
HOST_VM_SIZE=2G
source "$(dirname "$0")/hosts-functions.bash"

# The writer rests 5 ms after each flush: unpaced, it kept both cores busy
# and slowed everything else down (the test ran 262 s on a 2-core VM, with
# etcdctl for the moves then); paced, a move still meets several flushes.
OWNER_WRITER_PAUSE_MS=5 hosts_writing 1000000 --release=always

flushed_now() { grep -c '^flushed ' "$TESTDIR/w.log"; }
a_said() { grep -v "^[0-9]* +" "$TESTDIR/a.log" | tail -n 20; }

# member_down I WHAT: kill member I (WHAT says which it is) while a
# writes; a flushes 100 more blocks without an error or a lost lease;
# then start member I again.
member_down() {
	local i=$1 what=$2 before killed
	before=$(flushed_now)
	killed=$(now_ms)
	etcd_member_kill "$i"
	wait_until 60 _hosts_flushed $((before + 100)) ||
		fail "writes stalled with $what (m$i) down: $(tail -3 "$TESTDIR/w.log"); a said: $(a_said)"
	! grep '^error ' "$TESTDIR/w.log" ||
		fail "a write failed with $what (m$i) down: $(grep '^error ' "$TESTDIR/w.log" | head -3); a said: $(a_said)"
	! grep -E 'fenced|lease [0-9]+ lost' "$TESTDIR/a.log" ||
		fail "a lost its lease with $what (m$i) down; a said: $(a_said)"
	echo "$what m$i down: $(($(flushed_now) - before)) more blocks flushed in $(($(now_ms) - killed)) ms," \
		"a asked the next member $(grep -c 'asking the next member' "$TESTDIR/a.log") times so far"
	etcd_member_start "$i"
	wait_until 30 etcd_healthy "$ETCD_ENDPOINTS" || fail "the cluster is not healthy after m$i came back"
}

# The leadership handed over by m1, the member a's requests go to, 30
# times while a writes, as a leader does when it is stopped gracefully
# (SIGTERM) or by an operator: it drops what is proposed to it meanwhile
# ("raft proposal dropped"), which was applied nowhere and goes to the
# next member.
before=$(flushed_now)
# A round asks who leads once, and m1 hands over to the member that led
# before it (m2 when m1 led already).
for ((round = 0; round < 30; round++)); do
	lead=$(wait_until 10 etcd_leader) || fail "no etcd leader after $round moves"
	if [ "$lead" != 1 ]; then
		etcd_lead_move "$lead" 1 >/dev/null
		etcd_lead_move 1 "$lead" >/dev/null
	else
		etcd_lead_move 1 2 >/dev/null
	fi
	wait_until 60 _hosts_flushed $((before + 10 * (round + 1))) ||
		fail "writes stalled while etcd's leadership moved: $(tail -3 "$TESTDIR/w.log"); a said: $(a_said)"
done
! grep '^error ' "$TESTDIR/w.log" ||
	fail "a write failed while etcd's leadership moved: $(grep '^error ' "$TESTDIR/w.log" | head -3); a said: $(a_said)"
echo "leadership moved off m1 30 times: $(($(flushed_now) - before)) more blocks flushed"

member_down 1 "the member a's requests go to"
lead=$(wait_until 10 etcd_leader) || fail "no etcd leader after m1 came back"
member_down "$lead" "the leader"

host_nbd b b --release=never vm
wait "$writer" || true
flushed=$(flushed_now)
((flushed < 32768)) || fail "the writer wrapped past vm's end: its last flushes committed nothing"
grep 'released to us through etcd in' "$TESTDIR/b.log" || fail "b did not ask: $(cat "$TESTDIR/b.log")"
owner_check_blocks "$(nbd_uri b)" 0 "$flushed"
echo "$flushed flushed blocks intact on b"
host_nbd_stop b
host_nbd_stop a
echo PASS
