#!/usr/bin/env bash
# Two isocache-nbd servers export two linked clones of one base through the
# cache filter and one isocached. Both clones read fully with nbdcopy at
# once compare equal to the raw image, and the daemon read the base's
# layer file about once: backing bytes <= 1.05 x the base's allocated bytes.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/cached-functions.bash"
trace_on
requires nbdcopy

cached_golden 48 vm1 vm2
cached_start --memory 256M

nbd_start a --filter cache vm1
nbd_start b --filter cache vm2
nbdcopy "$(nbd_uri a vm1)" "$TESTDIR/vm1.raw" &
copy1=$!
nbdcopy "$(nbd_uri b vm2)" "$TESTDIR/vm2.raw" &
copy2=$!
wait "$copy1" || fail "nbdcopy of vm1 failed"
wait "$copy2" || fail "nbdcopy of vm2 failed"
cmp "$TESTDIR/vm1.raw" "$TESTDIR/base.raw" || fail "vm1 differs from the base image"
cmp "$TESTDIR/vm2.raw" "$TESTDIR/base.raw" || fail "vm2 differs from the base image"

"$CTL" stats all | tee "$TESTDIR/stats"
backing=$(awk '$1 == "backing_bytes" { print $2 }' "$TESTDIR/stats")
hits=$(awk '$1 == "hits" { print $2 }' "$TESTDIR/stats")
allocated=0
for f in $(find "$ISOCACHE_STORE" -name '*.raw' -perm 0444); do
	allocated=$((allocated + $(stat -c '%b * %B' "$f")))
done
echo "backing bytes $backing, base allocated $allocated, hits $hits"
((hits > 0)) || fail "nothing was served from the cache"
((backing * 100 <= allocated * 105)) || fail "backing bytes $backing > 1.05 x $allocated"
echo PASS
