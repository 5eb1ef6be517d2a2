#!/usr/bin/env bash
# The L2 tier survives a restart: a layer read once is written to the L2
# file; after SIGTERM and a new start, reading it again costs no backing
# read, every block comes from L2 with a good checksum.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
source "$(dirname "$0")/cached-l2-functions.bash"
trace_on

cached_l2_filled "$TESTDIR/base" 8M

cached_l2_start
# L2 writes are best effort (a fill finding every staging buffer busy is not
# written), so allow a few fills' worth of misses: backing bytes ~ 0.
blocks=$(cached_stat all l2_blocks)
((blocks >= 2048 - 128)) || fail "the restarted daemon's L2 is not warm: $blocks blocks"
[ "$(cached_stat all l2_limit)" = $((32 << 20)) ] || fail "l2_limit"
cached_l2_cat "$TESTDIR/base"
backing=$(cached_stat "$TESTDIR/base" backing_bytes)
hits=$(cached_stat "$TESTDIR/base" l2_hits)
((backing <= (2048 - blocks) * 4096)) || fail "second read: $backing backing bytes"
((hits >= blocks && hits * 4096 + backing >= (8 << 20))) || fail "second read: $hits L2 hits"
[ "$(cached_stat "$TESTDIR/base" l2_bytes_read)" = $((hits * 4096)) ] || fail "L2 bytes read"
[ "$(cached_stat "$TESTDIR/base" l2_csum_fails)" = 0 ] || fail "checksum failures"
# Now in L1: a third read touches neither the file nor L2.
cached_l2_cat "$TESTDIR/base"
[ "$(cached_stat "$TESTDIR/base" l2_hits)" = "$hits" ] || fail "third read went to L2"
cached_l2_stop

# Without --l2 the daemon has no second tier.
cached_start --memory 16M
[ "$(cached_stat all l2_limit)" = 0 ] || fail "an L2 without --l2"
echo PASS
