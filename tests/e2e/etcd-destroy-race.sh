#!/usr/bin/env bash
# destroy of a store in etcd keeps servers out while its files go: no
# transaction locks anything there (on a local store, destroy's write
# transaction does), so destroy claims every vdisk nobody owns first and
# holds it to the end. gdb holds destroy as it removes the first layer
# file, and a server started there for vm is refused, naming destroy as
# vm's owner; destroy then finishes. The old code let the server claim vm
# and serve it from files about to go. gdb runs in non-stop mode: only the
# thread at the breakpoint stops, and destroy's lease keeper renews on.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/../etcd.sh"
requires gdb
ETCD_MEMBERS=1
etcd_cluster_start
export ISOCACHE_LEASE_TTL=2 # the refused server waits out a TTL after asking
cleanup_fn chattr -R -i "$ISOCACHE_STORE"
"$ADMIN" init --meta "etcd://$ETCD_ENDPOINTS/store"
"$ADMIN" create --size 64M vm
"$ADMIN" create --size 64M vm2

cat >"$TESTDIR/start-server" <<EOF2
#!/bin/sh
$(printf '%q ' "$NBD" --store "$ISOCACHE_STORE" -t -k "$TESTDIR/srv.sock" --fork \
	--pid-file "$TESTDIR/srv.pid" vm) 2>"$TESTDIR/srv.log"
echo \$? >"$TESTDIR/srv.rc"
EOF2
chmod +x "$TESTDIR/start-server"
cat >"$TESTDIR/gdb.cmd" <<EOF2
set non-stop on
set breakpoint pending on
set confirm off
set environment ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
tbreak store_layer_unlink
commands
shell $TESTDIR/start-server
continue
end
run
quit \$_exitcode
EOF2
rc=0
gdb -q -nx -batch -x "$TESTDIR/gdb.cmd" --args "$ADMIN" destroy "$ISOCACHE_STORE" \
	>"$TESTDIR/gdb.out" 2>"$TESTDIR/destroy.err" || rc=$?
cat "$TESTDIR/destroy.err"
[ -s "$TESTDIR/srv.rc" ] || fail "destroy did not reach its first layer file: $(cat "$TESTDIR/gdb.out")"
if [ -s "$TESTDIR/srv.pid" ]; then
	cleanup_fn kill "$(cat "$TESTDIR/srv.pid")"
fi
cat "$TESTDIR/srv.log"
[ "$(cat "$TESTDIR/srv.rc")" != 0 ] || fail "a server claimed vm while destroy ran"
grep -q 'vm is owned by isocache-admin pid [0-9]* (destroy)' "$TESTDIR/srv.log" ||
	fail "the server's refusal does not name destroy"
[ "$rc" = 0 ] || fail "destroy failed ($rc)"
[ ! -e "$ISOCACHE_STORE" ] || fail "the store is still there: $(ls -la "$ISOCACHE_STORE")"
left=$("$ETCDTOOL" "etcd://$ETCD_ENDPOINTS/x" list /isocache/store/ | grep -v '^revision ' || true)
[ -z "$left" ] || fail "records left in etcd: $left"
echo PASS
