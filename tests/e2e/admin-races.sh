#!/usr/bin/env bash
# Admin commands at once on one store, as on a fleet's hosts, on a local
# store and on one in etcd (a real 3-member cluster):
# - clones and removals of unrelated vdisks, six workers at once: every
#   command succeeds. On etcd a commit that lost a race writes nothing, and
#   the command runs it again by itself (vdisk/again.c); before, it failed
#   and its user had to.
# - a snapshot removed while it is cloned, ten times, half of them with its
#   vdisk on top (rm merges) and half with no layer on top: whichever lands
#   first, no clone is left on a removed layer. check finds no problem and
#   no data a failed merge left behind, every vdisk left reads its
#   snapshot's bytes, and a command that fails says why. Before, the clone
#   was left on a removed layer on both stores, and a merge that lost left
#   the bytes it had copied in the leaf's file.
# - two snapshots of one chain removed at once, six times: each merges into
#   a layer the other removes, and both succeed, or one says the vdisk is
#   claimed by the other's merge. Before, one could fail naming a layer
#   file the other had just removed.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../etcd.sh"
etcd_cluster_start
random_image "$TESTDIR/base.raw" 1

# Worker w: clone base@gold, then remove its previous clone, ten times.
churn() {
	local w=$1 i
	for i in $(seq 10); do
		"$ADMIN" clone base@gold "c$w-$i" || return 1
		[ "$i" = 1 ] || "$ADMIN" rm "c$w-$((i - 1))" || return 1
	done
}

# Round i: "clone vI@s cI" and "rm vI@s" at once.
snap_race() {
	local i=$1 clone=0 rm=0
	"$ADMIN" import "$TESTDIR/base.raw" "v$i"
	"$ADMIN" snap "v$i@s"
	if ((i % 2 == 0)); then "$ADMIN" rm "v$i"; fi
	"$ADMIN" clone "v$i@s" "c$i" >"$TESTDIR/clone$i.err" 2>&1 &
	local pc=$!
	"$ADMIN" rm "v$i@s" >"$TESTDIR/rm$i.err" 2>&1 &
	wait "$pc" || clone=$?
	wait $! || rm=$?
	echo "round $i: clone exit $clone, rm exit $rm"
	((clone == 0)) || grep -q "v$i@s: no such image" "$TESTDIR/clone$i.err" ||
		fail "round $i: the clone failed unclearly: $(cat "$TESTDIR/clone$i.err")"
	((rm == 0)) || grep -q "v$i@s is shared by 2 layers" "$TESTDIR/rm$i.err" ||
		fail "round $i: rm failed unclearly: $(cat "$TESTDIR/rm$i.err")"
}

# Round i: "rm wI@a" and "rm wI@b" at once, on the chain wI@a, wI@b, wI:
# each merges into a layer the other removes.
chain_race() {
	local i=$1 a=0 b=0
	"$ADMIN" import "$TESTDIR/base.raw" "w$i"
	"$ADMIN" snap "w$i@a"
	"$ADMIN" snap "w$i@b"
	"$ADMIN" rm "w$i@a" >"$TESTDIR/rma$i.err" 2>&1 &
	local pa=$!
	"$ADMIN" rm "w$i@b" >"$TESTDIR/rmb$i.err" 2>&1 &
	wait "$pa" || a=$?
	wait $! || b=$?
	echo "round $i: rm w$i@a exit $a, rm w$i@b exit $b"
	grep -h 'running it again' "$TESTDIR/rma$i.err" "$TESTDIR/rmb$i.err" || true
	# Both merge, or one finds the vdisk claimed by the other's merge (on
	# etcd at once; on a local store after waiting 5 s for it).
	((a == 0)) || grep -Eq "w$i is (in use: )?owned by isocache-admin" "$TESTDIR/rma$i.err" ||
		fail "round $i: rm w$i@a failed: $(cat "$TESTDIR/rma$i.err")"
	((b == 0)) || grep -Eq "w$i is (in use: )?owned by isocache-admin" "$TESTDIR/rmb$i.err" ||
		fail "round $i: rm w$i@b failed: $(cat "$TESTDIR/rmb$i.err")"
}

races() {
	local kind=$1 pids=() w i v
	echo "== $kind store"
	"$ADMIN" import "$TESTDIR/base.raw" base
	"$ADMIN" snap base@gold
	for w in 1 2 3 4 5 6; do
		churn "$w" 2>"$TESTDIR/$kind-w$w.err" &
		pids+=($!)
	done
	for w in 1 2 3 4 5 6; do
		wait "${pids[w - 1]}" ||
			fail "$kind: worker $w failed: $(grep -v 'claimed through' "$TESTDIR/$kind-w$w.err")"
	done
	grep -h 'running it again' "$TESTDIR/$kind"-w*.err || true
	for i in $(seq 10); do snap_race "$i"; done
	for i in $(seq 6); do chain_race "$i"; done
	"$ADMIN" check 2>&1 | tee "$TESTDIR/$kind-check"
	! grep -Eq '^(problem|unreferenced)' "$TESTDIR/$kind-check" ||
		fail "$kind: check found problems, or data a failed rm left behind"
	for v in $("$ADMIN" ls --json | python3 -c 'import json, sys
print(" ".join(i["name"] for i in json.load(sys.stdin) if i["type"] == "vdisk"))'); do
		"$ADMIN" export --force "$v" "$TESTDIR/out.raw"
		cmp "$TESTDIR/base.raw" "$TESTDIR/out.raw" || fail "$kind: $v does not read its image"
	done
}

"$ADMIN" init
races local
export ISOCACHE_STORE=$TESTDIR/etcd-store
"$ADMIN" init --meta "etcd://$ETCD_ENDPOINTS/races"
races etcd
echo "admin races: OK"
