#!/usr/bin/env bash
# Admin commands that write a vdisk are fenced as a server's writes are.
# Each runs under gdb, which stops the whole process (its lease keeper
# too), as a host frozen mid-command. Its lease (TTL 2 s) runs out; a
# server claims the vdisk (freezing the command's leaf as NAME@takeover-N,
# as after any owner that never released), writes 16 MiB of 0x5a at
# 32 MiB, flushes and stops. Then the command goes on. It must write and
# commit nothing more, and say why; check finds no problem, and the vdisk
# reads the server's pattern over the snapshot's bytes, at its own size.
#
# - rm of a snapshot merges it into its vdisk: it writes the vdisk's file
#   and commits the vdisk's map. Frozen at the merge's first read, and at
#   the fsync that ends its copy, just before its commit. The old code
#   committed its merge over the takeover: check then found "disk 2:
#   resolved map names missing disk 1".
# - resize, frozen after its claim, before its transaction. The old code
#   grew the vdisk the server had taken over to 128 MiB.
# - rm of the vdisk, the same. The old code removed it, and the server's
#   flushed write with it.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/../etcd.sh"
requires gdb qemu-io
random_image "$TESTDIR/base.raw" 64
ETCD_MEMBERS=1
etcd_cluster_start
etcd_store_init
cp "$TESTDIR/base.raw" "$TESTDIR/expect.raw"
qemu-io -f raw -c "write -P 0x5a 32M 16M" "$TESTDIR/expect.raw" >/dev/null

# frozen VM FUNCTION ARG...: isocache-admin ARG... on a new VM with a
# snapshot VM@s, stopped whole at FUNCTION while a server takes VM over
# and writes.
frozen() {
	local vm=$1 fn=$2 rc=0
	shift 2
	echo "== $*, frozen at $fn"
	"$ADMIN" import "$TESTDIR/base.raw" "$vm"
	"$ADMIN" snap "$vm@s"
	cat >"$TESTDIR/rival" <<-EOF
		#!/bin/sh
		$(printf '%q ' "$NBD" --store "$ISOCACHE_STORE" -t -k "$TESTDIR/$vm.sock" --fork \
		--pid-file "$TESTDIR/$vm.pid" "$vm") 2>"$TESTDIR/$vm.log" || exit 1
		qemu-io -f raw -c "write -P 0x5a 32M 16M" -c flush \
			"nbd+unix:///?socket=$TESTDIR/$vm.sock" >"$TESTDIR/$vm-io.log" 2>&1
		echo \$? >"$TESTDIR/$vm.rc"
		kill -TERM "\$(cat "$TESTDIR/$vm.pid")"
	EOF
	chmod +x "$TESTDIR/rival"
	GDB_ALL_STOP=1 ISOCACHE_LEASE_TTL=2 gdb_at "$fn" "$TESTDIR/rival" "$ADMIN" "$@" || rc=$?
	cat "$TESTDIR/gdb.err" "$TESTDIR/$vm.log"
	[ -s "$TESTDIR/$vm.rc" ] || fail "$1 did not reach $fn: $(cat "$TESTDIR/gdb.out")"
	[ "$(cat "$TESTDIR/$vm.rc")" = 0 ] || fail "the server could not write: $(cat "$TESTDIR/$vm-io.log")"
	qemu_io_done "$TESTDIR/$vm-io.log" 1
	wait_until 30 test ! -e "$TESTDIR/$vm.sock" || fail "the server did not stop"

	"$ADMIN" check 2>&1 | tee "$TESTDIR/check"
	! grep -q '^problem' "$TESTDIR/check" || fail "check found problems"
	"$ADMIN" export --force "$vm" "$TESTDIR/out.raw" || fail "$vm is gone"
	cmp "$TESTDIR/expect.raw" "$TESTDIR/out.raw" ||
		fail "$vm lost the server's flushed write, or changed size"
	[ "$rc" != 0 ] || fail "$1 went on after its lease ran out"
	grep -q "$vm: its etcd lease [^;]*; not writing" "$TESTDIR/gdb.err" ||
		fail "$1 does not say why it stopped"
}

frozen vm1 pread64 rm vm1@s
frozen vm2 fsync rm vm2@s
frozen vm3 image_resize_txn resize vm3 --size 128M
frozen vm4 rm_vdisk_txn rm vm4
echo PASS
