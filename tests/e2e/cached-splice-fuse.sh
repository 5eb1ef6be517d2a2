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
check() { cmp "$TESTDIR/$1" "$TESTDIR/base.raw" || fail "$2: the copy is not the image"; }
# expect_spliced N WHAT: N reads spliced, or none without arenas.
expect_spliced() {
	echo "$2: $1 reads spliced"
	if [ -n "${IC_CACHED_NO_SHARED:-}" ]; then
		[ "$1" = 0 ] || fail "$2: no arenas, yet $1 reads were spliced"
	else
		(($1 >= 8)) || fail "$2: only $1 reads of 32 MiB were spliced"
	fi
}

fuse_mount "$mnt" --read-only --metrics "unix:$TESTDIR/fuse-metrics.sock"
s0=0
for run in cold warm; do
	dd if="$mnt/vm1" of="$TESTDIR/$run.raw" bs=512K iflag=direct status=none
	check "$run.raw" "$run"
	n=$(spliced vm1)
	expect_spliced $((n - s0)) "$run, direct 512 KiB reads"
	s0=$n
done
cat "$mnt/vm2" >"$TESTDIR/buffered.raw"
check buffered.raw "buffered"
expect_spliced "$(spliced vm2)" "buffered reads"
fuse_umount "$mnt"

# ---- a daemon holding 8 MiB of the 32, three readers ----
_ic_kill_pidfile "$TESTDIR/cached.pid"
cached_start --memory 8M --readahead 1M
fuse_mount "$mnt" --read-only --metrics "unix:$TESTDIR/fuse-metrics.sock"
for round in 1 2 3; do
	pids=()
	for c in vm1 vm2 vm3; do
		dd if="$mnt/$c" of="$TESTDIR/$c.raw" bs=512K iflag=direct status=none &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || fail "round $round: a reader failed"; done
	for c in vm1 vm2 vm3; do check "$c.raw" "round $round, $c"; done
done
echo "evicting: spliced $(spliced vm1) + $(spliced vm2) + $(spliced vm3) reads"
fuse_umount "$mnt"

# ---- splice=0 ----
fuse_mount "$mnt" --read-only --filter cache:splice=0 --metrics "unix:$TESTDIR/fuse-metrics.sock"
dd if="$mnt/vm1" of="$TESTDIR/off.raw" bs=512K iflag=direct status=none
check off.raw "splice=0"
[ "$(spliced vm1)" = 0 ] || fail "splice=0: $(spliced vm1) reads were spliced"
fuse_umount "$mnt"
echo PASS
