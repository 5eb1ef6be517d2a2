#!/usr/bin/env bash
# Large reads that hit isocached's arena leave isocache-nbd without a copy:
# the arena's pages are spliced into a pipe and from it into the socket
# (docs/NBD.md, "Reads spliced from the cache"). Counted by
# isocache_nbd_reads_spliced_total; every byte checked with cmp.
#  - cold and warm: nbdcopy of a clone (1 MiB requests) is spliced, the
#    cold one once the daemon has filled what each read lacks (it copies
#    nothing then), and reads what the image holds, holes included (a
#    range over a hole is not all arena blocks: it takes the usual way).
#  - evicting: three clones read at once, through a daemon holding a
#    quarter of the image, so that blocks are evicted and filled again
#    while the pipes hold pages of them: each copy is still the image.
#  - splice=0 (the cache filter's parameter): copied, never spliced.
#  - in the e2e-noshared runs (no arena): never spliced, same data.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
source "$(dirname "$0")/nbd-functions.bash"
trace_on
requires curl nbdcopy

cached_golden 32 vm1 vm2 vm3
cached_start --memory 64M
export ISOCACHE_SOCKET

spliced() { nbd_metric "$TESTDIR/metrics.sock" "$1" isocache_nbd_reads_spliced_total; }
copy() { nbdcopy --request-size=1048576 "$(nbd_uri s "$1")" "$TESTDIR/$2"; }

# ---- cold, then warm ----
nbd_start s --filter cache --metrics "unix:$TESTDIR/metrics.sock" vm1 vm2 vm3
for run in cold warm; do
	s0=$(spliced vm1)
	copy vm1 "$run.raw"
	copy_is_image "$run.raw" "$run"
	expect_spliced $(($(spliced vm1) - s0)) "$run copy of 32 MiB in 1 MiB reads"
done
nbd_stop s

# ---- evicting: a daemon holding 8 MiB of the 32 ----
_ic_kill_pidfile "$TESTDIR/cached.pid"
cached_start --memory 8M --readahead 1M
nbd_start s --filter cache --metrics "unix:$TESTDIR/metrics.sock" vm1 vm2 vm3
copy_rounds
evicted_under_copies
nbd_stop s

# ---- splice=0 ----
nbd_start s --filter cache:splice=0 --metrics "unix:$TESTDIR/metrics.sock" vm1
copy vm1 a.raw
copy vm1 b.raw
copy_is_image b.raw "splice=0"
[ "$(spliced vm1)" = 0 ] || fail "splice=0: $(spliced vm1) reads were spliced"
nbd_stop s
echo PASS
