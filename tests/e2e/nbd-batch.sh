#!/usr/bin/env bash
# Replies that are ready together leave in one send (nbd/sendq.c), and
# every byte still arrives where it belongs. Checked through --metrics:
# isocache_nbd_replies_total against isocache_nbd_reply_batches_total.
#  - stall: a client sends an 8 MiB read and reads no reply, so the
#    server's send of it blocks; 15 reads of 4 KiB sent after it are all
#    done (the request counter says so) before the client reads. Without
#    batching that is 16 sends; with it the 15 leave together: 2.
#  - QD32: 20000 random 4 KiB reads, 32 in flight, through libnbd, each
#    checked against the imported file: they must all match, and batches
#    stay at most replies (how many coalesce depends on the machine).
#  - burst: 32 small reads (4 KiB, and 3584 bytes, some across two 4 KiB
#    granules) sent in one write, page-cache hits served inline: their 32
#    replies leave in one send (at most two); before, one send each. With
#    --cache none none of them may come from the page cache.
#  - the same over TLS (PSK), where a batch is corked into few records.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires curl psktool
nbd_need_python
trace_on

# No holes: the big read is then one read of the vdisk, one in the counter.
nbd_random_gold 64
nbd_start s --metrics "unix:$TESTDIR/metrics.sock" base@gold
uri=$(nbd_uri s)

metric() { nbd_metric "$TESTDIR/metrics.sock" base@gold "$@"; }
reads_are() { [ "$(metric isocache_nbd_requests_total ',op="read"')" = "$1" ]; }

# stall NAME URI: the stall client on a server that has served nothing
# yet; its 16 replies must leave in 2 sends.
stall() {
	local out=$TESTDIR/$1.out go=$TESTDIR/$1.go pid replies batches
	nbd_client stall "$2" "$TESTDIR/base.raw" "$go" >"$out" &
	pid=$!
	cleanup_fn kill "$pid"
	wait_line "$out" big
	wait_until 60 reads_are 1 || fail "$1: the 8 MiB read never reached the vdisk"
	touch "$go.1"
	wait_line "$out" stalled
	wait_until 60 reads_are 16 || fail "$1: the 4 KiB reads never reached the vdisk"
	touch "$go.2"
	wait "$pid" || fail "$1 client: $(cat "$out")"
	grep -qx "verified 16" "$out" || fail "$1 client: $(cat "$out")"
	replies=$(metric isocache_nbd_replies_total)
	batches=$(metric isocache_nbd_reply_batches_total)
	echo "$1: $replies replies in $batches sends"
	[ "$replies" = 16 ] || fail "$1: 16 replies sent, counted $replies"
	[ "$batches" = 2 ] || fail "$1: the 15 replies ready together took $((batches - 1)) sends, not 1"
}

# ---- 16 replies, the last 15 ready while the first is blocked ----
stall stall "$uri"

# ---- QD32 random reads, every byte checked ----
nbd_client qd "$uri" "$TESTDIR/base.raw" 20000 32 >"$TESTDIR/qd.out" ||
	fail "QD32 client: $(cat "$TESTDIR/qd.out")"
grep -qx "verified 20000" "$TESTDIR/qd.out" || fail "QD32 client: $(cat "$TESTDIR/qd.out")"
replies=$(($(metric isocache_nbd_replies_total) - 16))
batches=$(($(metric isocache_nbd_reply_batches_total) - 2))
echo "QD32: $replies replies in $batches sends"
[ "$replies" = 20000 ] || fail "20000 replies sent, counted $replies"
((batches <= replies)) || fail "more sends than replies"

# 32 small reads that arrive together, each a page-cache hit served by the
# thread that reads the stream: their replies leave together too (one send;
# a second when a read must wait or the stream's buffer splits them).
# Each burst's own counts; the first burst warms the page cache.
# burst LENGTH [SERVER]: prints the replies, sends and inline reads of it.
burst() {
	local r0 b0 i0
	r0=$(metric isocache_nbd_replies_total)
	b0=$(metric isocache_nbd_reply_batches_total)
	i0=$(metric isocache_nbd_reads_inline_total)
	python3 "$IC_SRC/tests/e2e/nbd-greedy-client.py" burst "$TESTDIR/${2:-s}.sock" \
		"$TESTDIR/base.raw" 32 "$1" >"$TESTDIR/burst.out" ||
		fail "burst client: $(cat "$TESTDIR/burst.out")"
	grep -qx "verified 32" "$TESTDIR/burst.out" || fail "burst client: $(cat "$TESTDIR/burst.out")"
	echo "$(($(metric isocache_nbd_replies_total) - r0)) $(($(metric isocache_nbd_reply_batches_total) - b0))" \
		"$(($(metric isocache_nbd_reads_inline_total) - i0))"
}
burst 4096 >/dev/null
for len in 4096 3584; do
	read -r replies batches inl < <(burst "$len")
	echo "32 reads of $len bytes at once: $replies replies in $batches sends, $inl inline"
	[ "$replies" = 32 ] || fail "32 replies sent, counted $replies"
	((inl == 32 && batches <= 2)) ||
		fail "32 reads served inline ($inl) took $batches sends: their replies were not batched"
done
nbd_stop s

# With the layers opened O_DIRECT (--cache none) no read comes from the page
# cache, batched or not: none is served inline. (A batch's buffers were
# once not page-aligned, and reads into them went through the page cache.)
nbd_start none --cache none --no-cache --metrics "unix:$TESTDIR/metrics.sock" base@gold
read -r replies batches inl < <(burst 4096 none)
echo "--cache none, 32 reads of 4096 bytes at once: $replies replies, $inl inline"
[ "$replies" = 32 ] || fail "--cache none: 32 replies sent, counted $replies"
[ "$inl" = 0 ] || fail "--cache none: $inl reads came from the page cache"
nbd_stop none

# ---- the same over TLS-PSK ----
mkdir "$TESTDIR/psk"
psktool -u alice -p "$TESTDIR/psk/keys.psk" >/dev/null
start_bg "$TESTDIR/tls.pid" "$NBD" --store "$ISOCACHE_STORE" -t -p 0 --pid-file "$TESTDIR/tls.pid" \
	--tls-psk "$TESTDIR/psk/keys.psk" --metrics "unix:$TESTDIR/metrics.sock" base@gold \
	2>"$TESTDIR/tls.log"
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$TESTDIR/tls.log")
[ -n "$port" ] || fail "no port logged: $(cat "$TESTDIR/tls.log")"
uri="nbds://alice@127.0.0.1:$port/?tls-psk-file=$TESTDIR/psk/keys.psk"
stall tls-stall "$uri"
nbd_client qd "$uri" "$TESTDIR/base.raw" 5000 32 >"$TESTDIR/tls-qd.out" ||
	fail "TLS QD32 client: $(cat "$TESTDIR/tls-qd.out")"
grep -qx "verified 5000" "$TESTDIR/tls-qd.out" || fail "TLS QD32: $(cat "$TESTDIR/tls-qd.out")"
pid=$(cat "$TESTDIR/tls.pid")
kill -TERM "$pid"
wait "$pid" || fail "TLS server exited with $? after SIGTERM: $(cat "$TESTDIR/tls.log")"
