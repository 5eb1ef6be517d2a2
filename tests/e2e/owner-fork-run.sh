#!/usr/bin/env bash
# The ownership lock lives in the serving process and nowhere else:
# isocache-nbd --fork claims in the daemon (the record names it, and its
# death frees the vdisk), and a helper started by --run (claimed before it
# was spawned) never inherits the lock: killing the server frees the vdisk
# while the helper still runs.
source "$(dirname "$0")/owner-functions.bash"

owner_alive() {
	"$ADMIN" owner show "$1" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["alive"])'
}

owner_vdisk 16M vm
"$NBD" --store "$ISOCACHE_STORE" --fork -t -k "$TESTDIR/d.sock" --pid-file "$TESTDIR/d.pid" vm
cleanup_fn _ic_kill_pidfile "$TESTDIR/d.pid"
dpid=$(cat "$TESTDIR/d.pid")
[ "$(owner_pid vm)" = "$dpid" ] || fail "the record does not name the daemon"
[ "$(owner_alive vm)" = True ] || fail "the daemon's claim is not alive"
kill -9 "$dpid"
wait_until 10 gone "$dpid" || fail "the daemon outlived kill -9"
[ "$(owner_alive vm)" = False ] || fail "the vdisk stayed owned after the daemon died"

# --run: the helper outlives a server killed with -9. (Its private
# directory in $TESTDIR: killed, the server cannot remove it, and it was
# left in /tmp by every run of this test.)
# The helper runs until the test ends: it waits for a writer on a fifo
# that none opens, and is killed at exit.
mkfifo "$TESTDIR/hold"
TMPDIR=$TESTDIR "$NBD" --store "$ISOCACHE_STORE" --pid-file "$TESTDIR/r.pid" \
	--run "echo \$\$ >$TESTDIR/helper.pid; exec cat $TESTDIR/hold" vm &
rpid=$!
cleanup_fn kill "$rpid"
wait_until 10 test -s "$TESTDIR/helper.pid" || fail "the --run helper did not start"
cleanup_fn _ic_kill_pidfile "$TESTDIR/helper.pid"
[ "$(owner_pid vm)" = "$rpid" ] || fail "the --run server does not own vm"
kill -9 "$rpid"
wait "$rpid" || true
kill -0 "$(cat "$TESTDIR/helper.pid")" || fail "the helper died with the server"
[ "$(owner_alive vm)" = False ] || fail "the --run helper holds the server's ownership lock"
nbd_start b vm
[ "$(owner_pid vm)" = "$(cat "$TESTDIR/b.pid")" ] || fail "b could not claim vm"
nbd_stop b
echo PASS
