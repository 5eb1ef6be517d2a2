#!/usr/bin/env bash
# isocache-fuse --metrics on a Unix socket: a write through the mount is
# counted per image (bytes, a flush, one claim of ownership and, once the
# last writer closed, one release), a snapshot read whole counts exactly
# its size, and every scrape passes `promtool check metrics`.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/fuse-functions.bash"
fuse_requires curl promtool
trace_on

# scrape: the mount's metrics into $TESTDIR/fuse.prom, checked.
scrape() {
	curl -sf --max-time 10 --unix-socket "$TESTDIR/fuse-metrics.sock" http://localhost/metrics \
		>"$TESTDIR/fuse.prom" || fail "scrape failed"
	promtool check metrics <"$TESTDIR/fuse.prom" || fail "promtool rejects the metrics"
}
# value SAMPLE: its value in the last scrape (empty when absent).
value() { awk -v s="$1" '$1 == s { print $2 }' "$TESTDIR/fuse.prom"; }
# released: the mount has given vm back (the kernel's release is async).
released() { scrape && [ "$(value 'isocache_fuse_releases_total{image="vm"}')" = 1 ]; }

fuse_store
"$ADMIN" create vm --size 16M
mnt=$TESTDIR/mnt
fuse_mount "$mnt" --no-cache --metrics "unix:$TESTDIR/fuse-metrics.sock"

scrape
[ "$(value 'isocache_fuse_requests_total{image="vm",op="write"}')" = 0 ] || fail "writes before any"
head -c 4M /dev/urandom >"$TESTDIR/data"
dd if="$TESTDIR/data" of="$mnt/vm" bs=1M conv=notrunc,fsync status=none
wait_until 10 released || fail "the release of vm was not counted"
[ "$(value 'isocache_fuse_claims_total{image="vm"}')" = 1 ] || fail "claims: $(value 'isocache_fuse_claims_total{image="vm"}')"
written=$(value 'isocache_fuse_bytes_total{image="vm",op="write"}')
((written >= 4 << 20)) || fail "$written bytes written counted, 4 MiB written"
(($(value 'isocache_fuse_requests_total{image="vm",op="flush"}') >= 1)) || fail "no flush counted"

"$ADMIN" snap vm@s1
cat "$mnt/vm@s1" >"$TESTDIR/s1.raw" # one open: the kernel reads each page once
cmp -n 4M "$TESTDIR/s1.raw" "$TESTDIR/data" || fail "the snapshot differs from what was written"
scrape
[ "$(value 'isocache_fuse_bytes_total{image="vm@s1",op="read"}')" = $((16 << 20)) ] ||
	fail "vm@s1 read: $(value 'isocache_fuse_bytes_total{image="vm@s1",op="read"}') bytes counted"
reads=$(value 'isocache_fuse_requests_total{image="vm@s1",op="read"}')
[ "$(value 'isocache_fuse_request_duration_seconds_count{image="vm@s1",op="read"}')" = "$reads" ] ||
	fail "the histogram's count is not the number of reads"
fuse_umount "$mnt"
[ ! -e "$TESTDIR/fuse-metrics.sock" ] || fail "the metrics socket was left behind"
fuse_check_log
echo PASS
