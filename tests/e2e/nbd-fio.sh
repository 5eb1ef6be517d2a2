#!/usr/bin/env bash
# Load through fio's nbd engine (libnbd): 4 KiB random writes then reads
# with crc32c verification at queue depth 16, several jobs at once, so
# requests run concurrently and replies come back out of order.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires fio
fio --enghelp 2>&1 | grep -qw nbd || { echo "SKIP: fio has no nbd engine" >&2; exit 77; }
trace_on

nbd_store
random_image "$TESTDIR/base.raw" 32
"$ADMIN" import "$TESTDIR/base.raw" base
"$ADMIN" snap base@gold
"$ADMIN" clone base@gold vm
nbd_start s vm

# fio's nbd engine wants the URI without the export path when it is the default.
uri=$(nbd_uri s)
fio --name=verify --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=16 \
	--size=32M --verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=0 \
	--output="$TESTDIR/fio.txt" || { cat "$TESTDIR/fio.txt"; fail "fio verify"; }
grep -q 'err= 0' "$TESTDIR/fio.txt" || { cat "$TESTDIR/fio.txt"; fail "fio errors"; }
fio --name=mixed --ioengine=nbd --uri="$uri" --rw=randrw --bs=4k --iodepth=32 --numjobs=2 \
	--size=16M --time_based --runtime=5 --group_reporting --output="$TESTDIR/mixed.txt" ||
	{ cat "$TESTDIR/mixed.txt"; fail "fio mixed load"; }
grep -q 'err= 0' "$TESTDIR/mixed.txt" || { cat "$TESTDIR/mixed.txt"; fail "fio mixed errors"; }
nbd_stop s
