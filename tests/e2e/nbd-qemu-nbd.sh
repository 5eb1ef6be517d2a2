#!/usr/bin/env bash
# isocache-nbd as a drop-in for qemu-nbd: command lines as virt-v2v,
# libguestfs and libvirt-era scripts write them for qemu-nbd run with the
# binary name changed. -f raw, -e/--shared, --discard, --detect-zeroes,
# -D/--description, --aio, -n/--nocache and qemu-nbd's --cache values are
# accepted and honoured, or said once not to apply; -f with another format
# is refused naming why.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires nbdinfo nbdsh
trace_on

nbd_store
"$ADMIN" create --size 8M vm1
"$ADMIN" snap vm1@s1
sock=$TESTDIR/nbd.sock

# qemu_nbd NAME ARGS...: start like a script starting qemu-nbd in the
# background (--fork, --pid-file), stderr kept in NAME.log.
qemu_nbd() {
	local name=$1
	shift
	"$NBD" --store "$ISOCACHE_STORE" "$@" 2>"$TESTDIR/$name.log" ||
		fail "$name: $(cat "$TESTDIR/$name.log")"
	cleanup_fn _ic_kill_pidfile "$TESTDIR/$name.pid"
}
stop() {
	local pid
	pid=$(cat "$TESTDIR/$1.pid")
	kill -TERM "$pid"
	wait_until 30 gone "$pid" || fail "server $1 did not exit"
}

# virt-v2v's output side (lib/qemuNBD.ml): shared=0, raw, cache, discard,
# detect-zeroes, a persistent forked server.
qemu_nbd v2v --shared=0 --cache=unsafe --discard=unmap --detect-zeroes=unmap --aio=threads \
	--format=raw --socket="$sock" --pid-file="$TESTDIR/v2v.pid" --fork --persistent \
	-D "virt-v2v output disk" vm1
nbdinfo "nbd+unix:///?socket=$sock" >"$TESTDIR/info"
grep -q 'description: virt-v2v output disk' "$TESTDIR/info" || fail "-D not served"
grep -q 'can_trim: true' "$TESTDIR/info" || fail "--discard=unmap: no trim"
grep -q 'can_multi_conn: true' "$TESTDIR/info" || fail "--shared=0: no multi-conn"
grep -q 'detect-zeroes=unmap does not apply' "$TESTDIR/v2v.log" || fail "--detect-zeroes unexplained"
grep -q 'aio=threads does not apply' "$TESTDIR/v2v.log" || fail "--aio unexplained"
[ "$(grep -c 'does not apply' "$TESTDIR/v2v.log")" = 2 ] || fail "notes repeated: $(cat "$TESTDIR/v2v.log")"
nbdsh -u "nbd+unix:///?socket=$sock" -c '
h.pwrite(b"v2v!" * 1024, 0)
h.trim(4096, 0)
h.flush()
assert h.pread(4, 0) == bytes(4)
'
stop v2v

# libguestfs-style read-only inspection: -f raw -r -n -x NAME -k SOCK -t,
# default --discard and -e 1 (qemu-nbd's default) with one client.
qemu_nbd ro -f raw -r -n -x disk -k "$sock" -t -e 1 --discard=ignore --fork \
	--pid-file "$TESTDIR/ro.pid" vm1@s1
nbdinfo "nbd+unix:///disk?socket=$sock" >"$TESTDIR/info"
grep -q 'is_read_only: true' "$TESTDIR/info" || fail "-r"
grep -q 'can_trim: false' "$TESTDIR/info" || fail "--discard=ignore still offers trim"
grep -q 'can_multi_conn: false' "$TESTDIR/info" || fail "-e 1 offers multi-conn"
stop ro

# --discard=ignore on a writable export: no trim offered.
qemu_nbd notrim --discard=ignore --cache=directsync -k "$sock" -t --fork \
	--pid-file "$TESTDIR/notrim.pid" vm1
nbdinfo "nbd+unix:///?socket=$sock" | grep -q 'can_trim: false' || fail "--discard=ignore"
# A client that trims anyway gets EINVAL, and the data stays.
nbdsh -u "nbd+unix:///?socket=$sock" -c '
h.pwrite(b"keep" * 1024, 0)
h.set_strict_mode(0)
try:
    h.trim(4096, 0)
    raise SystemExit("trim served with --discard=ignore")
except nbd.Error as e:
    assert "EINVAL" in str(e), e
assert h.pread(4, 0) == b"keep"
'
stop notrim

# Refused, naming why.
rc=0; "$NBD" -f qcow2 -k "$sock" vm1 2>"$TESTDIR/err" || rc=$?
[ "$rc" = 2 ] && grep -q 'serves images of its store, which clients see as raw' "$TESTDIR/err" ||
	fail "-f qcow2: rc $rc, $(cat "$TESTDIR/err")"
for bad in --discard=maybe --detect-zeroes=sometimes --aio=posix --cache=fast; do
	rc=0; "$NBD" "$bad" -k "$sock" vm1 2>"$TESTDIR/err" || rc=$?
	[ "$rc" = 2 ] && grep -q "takes" "$TESTDIR/err" || fail "$bad: rc $rc, $(cat "$TESTDIR/err")"
done
grep -q -- '--detect-zeroes' <<<"$("$NBD" --help)" || fail "--help lacks the qemu-nbd options"
echo PASS
