#!/usr/bin/env bash
# The L2 tier survives a restart: a layer read once is written to the L2
# file; after SIGTERM and a new start, reading it again costs no backing
# read, every block comes from L2 with a good checksum.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
source "$(dirname "$0")/cached-l2-functions.bash"
set -x

cached_layer "$TESTDIR/base" 8M
cached_l2_start
cached_l2_cat "$TESTDIR/base"
[ "$(cached_stat "$TESTDIR/base" backing_bytes)" = $((8 << 20)) ] || fail "first read: backing bytes"
[ "$(cached_stat "$TESTDIR/base" l2_misses)" = 2048 ] || fail "first read: L2 misses"
cached_l2_stop

cached_l2_start
[ "$(cached_stat all l2_blocks)" = 2048 ] || fail "the restarted daemon's L2 is not warm"
[ "$(cached_stat all l2_limit)" = $((32 << 20)) ] || fail "l2_limit"
cached_l2_cat "$TESTDIR/base"
[ "$(cached_stat "$TESTDIR/base" backing_bytes)" = 0 ] || fail "second read: backing bytes"
[ "$(cached_stat "$TESTDIR/base" l2_hits)" = 2048 ] || fail "second read: L2 hits"
[ "$(cached_stat "$TESTDIR/base" l2_bytes_read)" = $((8 << 20)) ] || fail "L2 bytes read"
[ "$(cached_stat "$TESTDIR/base" l2_csum_fails)" = 0 ] || fail "checksum failures"
# Now in L1: a third read touches neither the file nor L2.
cached_l2_cat "$TESTDIR/base"
[ "$(cached_stat "$TESTDIR/base" l2_hits)" = 2048 ] || fail "third read went to L2"
cached_l2_stop

# Without --l2 the daemon has no second tier.
cached_start --memory 16M
[ "$(cached_stat all l2_limit)" = 0 ] || fail "an L2 without --l2"
echo PASS
