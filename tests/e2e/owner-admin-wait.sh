#!/usr/bin/env bash
# Two admin commands that need one vdisk at once both succeed, one after
# the other. An admin command holds a vdisk only while it runs and takes
# no release requests, so a second one waits for it to finish (up to the
# release timeout) instead of failing: snap, which asks owners to release,
# and rm, which never does (it refuses a server with clients at once). gdb stops `resize vm` after its
# transaction (at store_again, which looks at its outcome), still holding
# vm, while `snap vm@t` starts: snap must say it waits, and once resize
# goes on, both must succeed. The old code failed
# snap at once ("vm is owned by isocache-admin resize ..., which cannot be
# asked to release it; use --force to take it over"), and --force would
# have killed resize mid-transaction.
source "$(dirname "$0")/owner-functions.bash"
requires gdb

owner_vdisk 64M vm

# racing SIZE ARG...: isocache-admin ARG... starts while `resize vm --size
# SIZE` (in MiB: 128M) is stopped holding vm; both must succeed, the second after waiting.
racing() {
	local size=$1 rc=0
	shift
	echo "== $* while resize vm --size $size holds vm"
	cat >"$TESTDIR/second" <<-EOF2
		#!/usr/bin/env bash
		source $(printf '%q' "$IC_SRC/tests/functions.sh")
		$(printf '%q ' "$ADMIN" --store "$ISOCACHE_STORE" "$@") >$(printf '%q' "$TESTDIR/2.out") 2>$(printf '%q' "$TESTDIR/2.err") &
		echo \$! >$(printf '%q' "$TESTDIR/2.pid")
		wait_until 30 grep -q 'waiting up to' $(printf '%q' "$TESTDIR/2.err")
	EOF2
	chmod +x "$TESTDIR/second"
	rm -f "$TESTDIR/2.pid"
	gdb_at store_again "$TESTDIR/second" "$ADMIN" resize vm --size "$size" || rc=$?
	cat "$TESTDIR/gdb.err" "$TESTDIR/2.err"
	[ -s "$TESTDIR/2.pid" ] || fail "resize did not reach store_again: $(cat "$TESTDIR/gdb.out")"
	[ "$rc" = 0 ] || fail "resize failed"
	# not a child of this shell: wait for it by its pid
	wait_until 30 sh -c "! kill -0 $(cat "$TESTDIR/2.pid") 2>/dev/null" || fail "$1 did not end"
	grep -q 'vm: owned by isocache-admin .*(resize).*; waiting up to' "$TESTDIR/2.err" ||
		fail "$1 did not wait for resize"
	grep -q 'vm: left by isocache-admin resize' "$TESTDIR/2.err" ||
		fail "$1 failed, or does not say whom it waited for"
	"$ADMIN" info vm | tee "$TESTDIR/info"
	grep -q "^size: .*($((${size%M} << 20)) bytes)" "$TESTDIR/info" || fail "resize did not take"
	"$ADMIN" check
}

racing 128M snap vm@t
grep -q 'made snapshot vm@t' "$TESTDIR/2.out" || fail "snap did not make vm@t"
racing 192M rm vm@t
! "$ADMIN" info vm@t 2>/dev/null || fail "rm did not remove vm@t"
echo PASS
