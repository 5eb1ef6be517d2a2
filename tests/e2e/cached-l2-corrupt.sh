#!/usr/bin/env bash
# A corrupted L2 slot is a miss, never wrong data: flip a byte of the L2
# file while the daemon is stopped; the next read still returns the layer's
# bytes (the block is filled from the file again), and the checksum failure
# is counted.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
source "$(dirname "$0")/cached-l2-functions.bash"
trace_on

cached_l2_filled "$TESTDIR/base" 8M

# The slots are the file's last 32 MiB, written from the first on. Flip one
# byte in slot 100.
off=$(($(stat -c %s "$TESTDIR/l2") - (32 << 20) + 100 * 4096 + 1234))
old=$(od -An -tu1 -j "$off" -N1 "$TESTDIR/l2" | tr -d ' ')
printf "$(printf '\\%03o' $((old ^ 0xff)))" | dd of="$TESTDIR/l2" bs=1 seek="$off" conv=notrunc status=none

cached_l2_start
cached_l2_cat "$TESTDIR/base"
[ "$(cached_stat "$TESTDIR/base" l2_csum_fails)" = 1 ] || fail "the bad slot was not counted"
# Every block L2 does not hold (the bad one, and any fill whose L2 write was
# skipped: those are best effort) came from the file.
hits=$(cached_stat "$TESTDIR/base" l2_hits)
backing=$(cached_stat "$TESTDIR/base" backing_bytes)
((backing >= 4096 && hits * 4096 + backing >= (8 << 20))) || fail "the bad block was not filled from the file"
[ "$(cached_stat all l2_csum_fails)" = 1 ] || fail "totals"
# The bad entry was dropped and the block written to L2 again: after another
# restart it is a good L2 hit too.
cached_l2_stop
cached_l2_start
cached_l2_cat "$TESTDIR/base"
(($(cached_stat "$TESTDIR/base" l2_hits) >= hits + 1)) || fail "the refilled block is not in L2"
[ "$(cached_stat "$TESTDIR/base" l2_csum_fails)" = 0 ] || fail "still a bad slot"
echo PASS
