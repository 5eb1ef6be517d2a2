#!/usr/bin/env bash
# A server that claims vm between the moment `isocache-admin snap` finds
# no owner and snap's own claim is asked for the snapshot, not to release
# vm: this one (--release=never) would deny a release, and the snapshot
# would fail with "it denied the release". gdb holds snap at its claim
# (owner_acquire) while the server starts and claims vm; the server takes
# the snapshot live, and goes on serving. Then the same with ownership in
# etcd (a one-member cluster), where snap asks through a request key.
source "$(dirname "$0")/owner-functions.bash"
requires gdb

owner_vdisk 64M vm vm2

# snap_racing NAME@SNAP SERVER-ARGS...: run snap NAME@SNAP under gdb,
# which starts isocache-nbd SERVER-ARGS (forked, pid in srv.pid) when snap
# first claims.
snap_racing() {
	local image=$1
	shift
	rm -f "$TESTDIR/srv.pid"
	printf '#!/bin/sh\nexec %q --store %q -t -k %q --fork --pid-file %q' "$NBD" "$ISOCACHE_STORE" \
		"$TESTDIR/srv.sock" "$TESTDIR/srv.pid" >"$TESTDIR/start-server"
	printf ' %q' "$@" >>"$TESTDIR/start-server"
	printf ' 2>>%q\n' "$TESTDIR/srv.log" >>"$TESTDIR/start-server"
	chmod +x "$TESTDIR/start-server"
	rc=0
	gdb_at owner_acquire "$TESTDIR/start-server" "$ADMIN" snap "$image" || rc=$?
	cp "$TESTDIR/gdb.err" "$TESTDIR/snap.err"
	[ -s "$TESTDIR/srv.pid" ] || fail "the server did not start at snap's claim: $(cat "$TESTDIR/gdb.out" "$TESTDIR/srv.log")"
	cleanup_fn kill "$(cat "$TESTDIR/srv.pid")"
	cat "$TESTDIR/snap.err"
	return $rc
}

# snap_met LIVE NAME@SNAP: snap met the server at its claim, and the server
# took the snapshot (LIVE: the words snap says then), and serves on.
snap_met() {
	grep -q 'claimed by another process meanwhile; asking it' "$TESTDIR/snap.err" ||
		fail "snap did not meet the server at its claim: $(cat "$TESTDIR/gdb.out")"
	grep -q "$1" "$TESTDIR/snap.err" || fail "the server did not take the snapshot"
	"$ADMIN" ls | grep -q "^$2 " || fail "no $2"
	qemu-io -f raw -c "write -P 0x66 0 4k" -c "read -P 0x66 0 4k" "$(nbd_uri srv "${2%@*}")" \
		>"$TESTDIR/io.log"
	qemu_io_done "$TESTDIR/io.log" 2
	kill "$(cat "$TESTDIR/srv.pid")"
	wait_until 30 test ! -e "$TESTDIR/srv.sock" || fail "the server did not stop"
}

snap_racing vm@s1 --release=never vm || fail "snap failed: $(cat "$TESTDIR/snap.err")"
snap_met 'taken live by the owner' vm@s1

source "$IC_SRC/tests/etcd.sh"
ETCD_MEMBERS=1
etcd_cluster_start
export ISOCACHE_OWNER_ETCD=$ETCD_URL
snap_racing vm2@s1 --release=never vm2 || fail "snap through etcd failed: $(cat "$TESTDIR/snap.err")"
snap_met 'taken live by its owner, through etcd' vm2@s1
echo PASS
