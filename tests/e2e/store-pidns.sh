#!/usr/bin/env bash
# Containers on one store: processes with the same pid in different PID
# namespaces use one store at once. Two isocache-nbd servers, each pid 1 of
# its own namespace, serve vm1 and vm2 while admin commands run as pid 1 of
# a third; then writers and readers in three more namespaces (each a shell
# whose children get the same pids in every namespace) race with writes and
# flushes through both servers, and the metadata is whole afterwards and the
# data reads back. A process that still uses LMDB's own locking (an older
# isocache, mdb_stat) is kept out while the store is open, and one that
# holds the store makes the next open fail with a message naming it.
# (LMDB's locking marks a reader by its pid: before meta/lock.c, the second
# pid 1 failed with "Resource temporarily unavailable".)
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires unshare qemu-io python3 mdb_stat
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (PID namespaces)" >&2; exit 77; }
trace_on

PIDNS=(unshare --pid --fork --kill-child --mount-proc "$NS_DROP_MOUNTS")
nbd_store
"$ADMIN" create --size 64M vm1
"$ADMIN" create --size 64M vm2

# serve NAME VDISK: isocache-nbd as pid 1 of a new PID namespace, on
# $TESTDIR/NAME.sock; waits until it is ready. unshare ignores SIGTERM, so
# the server itself is stopped at exit (stop), found as its launcher's child.
serve() {
	"${PIDNS[@]}" "$NBD" --store "$ISOCACHE_STORE" -t -k "$TESTDIR/$1.sock" \
		--pid-file "$TESTDIR/$1.nspid" "$2" 2>>"$TESTDIR/$1.err" &
	echo $! >"$TESTDIR/$1.launcher"
	cleanup_fn stop "$1"
	wait_until 30 ready "$1" || fail "$1 did not start: $(cat "$TESTDIR/$1.err")"
	[ "$(cat "$TESTDIR/$1.nspid")" = 1 ] || fail "$1 is not pid 1 of its namespace"
}
ready() {
	[ -s "$TESTDIR/$1.nspid" ] && return 0
	kill -0 "$(cat "$TESTDIR/$1.launcher")" 2>/dev/null ||
		fail "$1 exited: $(cat "$TESTDIR/$1.err")"
	return 1
}
# stop NAME: SIGTERM to the server, wait for it and its launcher.
stop() {
	local l p
	l=$(cat "$TESTDIR/$1.launcher")
	kill -0 "$l" 2>/dev/null || return 0
	p=$(tr -d ' ' <"/proc/$l/task/$l/children")
	[ -z "$p" ] || kill -TERM "$p"
	wait_until 10 gone "$l" || kill -9 "$l"
	wait "$l" || true
	rm -f "$TESTDIR/$1.nspid"
}
# io NAME VDISK CMD...: qemu-io commands against a server.
io() {
	local name=$1 vdisk=$2 args=() c
	shift 2
	for c in "$@"; do args+=(-c "$c"); done
	qemu-io -f raw "${args[@]}" "$(nbd_uri "$name" "$vdisk")"
}

# Two servers, both pid 1, at once: each writes and reads back its vdisk.
serve a vm1
serve b vm2
io a vm1 'write -P 0x11 0 1M' flush >"$TESTDIR/a.io"
io b vm2 'write -P 0x22 0 1M' flush >"$TESTDIR/b.io"
io a vm1 'read -P 0x11 0 1M' >>"$TESTDIR/a.io"
io b vm2 'read -P 0x22 0 1M' >>"$TESTDIR/b.io"
qemu_io_done "$TESTDIR/a.io" 2
qemu_io_done "$TESTDIR/b.io" 2

# Admin commands as pid 1 of a third namespace, while both serve.
"${PIDNS[@]}" "$ADMIN" create --size 16M vm3
"${PIDNS[@]}" "$ADMIN" snap vm3@s1
"${PIDNS[@]}" "$ADMIN" ls | tee "$TESTDIR/ls.txt"
for n in vm1 vm2 vm3 vm3@s1; do grep -q "^$n " "$TESTDIR/ls.txt" || fail "ls lacks $n"; done

