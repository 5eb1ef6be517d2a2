#!/usr/bin/env bash
# Every metadata commit of flatten, resize, snap and snap rollback made to
# fail in turn (tests/killshim): the command then exits non-zero, whichever
# commit it was. The last one clears the ownership record; flatten and
# the others used to exit 0 when that one failed, with the error only in
# the log. Afterwards the store checks clean and the vdisk can be claimed
# again (the record left behind names a process that is gone).
source "$(dirname "$0")/../functions.sh"
SHIM=$IC_BUILD/tests/killshim/libkillshim.so
[ -f "$SHIM" ] || { echo "SKIP: $SHIM is not built" >&2; exit 77; }
cd "$TESTDIR"
$ADMIN init >/dev/null
$ADMIN create base --size 4M >/dev/null
$ADMIN snap base@s >/dev/null

# run_faulted CMD: for n = 1, 2, ... fail commit n of CMD on a fresh
# clone c<k> (CMD's %s) with a snapshot c<k>@x, until CMD makes fewer
# than n commits.
k=0
run_faulted() {
	local n rc c
	for ((n = 1; ; n++)); do
		((n <= 20)) || fail "$1 made more than 20 commits"
		c=c$((++k))
		$ADMIN clone base@s $c >/dev/null
		$ADMIN snap $c@x >/dev/null
		rc=0
		# shellcheck disable=SC2046,SC2059 # CMD is a format, split into words
		IC_COMMIT_FAULT=fail:$n LD_PRELOAD=$SHIM $ADMIN $(printf "$1" $c) 2>err || rc=$?
		if ! grep -q "killshim: commit $n" err; then
			((rc == 0)) || fail "$1 with no commit failed exited $rc: $(cat err)"
			echo "$1: $((n - 1)) commits, each failure reported"
			return
		fi
		((rc != 0)) || fail "$1 exited 0 with its commit $n failed: $(tr '\n' ' ' <err)"
		$ADMIN check >/dev/null || fail "$1, commit $n failed: check finds damage"
		$ADMIN resize $c --size 8M 2>claim.err ||
			fail "$1, commit $n failed: $c cannot be claimed again: $(cat claim.err)"
		echo "$1: commit $n failed -> exit $rc"
	done
}
run_faulted "flatten %s"
run_faulted "resize %s --size 6M"
run_faulted "snap %s@y"
run_faulted "snap rollback %s@x"
echo PASS
