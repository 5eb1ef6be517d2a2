#!/usr/bin/env bash
# Data path with qemu's client: patterns at unaligned offsets, FUA, flush,
# discard, write-zeroes; qemu-img compare against the raw image the export
# should equal, and qemu-img convert from the export and back into it.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires qemu-io qemu-img
trace_on

nbd_store
random_image "$TESTDIR/base.raw" 16
"$ADMIN" import "$TESTDIR/base.raw" base
"$ADMIN" snap base@gold
"$ADMIN" clone base@gold vm
nbd_start s vm base@gold
uri=$(nbd_uri s vm)

qemu-img compare -f raw -F raw "$TESTDIR/base.raw" "$uri"
qemu-img compare -f raw -F raw "$TESTDIR/base.raw" "$(nbd_uri s base@gold)"

cp "$TESTDIR/base.raw" "$TESTDIR/expect.raw"
io() { qemu-io -f raw "$@" "$TESTDIR/expect.raw" >/dev/null; }
ops=(
	-c "write -P 0xa1 1 511"
	-c "write -P 0xa2 -f 65535 70001"
	-c "write -P 0xa3 3145727 4097"
	-c "flush"
	-c "discard 4M 128k"
	-c "write -z 6291457 200000"
	-c "write -P 0xa4 -f 16777215 1"
	-c "write -z -u 8M 1M"
)
qemu-io -f raw "${ops[@]}" "$uri" | tee "$TESTDIR/log"
! grep -qi 'error\|fail' "$TESTDIR/log" || fail "qemu-io reported an error"
io "${ops[@]}"
qemu-io -f raw -c "read -P 0xa1 1 511" -c "read -P 0xa2 65535 70001" \
	-c "read -P 0xa3 3145727 4097" -c "read -P 0 4M 128k" -c "read -P 0 6291457 200000" \
	-c "read -P 0xa4 16777215 1" "$uri" | tee "$TESTDIR/log"
! grep -q 'verification failed' "$TESTDIR/log" || fail "pattern mismatch"
qemu-img compare -f raw -F raw "$TESTDIR/expect.raw" "$uri"
# The snapshot under the clone is untouched.
qemu-img compare -f raw -F raw "$TESTDIR/base.raw" "$(nbd_uri s base@gold)"

# Convert out, and back into the vdisk after scribbling on it.
qemu-img convert -f raw -O raw "$uri" "$TESTDIR/out.raw"
cmp "$TESTDIR/expect.raw" "$TESTDIR/out.raw"
qemu-io -f raw -c "write -P 0xee 0 1M" "$uri" >/dev/null
qemu-img convert -n -f raw -O raw "$TESTDIR/base.raw" "$uri"
qemu-img compare -f raw -F raw "$TESTDIR/base.raw" "$uri"
nbd_stop s
