#!/usr/bin/env bash
# fio (io_uring, 4 KiB random read/write at queue depth 16, crc32c
# verification) on a vdisk file: through the kernel's page cache, with
# O_DIRECT (direct=1), and on a mount with -o direct_io.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/fuse-functions.bash"
fuse_requires fio cmp
fio --enghelp 2>&1 | grep -qw io_uring || { echo "SKIP: fio has no io_uring engine" >&2; exit 77; }
trace_on

fuse_store
random_image "$TESTDIR/base.raw" 32
"$ADMIN" import "$TESTDIR/base.raw" base
"$ADMIN" snap base@gold
"$ADMIN" clone base@gold vm

# run_fio NAME FILE DIRECT: verified random writes and reads, then a
# short mixed load; any error fails.
run_fio() {
	local out=$TESTDIR/fio-$1.txt
	fio --name="$1" --filename="$2" --ioengine=io_uring --direct="$3" --rw=randrw \
		--bs=4k --iodepth=16 --size=16M --offset=8M --verify=crc32c --verify_fatal=1 \
		--do_verify=1 --randrepeat=0 --output="$out" || { cat "$out"; fail "fio $1"; }
	grep -q 'err= 0' "$out" || { cat "$out"; fail "fio $1 errors"; }
	fio --name="$1-load" --filename="$2" --ioengine=io_uring --direct="$3" --rw=randrw \
		--bs=4k --iodepth=16 --numjobs=2 --size=32M --time_based --runtime=3 \
		--group_reporting --output="$out" || { cat "$out"; fail "fio $1 load"; }
	grep -q 'err= 0' "$out" || { cat "$out"; fail "fio $1 load errors"; }
}

mnt=$TESTDIR/mnt
fuse_mount "$mnt"
run_fio cached "$mnt/vm" 0
run_fio direct "$mnt/vm" 1
cmp "$mnt/base@gold" "$TESTDIR/base.raw" || fail "the snapshot changed under fio"
fuse_umount "$mnt"

fuse_mount "$mnt" -o direct_io --cache none
run_fio direct_io "$mnt/vm" 0
fuse_umount "$mnt"

"$ADMIN" export vm "$TESTDIR/vm.raw"
fuse_mount "$mnt" -r
cmp "$mnt/vm" "$TESTDIR/vm.raw" || fail "the mount and the export disagree after fio"
"$ADMIN" check
fuse_umount "$mnt"
