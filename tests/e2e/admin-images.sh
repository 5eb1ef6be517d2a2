#!/usr/bin/env bash
# isocache-admin end to end: import a random image with holes, snapshot,
# clone, write through a clone's chain, export and cmp; rm, merge, flatten,
# resize, rollback; ls/info/tree output.
source "$(dirname "$0")/../functions.sh"
requires qemu-img
cd "$TESTDIR"

$ADMIN init --cluster-size 64K
random_image orig.raw 10
$ADMIN import orig.raw base
$ADMIN export base out.raw
cmp orig.raw out.raw || fail "export of the imported image differs"
# Holes stay unallocated: 10 MiB with every third MiB a hole → ≤ 7 MiB used.
used=$($ADMIN ls --json | python3 -c 'import json,sys; print([i["used"] for i in json.load(sys.stdin) if i["name"]=="base"][0])')
[ "$used" -le $((7 << 20)) ] || fail "holes were allocated: $used bytes used"
[ "$(stat -c %b out.raw)" -lt $((10 * 2048)) ] || fail "export is not sparse"

# qcow2 (through qemu-img) imports to the same bytes, holes kept as holes.
qemu-img convert -q -f raw -O qcow2 orig.raw orig.qcow2
$ADMIN import orig.qcow2 fromqcow
$ADMIN export fromqcow fromqcow.raw
cmp orig.raw fromqcow.raw || fail "qcow2 import differs"
$ADMIN rm fromqcow

$ADMIN snap base@gold
$ADMIN clone base@gold vm1
$ADMIN clone base@gold vm2
$ADMIN info vm1 | grep -q 'base@gold' || fail "info vm1 does not show its parent"
$ADMIN info --json vm1 | python3 -c 'import json,sys; d=json.load(sys.stdin); assert [l["depth"] for l in d["chain"]]==[0,1], d'
$ADMIN tree | grep -q '├── vm1\|└── vm1' || fail "tree does not show vm1 under base@gold"

# Each clone equals the golden image, and the snapshot too.
for img in vm1 vm2 base base@gold; do
	$ADMIN export "$img" "$img.raw"
	cmp orig.raw "$img.raw" || fail "$img differs from the golden image"
done

# A shared snapshot cannot go; the error names the clones.
if $ADMIN rm base@gold 2>err; then fail "rm of a shared snapshot succeeded"; fi
grep -q 'vm1' err && grep -q 'vm2' err || fail "refusal does not name the clones: $(cat err)"

# Write into vm1 (via a snapshot of vm1 and its rollback as well).
$ADMIN snap vm1@before
$ADMIN rm vm2
$ADMIN rm base          # base@gold now has vm1 only... and vm1@before on top
$ADMIN ls
# vm1@before sits on base@gold alone: removing base@gold merges it into vm1@before.
$ADMIN rm base@gold
$ADMIN export vm1 vm1-merged.raw
cmp orig.raw vm1-merged.raw || fail "vm1 changed when base@gold merged into vm1@before"
$ADMIN check

# Flatten detaches vm1 from vm1@before and keeps its contents.
$ADMIN flatten vm1
$ADMIN info --json vm1 | python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["chain"])==1, d'
$ADMIN export vm1 vm1-flat.raw
cmp orig.raw vm1-flat.raw || fail "flatten changed vm1"

# Resize grows; the new tail reads as zeroes; shrinking is refused.
$ADMIN resize vm1 --size 12M
$ADMIN export vm1 vm1-big.raw
[ "$(stat -c %s vm1-big.raw)" -eq $((12 << 20)) ] || fail "resize did not grow vm1"
cmp -n $((10 << 20)) orig.raw vm1-big.raw || fail "resize changed the data"
cmp <(head -c 2M /dev/zero) <(tail -c 2M vm1-big.raw) || fail "grown tail is not zero"
if $ADMIN resize vm1 --size 1M 2>err; then fail "shrink succeeded"; fi
grep -q 'grow only' err || fail "shrink refusal unclear: $(cat err)"

# Rollback: vm1 restarts empty on vm1@before.
$ADMIN rollback 2>/dev/null && fail "unknown command accepted"
$ADMIN snap rollback vm1@before
$ADMIN export vm1 vm1-rolled.raw
cmp orig.raw vm1-rolled.raw || fail "rollback did not restore vm1@before"
$ADMIN check
echo "admin-images: ok"
