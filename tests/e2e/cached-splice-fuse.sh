#!/usr/bin/env bash
# isocache-fuse sends large reads that isocached holds, or fills, to the
# kernel without a copy of its own: the arena's pages are spliced into a
# pipe and libfuse splices the pipe into /dev/fuse (docs/FUSE.md,
# "Reads"; docs/CACHED.md, "Spliced reads"). Counted by
# isocache_fuse_reads_spliced_total; every byte compared with the image.
#  - a clone read cold and again (512 KiB direct reads, and cat's
#    buffered ones through the kernel's readahead): spliced, the same
#    bytes, holes included. (1 MiB reads are copied: libfuse's own pipe
#    cannot hold one with its header.)
#  - a daemon holding a quarter of the image while three readers copy
#    clones at once, evicting under them: the same bytes.
#  - --filter cache:splice=0: copied, never spliced; and in the
#    e2e-noshared runs (no arena) never spliced.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/fuse-functions.bash"
source "$(dirname "$0")/cached-functions.bash"
source "$(dirname "$0")/nbd-functions.bash"
fuse_requires curl
trace_on

cached_golden 32 vm1 vm2 vm3
cached_start --memory 64M
export ISOCACHE_SOCKET
mnt=$TESTDIR/mnt

spliced() {
	curl -sf --max-time 10 --unix-socket "$TESTDIR/fuse-metrics.sock" http://localhost/metrics |
		awk -v s="isocache_fuse_reads_spliced_total{image=\"$1\"}" '$1 == s { print $2 }'
}
copy() { dd if="$mnt/$1" of="$TESTDIR/$2" bs=512K iflag=direct status=none; }

fuse_mount "$mnt" --read-only --metrics "unix:$TESTDIR/fuse-metrics.sock"
s0=0
for run in cold warm; do
	copy vm1 "$run.raw"
	copy_is_image "$run.raw" "$run"
	n=$(spliced vm1)
	expect_spliced $((n - s0)) "$run, direct 512 KiB reads"
	s0=$n
done
cat "$mnt/vm2" >"$TESTDIR/buffered.raw"
copy_is_image buffered.raw "buffered"
expect_spliced "$(spliced vm2)" "buffered reads"
fuse_umount "$mnt"

# ---- a daemon holding 8 MiB of the 32, three readers ----
_ic_kill_pidfile "$TESTDIR/cached.pid"
cached_start --memory 8M --readahead 1M
fuse_mount "$mnt" --read-only --metrics "unix:$TESTDIR/fuse-metrics.sock"
copy_rounds
evicted_under_copies
fuse_umount "$mnt"

# ---- splice=0 ----
fuse_mount "$mnt" --read-only --filter cache:splice=0 --metrics "unix:$TESTDIR/fuse-metrics.sock"
copy vm1 off.raw
copy_is_image off.raw "splice=0"
[ "$(spliced vm1)" = 0 ] || fail "splice=0: $(spliced vm1) reads were spliced"
fuse_umount "$mnt"
echo PASS
