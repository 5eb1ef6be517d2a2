#!/usr/bin/env bash
# isocache-admin cache: warm a golden snapshot into a real isocached, read
# two clones through isocache-nbd with the cache filter, and check the
# counters: the warm loaded the base once, the clones' reads were hits, the
# daemon read the base from its file no more than once; then drop.
source "$(dirname "$0")/../functions.sh"
requires nbdcopy
cd "$TESTDIR"

$ADMIN init
random_image base.raw 8
$ADMIN import base.raw base
$ADMIN snap base@gold
$ADMIN clone base@gold vm1
$ADMIN clone base@gold vm2
start_bg cached.pid "$CACHED" --foreground --socket "$ISOCACHE_SOCKET" --memory 64M \
	--pid-file cached.pid

$ADMIN cache warm base@gold
# The prefetches are asynchronous fills: wait until every data block of the
# image (5 of its 8 MiB: random_image leaves every third MiB a hole) is in.
warm_done() {
	$ADMIN cache stats --json | /usr/bin/python3 -c '
import json, sys
rows = {r["layer"]: r for r in json.load(sys.stdin)}
sys.exit(0 if rows.get("base@gold", {}).get("blocks", 0) >= (5 << 20) // 4096 else 1)'
}
wait_until 30 warm_done || fail "the warm did not load base@gold within 30 s"
$ADMIN cache stats
$ADMIN cache stats --json >warm.json
for vm in vm1 vm2; do
	$NBD -r --filter cache --run 'nbdcopy "$uri" '"$vm.out" "$vm"
	cmp base.raw "$vm.out" || fail "$vm read through the cache differs from the image"
done
$ADMIN cache stats --json >after.json
/usr/bin/python3 - warm.json after.json <<'PY'
import json, sys
warm = {r["layer"]: r for r in json.load(open(sys.argv[1]))}
after = {r["layer"]: r for r in json.load(open(sys.argv[2]))}
g, total = after["base@gold"], after["(daemon total)"]
allocated = 8 << 20  # at most the image, holes excluded by the fills
assert warm["base@gold"]["backing_bytes"] > 0, warm
assert g["backing_bytes"] <= allocated, g
assert g["backing_bytes"] == warm["base@gold"]["backing_bytes"], (warm, g)  # no new fills
assert g["hits"] > 0 and g["bytes_served"] >= 2 * (5 << 20), g
assert g["backing_saved"] > 0, g
print("cache stats ok:", g)
PY
# The cache filter is in the stack by default; --no-cache leaves it out.
lookups() {
	$ADMIN cache stats --json | /usr/bin/python3 -c '
import json, sys
print({x["layer"]: x for x in json.load(sys.stdin)}["base@gold"]["lookups"])'
}
before=$(lookups)
$NBD -r --no-cache --run 'nbdcopy "$uri" vm1.nocache' vm1
[ "$(lookups)" = "$before" ] || fail "--no-cache still read through isocached"
$NBD -r --run 'nbdcopy "$uri" vm1.default' vm1
[ "$(lookups)" -gt "$before" ] || fail "the default stack did not read through isocached"
cmp base.raw vm1.nocache && cmp base.raw vm1.default || fail "reads differ"

$ADMIN cache drop base@gold | grep -q "dropped [1-9]" || fail "drop dropped nothing"
$ADMIN cache stats --json | /usr/bin/python3 -c '
import json, sys
r = {x["layer"]: x for x in json.load(sys.stdin)}
assert r["base@gold"]["blocks"] == 0, r'
if $ADMIN cache warm vm1 2>err; then fail "warm of a vdisk succeeded"; fi
grep -q "snapshot" err || fail "warm refusal unclear: $(cat err)"
echo "admin-cache: ok"
