#!/usr/bin/env bash
# Block status on a cloned chain: base:allocation reports never-written
# ranges as holes, and isocache:layer names the depth that holds each
# extent (0 = the clone's leaf, 1 = the snapshot below, none = no layer).
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires nbdinfo qemu-io
trace_on

nbd_store 64K
# 3 MiB: MiB 0 and 2 data, MiB 1 a hole (random_image skips every third).
random_image "$TESTDIR/base.raw" 3
truncate -s 4M "$TESTDIR/base.raw"
"$ADMIN" import "$TESTDIR/base.raw" base
"$ADMIN" snap base@gold
"$ADMIN" clone base@gold vm
nbd_start s vm base@gold
qemu-io -f raw -c "write -P 0x5a 128k 64k" "$(nbd_uri s vm)" >/dev/null

nbdinfo --map "$(nbd_uri s vm)" >"$TESTDIR/map"
cat "$TESTDIR/map"
# offset length type: data, data (leaf), data, hole, data, hole (the tail).
awk '{ print $1, $2, $3 }' "$TESTDIR/map" >"$TESTDIR/got"
cat >"$TESTDIR/want" <<'MAP'
0 1048576 0
1048576 1048576 3
2097152 1048576 0
3145728 1048576 3
MAP
diff "$TESTDIR/want" "$TESTDIR/got" || fail "base:allocation map"

nbdinfo --map=isocache:layer "$(nbd_uri s vm)" >"$TESTDIR/layers"
cat "$TESTDIR/layers"
awk '{ print $1, $2, $3 }' "$TESTDIR/layers" >"$TESTDIR/got"
cat >"$TESTDIR/want" <<'MAP'
0 131072 1
131072 65536 0
196608 851968 1
1048576 1048576 4294967295
2097152 1048576 1
3145728 1048576 4294967295
MAP
diff "$TESTDIR/want" "$TESTDIR/got" || fail "isocache:layer map"

# The snapshot export sees itself at depth 0, and both contexts at once.
nbdinfo --map=isocache:layer "$(nbd_uri s base@gold)" | head -1 | grep -q '^ *0 *1048576 *0' ||
	fail "snapshot depth"
nbdinfo --map --totals "$(nbd_uri s base@gold)" | grep -q '2097152 *50.0% *0 data' ||
	fail "totals"
nbd_stop s
