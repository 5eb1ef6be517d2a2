#!/usr/bin/env bash
# Requests through etcd that go before their owner reads them. Host a's
# isocache-nbd serves vm to a writer; it is stopped (SIGSTOP) while a
# request is put under release/vm/ and deleted again, and when woken it
# reads the request from its watch after the request has gone:
# - a forced release withdrawn before a read it: a ignores it, keeps vm
#   and goes on writing (acting on it, a would let vm go to nobody);
# - a snapshot request deleted before a answered it: `isocache-admin snap`
#   on b asks again (it used to ask a to release vm instead), and a takes
#   the snapshot once, answers, and goes on serving vm.
# The lease TTL (30 s) outlasts the stops, which on a loaded machine may
# take seconds, so a keeps its lease.
HOST_TTL=30
source "$(dirname "$0")/hosts-functions.bash"

hosts_writing 4000
apid=$(cat "$TESTDIR/a.pid")
requests=/isocache/${HOST_OWNER_URL##*/}/release/vm/
etl() { "$ETCDTOOL" "$HOST_URL" "$@"; }
_hosts_continue() { kill -CONT "$apid" 2>/dev/null || true; }
cleanup_fn _hosts_continue

kill -STOP "$apid"
etl put "${requests}00000000000000f1" "force test (pid $$)" >/dev/null
[ "$(etl del "${requests}00000000000000f1")" = 1 ] || fail "the request was not there to withdraw"
kill -CONT "$apid"
_read() { grep -q -e 'was withdrawn before it was read' -e 'released through etcd' "$TESTDIR/a.log"; }
wait_until 30 _read || fail "a never read the request: $(tail -5 "$TESTDIR/a.log")"
! grep -q 'released through etcd' "$TESTDIR/a.log" ||
	fail "a let vm go on a withdrawn request: $(grep 'released through etcd' "$TESTDIR/a.log")"
after=$(grep -c '^flushed ' "$TESTDIR/w.log")
wait_until 60 _hosts_flushed $((after + 10)) || fail "a stopped writing: $(tail -3 "$TESTDIR/w.log")"
echo "a ignored the withdrawn release request and went on writing"

# Stopped mid-commit, a would hold the metadata file's lock, which b's
# admin needs: the writer ends, and a flush leaves nothing to commit.
hosts_writer_stop
nbdsh -u "$(nbd_uri a)" -c 'h.flush()' || fail "a did not flush"
kill -STOP "$apid"
admin_on_b snap vm@again 2>"$TESTDIR/snap.err" &
snapper=$!
cleanup_fn kill_job "$snapper"
_asked() { etl list "$requests" | grep -q '=snap vm@again '; }
wait_until 30 _asked || fail "b did not ask a: $(cat "$TESTDIR/snap.err")"
[ "$(etl del "$(etl list "$requests" | grep '=snap vm@again ' | cut -d= -f1)")" = 1 ] ||
	fail "b's request was not there to delete"
wait_until 30 _asked ||
	fail "b did not ask again: $(cat "$TESTDIR/snap.err"); requests: $(etl list "$requests")"
kill -CONT "$apid"
wait "$snapper" || fail "snap on b failed: $(cat "$TESTDIR/snap.err")"
grep -q 'taken live by its owner, through etcd' "$TESTDIR/snap.err" ||
	fail "b did not get a's answer: $(cat "$TESTDIR/snap.err")"
taken=$(grep -c 'snapshot vm@again taken live' "$TESTDIR/a.log")
[ "$taken" -eq 1 ] || fail "a took vm@again $taken times: $(tail -8 "$TESTDIR/a.log")"
! grep -q 'released through etcd' "$TESTDIR/a.log" || fail "a let vm go to b's snap"
"$ADMIN" ls | grep -q '^vm@again ' || fail "no vm@again"
! grep -q '^error ' "$TESTDIR/w.log" || fail "the writer saw an error: $(grep '^error ' "$TESTDIR/w.log")"
nbdsh -u "$(nbd_uri a)" -c 'h.pwrite(b"after snapshot".ljust(4096), 0); h.flush()' ||
	fail "a no longer serves vm"
echo PASS
