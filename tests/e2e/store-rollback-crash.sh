#!/usr/bin/env bash
# snap rollback stopped at every LMDB commit it makes, by SIGKILL and by a
# failed commit (tests/killshim): the vdisk afterwards reads either as it
# did before (the rollback did not happen) or as the snapshot (it did),
# never anything else. Rollback used to empty the leaf file before its
# commit, so a stop there left the metadata naming data that was gone.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires qemu-io
SHIM=$IC_BUILD/tests/killshim/libkillshim.so
[ -f "$SHIM" ] || { echo "SKIP: $SHIM is not built" >&2; exit 77; }
cd "$TESTDIR"

# A vdisk vm1 whose leaf holds data above a snapshot vm1@s1.
make_store() {
	[ -d "$ISOCACHE_STORE" ] && chattr -R -i "$ISOCACHE_STORE" && rm -rf "$ISOCACHE_STORE"
	nbd_store 64K >/dev/null
	"$ADMIN" create vm1 --size 4M
	"$NBD" --store "$ISOCACHE_STORE" --run 'qemu-io -f raw -c "write -P 0xaa 0 2M" "$uri"' vm1 >/dev/null
	"$ADMIN" snap vm1@s1
	"$NBD" --store "$ISOCACHE_STORE" --run 'qemu-io -f raw -c "write -P 0xbb 1M 2M" "$uri"' vm1 >/dev/null
	"$ADMIN" export -f vm1 before.raw
	"$ADMIN" export -f vm1@s1 snap.raw
	! cmp -s before.raw snap.raw || fail "the leaf holds nothing of its own"
}

for mode in kill fail; do
	for ((n = 1; ; n++)); do
		((n <= 20)) || fail "rollback made more than 20 commits"
		make_store
		rc=0
		IC_COMMIT_FAULT=$mode:$n LD_PRELOAD=$SHIM "$ADMIN" snap rollback vm1@s1 2>err || rc=$?
		"$ADMIN" export -f vm1 after.raw
		if cmp -s after.raw before.raw; then
			state=unchanged
		elif cmp -s after.raw snap.raw; then
			state=rolled-back
		else
			cmp after.raw before.raw || true
			fail "$mode at commit $n (exit $rc): vm1 reads neither as before nor as vm1@s1"
		fi
		# A stop may leave a layer file that no record names (the new
		# leaf before the commit, the old one after it); nothing else.
		if "$ADMIN" check 2>&1 | grep '^problem:' | grep -v 'a file no layer owns'; then
			fail "$mode at commit $n: check finds damage"
		fi
		echo "$mode at commit $n: exit $rc, vm1 $state"
		grep -q "killshim: commit $n" err || break # the rollback made fewer commits
		# And the rollback, run again, completes.
		"$ADMIN" snap rollback vm1@s1
		"$ADMIN" export -f vm1 after.raw
		cmp after.raw snap.raw || fail "$mode at commit $n: the rollback run again failed"
	done
	[ "$state" = rolled-back ] || fail "rollback without a fault did not roll back"
done
echo "PASS: snap rollback stopped at any commit loses nothing"
