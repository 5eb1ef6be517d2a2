#!/usr/bin/env bash
# A crash loses at most the L2 index written since the last periodic write
# (every 10 s), and never returns wrong data: after kill -9 the restarted
# daemon starts warm from the last index, and slots that index names but
# that were overwritten since fail their checksums (counted) and are
# filled from the layer file again.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
source "$(dirname "$0")/cached-l2-functions.bash"
trace_on

cached_layer "$TESTDIR/a" 8M
cached_layer "$TESTDIR/b" 16M
cached_start --memory 4M --l2 "$TESTDIR/l2" --l2-size 16M
cached_l2_cat "$TESTDIR/a"
# One periodic index write (every 10 s) with all of a's 2048 blocks in it.
a_persisted() { (($(cached_l2_persisted "$TESTDIR/l2" $((16 << 20))) >= 2048)); }
wait_until 60 a_persisted || fail "a's blocks never reached the persisted L2 index"
# b fills all 16 MiB of L2 after that write, overwriting a's slots.
cached_l2_cat "$TESTDIR/b"
kill -9 "$(cat "$TESTDIR/cached.pid")"
wait "$(cat "$TESTDIR/cached.pid")" || true
# The ring's teardown outlives the process for a moment, and with it the
# listening socket: wait until it refuses.
wait_until 5 cached_refuses || fail "the killed daemon's socket still answers"

cached_start --memory 4M --l2 "$TESTDIR/l2" --l2-size 16M
(($(cached_stat all l2_blocks) >= 1024)) || fail "the index written before the crash was not loaded"
cached_l2_cat "$TESTDIR/a"
(($(cached_stat "$TESTDIR/a" l2_csum_fails) > 0)) || fail "overwritten slots were not caught"
(($(cached_stat "$TESTDIR/a" backing_bytes) > 0)) || fail "no block was filled again"
echo PASS
