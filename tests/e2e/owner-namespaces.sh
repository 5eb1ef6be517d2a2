#!/usr/bin/env bash
# Ownership that holds in containers (issue 12): the owner's liveness is its
# kernel lock, not /proc, so a live owner is never taken for dead from
# another PID namespace, through a hidepid /proc, or by another uid; a
# forced takeover reaches it through its control socket (a pidfd) and kills
# it or makes it fence itself; the late write of its connected client then
# fails, and the block it wrote first keeps its bytes. A namespaced owner
# killed with -9 is reclaimed at the next claim in under 1 s.
source "$(dirname "$0")/owner-functions.bash"
requires unshare setpriv mount
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (namespaces, other uids)" >&2; exit 77; }

NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
PIDNS=(unshare --pid --fork --kill-child --mount-proc "$NS_DROP_MOUNTS")
# hidepid=2: a process sees only its own uid's /proc entries.
HIDEPID=(unshare --mount "$NS_DROP_MOUNTS" sh -c 'mount -t proc -o hidepid=2 proc /proc && exec "$@"' hidepid)

owner_vdisk 64M vm1
# Other uids must reach the test's files and write the store.
chmod 755 "$TESTDIR"
mkdir -m 1777 "$TESTDIR/s"
chown -R 65534:65534 "$ISOCACHE_STORE"

# serve NAME WRAPPER...: isocache-nbd --release=never vm1 on
# $TESTDIR/s/NAME.sock under WRAPPER (a namespace, another uid), waiting
# until it is ready. Its pid file holds the pid in its own namespace, so
# the host's pid is found from the launcher, which is killed by PID at exit
# (unshare --kill-child takes the server with it).
serve() {
	local name=$1
	shift
	"$@" "$NBD" --store "$ISOCACHE_STORE" -t -k "$TESTDIR/s/$name.sock" --release=never \
		--pid-file "$TESTDIR/s/$name.nspid" vm1 2>>"$TESTDIR/$name.err" &
	echo $! >"$TESTDIR/$name.launcher"
	cleanup_fn _ic_kill_pidfile "$TESTDIR/$name.launcher"
	wait_until 30 _ic_ready "$TESTDIR/s/$name.nspid" "$(cat "$TESTDIR/$name.launcher")" ||
		fail "$name did not start within 30 s"
	[ -s "$TESTDIR/s/$name.nspid" ] || fail "$name did not start: $(cat "$TESTDIR/$name.err")"
}

# host_pid NAME: the server's pid in our namespace.
host_pid() {
	local l
	l=$(cat "$TESTDIR/$1.launcher")
	if [ "$(cat "$TESTDIR/s/$1.nspid")" = "$l" ]; then echo "$l"; else cat "/proc/$l/task/$l/children" | tr -d ' '; fi
}

# exited NAME: wait (up to 10 s) until the server's launcher has exited.
exited() {
	local l
	l=$(cat "$TESTDIR/$1.launcher")
	wait_until 10 gone "$l" || fail "$1 still runs"
	wait "$l" || true
}

# second WRAPPER...: a second server, from outside the owner's namespace,
# must be refused (exit 1) with a message naming the owner.
second() {
	local rc=0
	"$@" "$NBD" --store "$ISOCACHE_STORE" -t -k "$TESTDIR/s/b.sock" vm1 2>"$TESTDIR/b.err" || rc=$?
	cat "$TESTDIR/b.err"
	[ "$rc" != 0 ] || fail "a second server took vm1 from a live owner"
	grep -q "vm1 is owned by isocache-nbd pid [0-9]* (open vm1) since " "$TESTDIR/b.err" ||
		fail "the refusal does not name the owner"
	! grep -q "reclaiming" "$TESTDIR/b.err" || fail "a live owner was taken for dead"
}

# late NAME: the owner's client writes 0x33 after the takeover: it must
# fail, and block 0 must still hold the 0x11 written before.
late() {
	local said
	said=$(owner_client_do "$1" 0x33)
	echo "late write: $said"
	case $said in error*) ;; *) fail "the late write of the old owner's client succeeded" ;; esac
	owner_client_end "$1"
	[ "$(owner_block0 vm1)" = 11 ] || fail "block 0 lost the 0x11 written first"
}

