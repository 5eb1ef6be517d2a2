#!/usr/bin/env bash
# destroy of a store in etcd keeps servers out while its files go. No
# transaction locks anything there (on a local store, destroy's write
# transaction does), so destroy seals the store in etcd first: every claim
# fails from then on, naming destroy. A destroy refused because a server
# owns a vdisk lifts its seal (the store serves on: another vdisk can be
# claimed). Then gdb holds destroy as it removes the first layer file, and
# a server started there for vm is refused; destroy finishes, and takes
# the store's records and its seal with it. The old code let the server
# claim vm and serve it from files about to go.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/../etcd.sh"
requires gdb qemu-io
ETCD_MEMBERS=1
etcd_cluster_start
etcd_store_init
"$ADMIN" create --size 64M vm
"$ADMIN" create --size 64M vm2

# Refused while vm2 is served; the seal goes with the refusal.
nbd_start a vm2 2>"$TESTDIR/a.log"
expect_fail 'vm2 is in use by' "$ADMIN" destroy "$ISOCACHE_STORE"
nbd_start b vm 2>"$TESTDIR/b.log"
qemu-io -f raw -c "write -P 0x11 0 64k" "$(nbd_uri b)" >"$TESTDIR/io.log"
qemu_io_done "$TESTDIR/io.log" 1
nbd_stop b
nbd_stop a

cat >"$TESTDIR/start-server" <<EOF2
#!/bin/sh
$(printf '%q ' "$NBD" --store "$ISOCACHE_STORE" -t -k "$TESTDIR/srv.sock" --fork \
	--pid-file "$TESTDIR/srv.pid" vm) 2>"$TESTDIR/srv.log"
echo \$? >"$TESTDIR/srv.rc"
EOF2
chmod +x "$TESTDIR/start-server"
rc=0
gdb_at store_layer_unlink "$TESTDIR/start-server" "$ADMIN" destroy "$ISOCACHE_STORE" || rc=$?
cp "$TESTDIR/gdb.err" "$TESTDIR/destroy.err"
cat "$TESTDIR/destroy.err"
[ -s "$TESTDIR/srv.rc" ] || fail "destroy did not reach its first layer file: $(cat "$TESTDIR/gdb.out")"
if [ -s "$TESTDIR/srv.pid" ]; then
	cleanup_fn kill "$(cat "$TESTDIR/srv.pid")"
fi
cat "$TESTDIR/srv.log"
[ "$(cat "$TESTDIR/srv.rc")" != 0 ] || fail "a server claimed vm while destroy ran"
grep -q 'vm: its store is being destroyed (by isocache-admin destroy pid [0-9]*)' \
	"$TESTDIR/srv.log" || fail "the server's refusal does not name destroy"
[ "$rc" = 0 ] || fail "destroy failed ($rc)"
[ ! -e "$ISOCACHE_STORE" ] || fail "the store is still there: $(ls -la "$ISOCACHE_STORE")"
left=$("$ETCDTOOL" "etcd://$ETCD_ENDPOINTS/x" list /isocache/store/ | grep -v '^revision ' || true)
[ -z "$left" ] || fail "records left in etcd: $left"
echo PASS