# An LMDB tool uses LMDB's own locking: kept out while the store is open.
! mdb_stat -n "$ISOCACHE_STORE/meta.mdb" 2>"$TESTDIR/mdb_stat.err" ||
	fail "mdb_stat read the store under LMDB's locking while isocache has it open"
grep -q "Resource temporarily unavailable" "$TESTDIR/mdb_stat.err" ||
	fail "mdb_stat failed otherwise: $(cat "$TESTDIR/mdb_stat.err")"

# The race: three namespaces, each a shell (pid 1) whose admin commands get
# pids 2, 3, ... in every one of them at once, creating, snapshotting and
# listing; meanwhile both servers take 40 writes with a flush (a metadata
# commit) after each, to clusters never written before.
racer() {
	local i
	for ((i = 1; i <= 12; i++)); do
		"$ADMIN" create --size 4M "r$1-$i" && "$ADMIN" snap "r$1-$i@s" &&
			"$ADMIN" info "r$1-$i" >/dev/null && "$ADMIN" ls >/dev/null || exit 1
	done
}
export -f racer
export ADMIN
pids=()
for r in 1 2 3; do
	"${PIDNS[@]}" bash -c "racer $r" >"$TESTDIR/racer$r.log" 2>&1 &
	pids+=($!)
done
cmds=()
for ((i = 0; i < 40; i++)); do
	cmds+=("write -P $(printf 0x%02x $((0x40 + i))) $((2 + i))M 64k" flush)
done
io a vm1 "${cmds[@]}" >"$TESTDIR/a-race.io" &
pids+=($!)
io b vm2 "${cmds[@]}" >"$TESTDIR/b-race.io" &
pids+=($!)
for p in "${pids[@]}"; do
	wait "$p" || fail "a racer or writer failed: $(cat "$TESTDIR"/racer*.log)"
done
qemu_io_done "$TESTDIR/a-race.io" 40
qemu_io_done "$TESTDIR/b-race.io" 40

# Afterwards: every racer's images are there, and the metadata agrees
# with the layer files.
"$ADMIN" ls --json >"$TESTDIR/ls.json"
n=$(/usr/bin/python3 -c 'import json, sys
print(sum(1 for r in json.load(open(sys.argv[1])) if r["name"].startswith("r")))' "$TESTDIR/ls.json")
[ "$n" = 72 ] || fail "expected 72 racer images (36 vdisks, 36 snapshots), found $n"
"$ADMIN" check

# What the servers acknowledged reads back after they are gone, through a
# new server that is again pid 1 of its namespace.
stop a
stop b
cmds=('read -P 0x11 0 1M')
for ((i = 0; i < 40; i++)); do
	cmds+=("read -P $(printf 0x%02x $((0x40 + i))) $((2 + i))M 64k")
done
serve c vm1
io c vm1 "${cmds[@]}" >"$TESTDIR/c.io"
qemu_io_done "$TESTDIR/c.io" 41
stop c

# A process holding the store with LMDB's own locking (here: the POSIX lock
# on the byte at its pid that LMDB takes for a reader, as pid 1 of another
# namespace) makes an open fail with a message that names it.
# It holds the lock until its stdin, a FIFO this shell keeps open on fd 9,
# is closed.
mkfifo "$TESTDIR/hold"
"${PIDNS[@]}" /usr/bin/python3 -c '
import fcntl, os, sys
f = open(sys.argv[1], "r+b")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, os.getpid())
open(sys.argv[2], "w").write(str(os.getpid()))
sys.stdin.read()' "$ISOCACHE_STORE/meta.mdb-lock" "$TESTDIR/legacy.nspid" <"$TESTDIR/hold" &
legacy=$!
cleanup_fn kill -9 "$legacy"
exec 9>"$TESTDIR/hold"
wait_until 30 test -s "$TESTDIR/legacy.nspid" || fail "the lock holder did not start"
[ "$(cat "$TESTDIR/legacy.nspid")" = 1 ] || fail "the lock holder is not pid 1 of its namespace"
expect_fail "pid 1 in another PID namespace .* has this store open with LMDB's own locking" \
	"$ADMIN" ls
exec 9>&-
wait "$legacy" || fail "the lock holder failed"
"$ADMIN" ls >/dev/null
echo PASS
