#!/usr/bin/env bash
# Layer files on a network filesystem without extended attributes: the
# hosts reach the store over sshfs (tests/hosts.sh, hosts_sshfs), which,
# like NFS before 4.2, keeps no user xattrs. A live snapshot asked from
# host b freezes host a's layer unmarked (it failed with "Operation not
# supported" before); a clone of it is made on b and served on a with the
# cache filter: isocached, which believes only the file, declines the
# layer and says why, and every byte reads right through the filesystem;
# check finds nothing wrong with the unmarked frozen layer. The other
# two-host tests run on sshfs too (e2e-sshfs/, tests/CMakeLists.txt).
HOST_STORE=etcd
HOST_FS=sshfs
source "$(dirname "$0")/hosts-functions.bash"

hosts_start
hosts_store
on_host a "$ADMIN" --store "$(host_store a)" create --size 64M vm
host_nbd a a vm
qemu-io -f raw -c "write -P 0x5a 0 8M" -c flush "$(nbd_uri a)" >"$TESTDIR/a.io"
qemu_io_done "$TESTDIR/a.io" 1

admin_on_b snap vm@gold 2>"$TESTDIR/snap.err" || fail "snap on b: $(cat "$TESTDIR/snap.err")"
grep -q 'taken live by its owner, through etcd' "$TESTDIR/snap.err" ||
	fail "b did not ask a: $(cat "$TESTDIR/snap.err")"
grep -q 'frozen without its user.isocache.layer mark (the filesystem keeps no extended attributes)' \
	"$TESTDIR/a.log" || fail "a did not say the layer is unmarked: $(cat "$TESTDIR/a.log")"
/usr/bin/python3 -c 'import os, sys; print(os.listxattr(sys.argv[1]))' \
	"$ISOCACHE_STORE/layers/1.raw" | grep -qx '\[\]' || fail "the frozen layer file has xattrs"
admin_on_b clone vm@gold c1

start_bg "$TESTDIR/cached.pid" on_host_exec a "$CACHED" --foreground --pid-file "$TESTDIR/cached.pid" \
	2>"$TESTDIR/cached.log"
host_nbd a c --cache none --filter cache c1
qemu-io -f raw -c "read -P 0x5a 0 8M" -c "read -P 0 8M 8M" "$(nbd_uri c)" >"$TESTDIR/c.io"
qemu_io_done "$TESTDIR/c.io" 2
said=$(grep -c 'the daemon does not cache layer 1: its file has no user.isocache.layer mark' \
	"$TESTDIR/c.log") || fail "c did not say why the layer is not cached: $(cat "$TESTDIR/c.log")"
# Once, though each of its sessions with the daemon was refused.
[ "$said" = 1 ] || fail "c said so $said times"
grep -q 'layer refused: No data available' "$TESTDIR/cached.log" ||
	fail "isocached did not refuse the layer: $(cat "$TESTDIR/cached.log")"

on_host b "$ADMIN" --store "$(host_store b)" check >"$TESTDIR/check.out" 2>&1 ||
	fail "check on b: $(cat "$TESTDIR/check.out")"
! grep -q 'lacks its' "$TESTDIR/check.out" || fail "check wants a mark: $(cat "$TESTDIR/check.out")"
host_nbd_stop c
host_nbd_stop a
echo PASS
