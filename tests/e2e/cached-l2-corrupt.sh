#!/usr/bin/env bash
# A corrupted L2 slot is a miss, never wrong data: flip a byte of the L2
# file while the daemon is stopped; the next read still returns the layer's
# bytes (the block is filled from the file again), and the checksum failure
# is counted.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
source "$(dirname "$0")/cached-l2-functions.bash"
set -x

cached_layer "$TESTDIR/base" 8M
cached_l2_start
cached_l2_cat "$TESTDIR/base"
cached_l2_stop

# The slots are the file's last 32 MiB; the layer's blocks went to the first
# 2048 of them. Flip one byte in slot 100.
off=$(($(stat -c %s "$TESTDIR/l2") - (32 << 20) + 100 * 4096 + 1234))
old=$(od -An -tu1 -j "$off" -N1 "$TESTDIR/l2" | tr -d ' ')
printf "$(printf '\\%03o' $((old ^ 0xff)))" | dd of="$TESTDIR/l2" bs=1 seek="$off" conv=notrunc status=none

cached_l2_start
cached_l2_cat "$TESTDIR/base"
[ "$(cached_stat "$TESTDIR/base" l2_csum_fails)" = 1 ] || fail "the bad slot was not counted"
[ "$(cached_stat "$TESTDIR/base" l2_hits)" = 2047 ] || fail "L2 hits"
[ "$(cached_stat "$TESTDIR/base" backing_bytes)" = 4096 ] || fail "the bad block was not filled from the file"
[ "$(cached_stat all l2_csum_fails)" = 1 ] || fail "totals"
# The bad entry was dropped and the block written again: after another
# restart every block is a good L2 hit.
cached_l2_stop
cached_l2_start
cached_l2_cat "$TESTDIR/base"
[ "$(cached_stat "$TESTDIR/base" l2_hits)" = 2048 ] || fail "the refilled block is not in L2"
[ "$(cached_stat "$TESTDIR/base" l2_csum_fails)" = 0 ] || fail "still a bad slot"
echo PASS
