#!/usr/bin/env bash
# A live snapshot across hosts: host a's isocache-nbd serves vm to a client
# that writes and flushes block after block (a's policy, when-unused, never
# lets vm go while it is connected). `isocache-admin snap` on host b asks a
# through etcd (a "snap" request under release/vm/); a takes the snapshot
# without stopping its client and answers in place. The snapshot holds
# every block flushed before the request, and a goes on writing. A snapshot
# a cannot take (the name is taken) fails on b with a's reason; a request
# naming another vdisk is refused. Once a is gone, snap on b takes the
# snapshot itself.
source "$(dirname "$0")/hosts-functions.bash"

hosts_writing 2000
before=$(grep -c '^flushed ' "$TESTDIR/w.log")
admin_on_b snap vm@live 2>"$TESTDIR/snap.err" ||
	fail "snap on b: $(cat "$TESTDIR/snap.err")"
cat "$TESTDIR/snap.err"
grep -q 'taken live by its owner, through etcd' "$TESTDIR/snap.err" ||
	fail "b did not ask a: $(cat "$TESTDIR/snap.err")"
grep -q 'snapshot vm@live taken live for isocache-admin snap' "$TESTDIR/a.log" ||
	fail "a did not take it: $(cat "$TESTDIR/a.log")"
after=$(grep -c '^flushed ' "$TESTDIR/w.log")
wait_until 60 _hosts_flushed $((after + 10)) || fail "a stopped writing after the snapshot"
! grep -q '^error ' "$TESTDIR/w.log" || fail "the writer saw an error: $(grep '^error ' "$TESTDIR/w.log")"

# Every block flushed before the request is in the snapshot.
host_nbd b snap vm@live
owner_check_blocks "$(nbd_uri snap)" 0 "$before"
echo "$before blocks flushed before the request are in vm@live"
host_nbd_stop snap

expect_fail 'could not take the snapshot vm@live: File exists' \
	admin_on_b snap vm@live
grep -q 'a snapshot asked through etcd by isocache-admin snap .* failed' "$TESTDIR/a.log" ||
	fail "a did not log the failure"

# A request for a snapshot of another vdisk's name, or of a name no
# command takes, is refused, answered in place, and makes nothing.
req=/isocache/${HOST_OWNER_URL##*/}/release/vm/0123456789abcdef
"$ETCDTOOL" "$HOST_URL" put "$req" "snap other@evil test (pid $$)" >/dev/null
_answered() { [ "$("$ETCDTOOL" "$HOST_URL" get "$req")" = "failed 22 Invalid argument" ]; }
wait_until 30 _answered ||
	fail "no refusal: $("$ETCDTOOL" "$HOST_URL" get "$req"); a's log: $(tail -5 "$TESTDIR/a.log")"
# So is a name that no command would take (it could never be removed).
req=/isocache/${HOST_OWNER_URL##*/}/release/vm/fedcba9876543210
"$ETCDTOOL" "$HOST_URL" put "$req" "snap vm@a@b test (pid $$)" >/dev/null
wait_until 30 _answered ||
	fail "no refusal of vm@a@b: $("$ETCDTOOL" "$HOST_URL" get "$req"); a's log: $(tail -5 "$TESTDIR/a.log")"
listed=$("$ADMIN" ls) || fail "ls failed"
! grep -q '^other@evil' <<<"$listed" || fail "a took a snapshot named for another vdisk"
! grep -q '^vm@a@b' <<<"$listed" || fail "a took a snapshot with an invalid name"

# a gone: b's snap claims vm and takes it here.
hosts_writer_stop
host_nbd_stop a
admin_on_b snap vm@after 2>"$TESTDIR/after.err" ||
	fail "snap with no owner: $(cat "$TESTDIR/after.err")"
! grep -q 'taken live by its owner' "$TESTDIR/after.err" || fail "asked an owner that is gone: $(cat "$TESTDIR/after.err")"
"$ADMIN" ls | grep -q '^vm@after ' || fail "no vm@after"
echo PASS
