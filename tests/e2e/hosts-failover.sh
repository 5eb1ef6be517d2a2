#!/usr/bin/env bash
# kill -9 of host a's isocache-nbd while a client writes through it: host
# b's isocache-nbd claims vm only once a's lease has expired, no sooner
# than 2/3 of the TTL after the kill (a renewed at most TTL/3 before it)
# and within TTL + 1.5 s, and serves every block a flushed.
HOST_TTL=3
source "$(dirname "$0")/hosts-functions.bash"

hosts_writing 4000

apid=$(cat "$TESTDIR/a.pid")
killed=$(now_ms)
kill -9 "$apid"
wait_until 10 gone "$apid" || fail "a survived SIGKILL"
rm "$TESTDIR/a.pid" # left by the SIGKILL: the cleanup must not kill whoever has that PID later
wait "$writer" || true
flushed=$(grep -c '^flushed ' "$TESTDIR/w.log")

host_nbd b b vm
claimed=$(log_ms "$TESTDIR/b.log" 'claimed through etcd')
took=$((claimed - killed))
echo "b claimed vm $took ms after a was killed (TTL $HOST_TTL s)"
((took >= HOST_TTL * 2000 / 3 - 100)) || fail "b claimed after $took ms: before a's lease could expire"
((took <= HOST_TTL * 1000 + 1500)) || fail "b claimed after $took ms: over TTL + 1.5 s"

owner_check_blocks "$(nbd_uri b)" 0 "$flushed"
echo "$flushed flushed blocks intact on b"
host_nbd_stop b
echo PASS
