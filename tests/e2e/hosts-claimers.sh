#!/usr/bin/env bash
# 20 claimers across two hosts (10 in each network namespace), 20 rounds
# each, one vdisk, ownership in etcd: never two owners. Every winner prints
# its fencing token and the monotonic times it held the claim from and to;
# the tokens are all different, and sorted by time no interval overlaps the
# next. An etcd member is killed mid-run (and restarted): no effect.
source "$(dirname "$0")/../functions.sh"
source "$IC_SRC/tests/etcd.sh"
HOST_TTL=5 # a member's death may cost an election (about 1 s): well inside
source "$IC_SRC/tests/hosts.sh"
OWNERTOOL=$IC_BUILD/tests/tools/isocache-ownertool
trace_on

hosts_start
mkdir -p "$ISOCACHE_STORE"
pids=()
for i in $(seq 20); do
	h=$([ $((i % 2)) = 0 ] && echo a || echo b)
	on_host_exec "$h" "$OWNERTOOL" "$ISOCACHE_STORE" rounds vm 20 20 \
		>"$TESTDIR/c$i.out" 2>"$TESTDIR/c$i.err" &
	pids+=($!)
	cleanup_fn kill_job "$!"
done

# Mid-run (a quarter of the 400 claims done): kill a member, later restart it.
won() { cat "$TESTDIR"/c*.out | grep -c '^won ' || true; }
enough() { [ "$(won)" -ge "$1" ]; }
wait_until 300 enough 100 || fail "only $(won) claims after 300 s"
etcd_member_kill 1
wait_until 300 enough 200 || fail "only $(won) claims after the member died"
etcd_member_start 1

for i in "${!pids[@]}"; do
	wait "${pids[i]}" || fail "claimer $((i + 1)) failed: $(tail -3 "$TESTDIR/c$((i + 1)).err")"
done
cat "$TESTDIR"/c*.out >"$TESTDIR/all"
[ "$(grep -c '^won ' "$TESTDIR/all")" = 400 ] || fail "$(grep -c '^won ' "$TESTDIR/all") of 400 claims"
! grep -q '^fenced' "$TESTDIR/all" || fail "a holder was fenced: $(grep '^fenced' "$TESTDIR/all")"
/usr/bin/python3 - "$TESTDIR/all" <<'PY'
import sys
won, end = {}, {}
for line in open(sys.argv[1]):
    kind, token, t = line.split()
    (won if kind == "won" else end)[int(token)] = int(t)
assert len(won) == 400, "tokens repeat: %d distinct of 400" % len(won)
assert set(won) == set(end), "a claim without its end"
held = sorted((won[t], end[t], t) for t in won)
for (a0, a1, ta), (b0, b1, tb) in zip(held, held[1:]):
    assert a1 <= b0, "token %d held %d..%d overlaps token %d from %d" % (ta, a0, a1, tb, b0)
    assert ta < tb, "token %d came after token %d" % (ta, tb)
gaps = sorted(b0 - a1 for (_, a1, _), (b0, _, _) in zip(held, held[1:]))
print("400 claims, tokens unique and rising, no overlap; handoff gap median %d ms, max %d ms"
      % (gaps[len(gaps) // 2], gaps[-1]))
PY
echo PASS
