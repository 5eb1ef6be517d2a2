#!/usr/bin/env bash
# isocache-fuse --cache none opens the layer files O_DIRECT: reads through
# the mount leave none of their pages in the host's page cache. A layer
# opened O_DIRECT reads into a page-aligned buffer only, and into any other
# through the page cache (vdisk/backend.c); the workers' read buffers were
# not aligned, so every read of such a mount went through the page cache.
# Checked with fincore on the layer files after their pages were dropped:
# reads of 1 MiB and of 256 KiB (direct), and buffered ones.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/fuse-functions.bash"
fuse_requires fincore python3
trace_on

fuse_store
cleanup_fn chattr -R -i "$ISOCACHE_STORE"
random_image "$TESTDIR/base.raw" 16
"$ADMIN" import "$TESTDIR/base.raw" base >/dev/null
"$ADMIN" snap base@gold >/dev/null
"$ADMIN" clone base@gold vm >/dev/null

layers=$(find "$ISOCACHE_STORE/layers" -type f)
# drop: the layer files' pages out of the page cache (POSIX_FADV_DONTNEED).
drop() {
	python3 -c 'import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)' $layers
}
# cached: pages of the layer files in the page cache now.
cached() { fincore -b -n -o RES $layers | awk '{ s += $1 } END { print s + 0 }'; }

mnt=$TESTDIR/mnt
fuse_mount "$mnt" --read-only --cache none --no-cache
for how in "bs=1M iflag=direct" "bs=256K iflag=direct" "bs=1M"; do
	drop
	[ "$(cached)" = 0 ] || fail "the layer files' pages could not be dropped: $(cached) bytes"
	# shellcheck disable=SC2086
	dd if="$mnt/vm" of="$TESTDIR/copy.raw" $how status=none
	cmp "$TESTDIR/copy.raw" "$TESTDIR/base.raw" || fail "$how: the copy is not the image"
	echo "$how: $(cached) bytes of the layer files in the page cache"
	[ "$(cached)" = 0 ] || fail "$how: --cache none read $(cached) bytes through the page cache"
done
echo PASS
