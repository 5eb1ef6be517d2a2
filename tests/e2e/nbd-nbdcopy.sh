#!/usr/bin/env bash
# nbdcopy out of an export (sparse, several connections, several requests
# in flight each) equals the source, and nbdcopy into a vdisk then out
# again round-trips.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires nbdcopy
trace_on

nbd_store
random_image "$TESTDIR/a.raw" 24
"$ADMIN" import "$TESTDIR/a.raw" a
"$ADMIN" create --size 24M b
nbd_start s a b

nbdcopy --connections=4 --requests=16 "$(nbd_uri s a)" "$TESTDIR/out.raw"
cmp "$TESTDIR/a.raw" "$TESTDIR/out.raw"
nbdcopy --connections=2 --flush "$TESTDIR/a.raw" "$(nbd_uri s b)"
nbdcopy "$(nbd_uri s b)" "$TESTDIR/out2.raw"
cmp "$TESTDIR/a.raw" "$TESTDIR/out2.raw"
# Holes stayed holes: the copy allocated no more than the data.
[ "$(du -k "$TESTDIR/out.raw" | cut -f1)" -le $((17 * 1024)) ] || fail "copy not sparse"
nbd_stop s
