#!/usr/bin/env bash
# Reads that need no waiting are served by the thread that reads the
# stream (nbd/conn.c, conn_inline), one after another, without handing
# each to a worker; the rest go to workers as before. Counted in
# isocache_nbd_reads_inline_total. In each case a libnbd client makes
# 2 x 4000 random 4 KiB reads at QD16 of a clone of base@gold (some
# straddling two blocks) and checks every byte, and the export counts
# each read once, however many tries it took:
#  - page cache (the default): the reads are served inline, and so are
#    nbdcopy's reads of 256 KiB;
#  - --cache none with a warm isocached behind the cache filter: the hits
#    come inline from the daemon's arena, the first pass's misses from
#    workers (they wait for the daemon's fills);
#  - a filter in the stack whose pread does not honour IC_REQ_NOWAIT
#    (readahead): no read is served inline.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
source "$(dirname "$0")/nbd-functions.bash"
requires curl nbdcopy
nbd_need_python
trace_on

nbd_random_gold 16
"$ADMIN" clone base@gold vm
m=$TESTDIR/metrics.sock

# reads NAME ARGS...: serve vm with ARGS, make the reads, check the read
# count; prints how many were served inline.
reads() {
	local name=$1 pass n
	shift
	nbd_start "$name" -r --metrics "unix:$m" "$@" vm
	for pass in 1 2; do
		nbd_client qd "$(nbd_uri "$name")" "$TESTDIR/base.raw" 4000 16 >"$TESTDIR/$name.out" ||
			fail "$name, pass $pass: $(cat "$TESTDIR/$name.out")"
		grep -qx "verified 4000" "$TESTDIR/$name.out" || fail "$name: $(cat "$TESTDIR/$name.out")"
	done
	n=$(nbd_metric "$m" vm isocache_nbd_requests_total ',op="read"')
	[ "$n" = 8000 ] || fail "$name: 8000 reads counted as $n"
	nbd_metric "$m" vm isocache_nbd_reads_inline_total
	nbd_stop "$name"
}

n=$(reads hot)
echo "page cache: $n of 8000 reads served inline"
((n >= 4000)) || fail "page cache: only $n of 8000 reads were served inline"

# 16 MiB in reads of 256 KiB: 64, up to 1 MiB each goes inline. A read
# goes inline only if every page of it is cached (the random reads above
# need not have touched them all: the first copy brings in the rest) and
# the kernel need not start readahead for it (RWF_NOWAIT starts no I/O),
# and not while a worker's reply is being sent: one read that must wait
# hands the ones behind it to workers too while their replies go out. Here
# successive copies were served all inline and none inline by turns (a
# CI run under ASan served none of the second), so copies are made until
# one after the first has half of its reads served inline, five at most.
nbd_start copy -r --metrics "unix:$m" vm
for pass in 1 2 3 4 5; do
	before=$(nbd_metric "$m" vm isocache_nbd_reads_inline_total)
	nbdcopy --request-size=262144 "$(nbd_uri copy)" "$TESTDIR/copy.raw"
	cmp "$TESTDIR/copy.raw" "$TESTDIR/base.raw" || fail "nbdcopy read other bytes"
	rm "$TESTDIR/copy.raw"
	n=$(($(nbd_metric "$m" vm isocache_nbd_reads_inline_total) - before))
	echo "page cache, nbdcopy, copy $pass: $n of 64 reads of 256 KiB served inline"
	((pass == 1 || n < 32)) || break
done
((n >= 32)) || fail "page cache: only $n of nbdcopy's 64 reads were served inline"
nbd_stop copy

cached_start --memory 64M
export ISOCACHE_SOCKET
n=$(reads daemon --cache none --filter cache)
echo "--cache none, isocached: $n of 8000 reads served inline"
((n >= 4000)) || fail "isocached: only $n of 8000 reads were served inline"

n=$(reads readahead --filter readahead)
echo "readahead in the stack: $n of 8000 reads served inline"
[ "$n" = 0 ] || fail "readahead does not honour IC_REQ_NOWAIT, yet $n reads went inline"
echo PASS
