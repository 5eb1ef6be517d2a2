#!/usr/bin/env bash
# --metrics during a small boot storm: three linked clones of one base read
# at once through one isocache-nbd and isocached. Every scrape (curl, over
# TCP for the daemon and a Unix socket for the server) passes
# `promtool check metrics`; the counters move while the clones are read and
# end where the reads put them: each export's read bytes and requests, its
# latency histogram's count equal to its requests, the daemon's hits, fills
# and bytes served. A listener that cannot start is a failed start.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/cached-functions.bash"
trace_on
requires nbdcopy curl promtool

# scrape NAME CURL-ARGS...: one scrape into $TESTDIR/NAME.prom, checked.
scrape() {
	local out=$TESTDIR/$1.prom
	shift
	curl -sf --max-time 10 "$@" >"$out" || fail "scrape $out failed"
	promtool check metrics <"$out" || fail "promtool rejects $out"
}
# value FILE SAMPLE: the value of the sample named exactly (labels included).
value() { awk -v s="$2" '$1 == s { print $2 }' "$TESTDIR/$1.prom"; }

cached_golden 16 vm1 vm2 vm3
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cached_start --memory 128M --metrics "127.0.0.1:$port"
nbd_start a --filter cache --metrics "unix:$TESTDIR/nbd-metrics.sock" vm1 vm2 vm3
daemon=(http://127.0.0.1:$port/metrics)
server=(--unix-socket "$TESTDIR/nbd-metrics.sock" http://localhost/metrics)

# A listener that cannot start stops the start, saying which and why.
expect_fail "127\.0\.0\.1:$port: cannot listen: Address already in use" \
	"$NBD" -r -k "$TESTDIR/x.sock" --metrics "127.0.0.1:$port" base@gold
expect_fail "nonsense: expected HOST:PORT or unix:PATH" \
	"$NBD" -r -k "$TESTDIR/x.sock" --metrics nonsense base@gold

scrape daemon0 "${daemon[@]}"
scrape server0 "${server[@]}"
[ "$(value daemon0 isocached_up)" = 1 ] || fail "the daemon did not answer its own scrape"
[ "$(value server0 'isocache_nbd_requests_total{export="vm1",op="read"}')" = 0 ] ||
	fail "reads counted before any client read"

pids=()
for vm in vm1 vm2 vm3; do
	nbdcopy "$(nbd_uri a $vm)" "$TESTDIR/$vm.raw" &
	pids+=($!)
done
# Scrape while the copies run, until they are all done.
n=0
while kill -0 "${pids[@]}" 2>/dev/null; do
	scrape "during$n" "${server[@]}"
	scrape "daemon-during$n" "${daemon[@]}"
	n=$((n + 1))
done
for pid in "${pids[@]}"; do wait "$pid" || fail "an nbdcopy failed"; done
for vm in vm1 vm2 vm3; do cmp "$TESTDIR/$vm.raw" "$TESTDIR/base.raw" || fail "$vm differs"; done

scrape daemon1 "${daemon[@]}"
scrape server1 "${server[@]}"
for vm in vm1 vm2 vm3; do
	reqs=$(value server1 "isocache_nbd_requests_total{export=\"$vm\",op=\"read\"}")
	bytes=$(value server1 "isocache_nbd_bytes_total{export=\"$vm\",op=\"read\"}")
	count=$(value server1 "isocache_nbd_request_duration_seconds_count{export=\"$vm\",op=\"read\"}")
	inf=$(value server1 "isocache_nbd_request_duration_seconds_bucket{export=\"$vm\",op=\"read\",le=\"+Inf\"}")
	echo "$vm: $reqs reads, $bytes bytes"
	((reqs > 0 && bytes > 0)) || fail "$vm: no reads counted"
	((bytes <= 16 << 20)) || fail "$vm: $bytes bytes read from a 16 MiB disk"
	[ "$count" = "$reqs" ] && [ "$inf" = "$reqs" ] || fail "$vm: histogram count $count/$inf, requests $reqs"
	[ "$(value server1 "isocache_nbd_errors_total{export=\"$vm\",op=\"read\"}")" = 0 ] ||
		fail "$vm: read errors counted"
done
for c in hits_total fills_total served_bytes_total lookups_total; do
	before=$(value daemon0 "isocached_$c")
	after=$(value daemon1 "isocached_$c")
	echo "isocached_$c: $before -> $after"
	((after > before)) || fail "isocached_$c did not move"
done
served=$(value daemon1 isocached_served_bytes_total)
backing=$(value daemon1 isocached_backing_bytes_total)
[ "$(value daemon1 isocached_saved_bytes_total)" = $((served - backing)) ] ||
	fail "saved bytes are not served minus backing"
echo "scraped $n times during the copies"

nbd_stop a
[ ! -e "$TESTDIR/nbd-metrics.sock" ] || fail "the server left its metrics socket behind"
echo PASS