# 1. An owner in a PID namespace (pid 1 there). The second server is
# refused; the forced takeover, with the owner stopped so that it cannot
# answer, kills it through the pidfd of its control socket's peer.
serve a "${PIDNS[@]}"
owner_client c1 "nbd+unix:///?socket=$TESTDIR/s/a.sock"
[ "$(owner_client_do c1 0x11)" = ok ] || fail "first write failed"
second
apid=$(host_pid a)
kill -STOP "$apid"
"$ADMIN" owner takeover vm1 --force --timeout 1 2>"$TESTDIR/t.err" || fail "takeover failed: $(cat "$TESTDIR/t.err")"
cat "$TESTDIR/t.err"
grep -q "killing its owner isocache-nbd pid 1 (open vm1)" "$TESTDIR/t.err" || fail "the kill is not logged"
exited a
late c1

# 2. A hidepid /proc: the second server and the takeover run as another
# uid in a mount namespace whose /proc hides the owner. Refused; a
# takeover as that uid cannot signal a root owner and refuses, naming it;
# root's forced takeover makes the owner fence itself.
serve a2 "${PIDNS[@]}"
owner_client c2 "nbd+unix:///?socket=$TESTDIR/s/a2.sock"
[ "$(owner_client_do c2 0x11)" = ok ] || fail "first write failed"
ISOCACHE_RUN_DIR=$TESTDIR/s/run second "${HIDEPID[@]}" "${NOBODY[@]}"
rc=0
ISOCACHE_RUN_DIR=$TESTDIR/s/run "${HIDEPID[@]}" "${NOBODY[@]}" "$ADMIN" --store "$ISOCACHE_STORE" \
	owner takeover vm1 --force --timeout 1 2>"$TESTDIR/t2.err" || rc=$?
cat "$TESTDIR/t2.err"
[ "$rc" != 0 ] || fail "another uid took vm1 over from a root owner"
grep -q "vm1 is owned by isocache-nbd pid 1 (open vm1)" "$TESTDIR/t2.err" || fail "the refusal does not name the owner"
"${HIDEPID[@]}" "$ADMIN" --store "$ISOCACHE_STORE" owner takeover vm1 --force 2>"$TESTDIR/t3.err" ||
	fail "root's takeover failed: $(cat "$TESTDIR/t3.err")"
late c2
kill -TERM "$(host_pid a2)"
exited a2

# 3. An owner of another uid, in our namespaces.
ISOCACHE_RUN_DIR=$TESTDIR/s/run serve a3 "${NOBODY[@]}"
owner_client c3 "nbd+unix:///?socket=$TESTDIR/s/a3.sock"
[ "$(owner_client_do c3 0x11)" = ok ] || fail "first write failed"
second
"$ADMIN" owner takeover vm1 --force 2>"$TESTDIR/t4.err" || fail "takeover failed: $(cat "$TESTDIR/t4.err")"
late c3
kill -TERM "$(host_pid a3)"
exited a3

# 4. kill -9 of a namespaced owner: the next claim reclaims at once.
serve a4 "${PIDNS[@]}"
kill -9 "$(host_pid a4)"
exited a4
t0=$(date +%s%N)
"$ADMIN" owner release vm1 2>"$TESTDIR/r.err" || fail "claim after kill -9 failed: $(cat "$TESTDIR/r.err")"
ms=$((($(date +%s%N) - t0) / 1000000))
cat "$TESTDIR/r.err"
grep -q "previous owner isocache-nbd open vm1 (pid 1) is gone (its lock was free); reclaiming" \
	"$TESTDIR/r.err" || fail "no reclaim logged"
echo "reclaimed a namespaced owner killed with -9 in $ms ms"
[ "$ms" -lt 1000 ] || fail "reclaiming took $ms ms"
echo PASS
