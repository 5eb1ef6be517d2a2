#!/usr/bin/env bash
# Boot traces (docs/CACHED.md, "Boot traces"), with real servers:
# - a clone read in a boot-like order (scattered ranges, one repeated) is
#   recorded: `cache trace show` gives those blocks, deduplicated, as
#   ranges in first-touch order;
# - after a daemon restart, the layer's next cold start prefetches them:
#   trace_fills and trace_blocks in the stats, and the reader then finds
#   every block cached (hits = lookups, no new backing read); a server
#   that opens the layer starts the replay before any read;
# - a copy of the store (cp -a, to a new path) finds its trace;
# - a damaged and a huge trace are refused clearly, by admin and daemon,
#   and the daemon still serves and records anew;
# - a stale trace (the layer file changed) is ignored, and a layer
#   replaced under the same name has no trace;
# - a recording's window opens with the layer's first read and, once
#   passed, the trace is written while the daemon runs;
# - --no-trace records nothing and replays nothing.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/cached-functions.bash"
trace_on
requires qemu-io

cached_golden 16 vm1 vm2
layer=$(find "$ISOCACHE_STORE" -name '*.raw' -perm 0444)
[ "$(echo "$layer" | wc -l)" = 1 ] || fail "expected one frozen layer: $layer"
# random_image leaves every third MiB a hole: 0, 2, 3, 5 ... MiB hold data.
boot_reads=(-c 'read 5M 256K' -c 'read 0 128K' -c 'read 5M 64K' -c 'read 9M 512K')
boot_blocks=$(((256 + 128 + 512) / 4))

# boot SERVER VDISK: the boot-like reads through server SERVER's export VDISK.
boot() {
	qemu-io -f raw -r "${boot_reads[@]}" "$(nbd_uri "$1" "$2")" >"$TESTDIR/qemu-io.$1.log"
	qemu_io_done "$TESTDIR/qemu-io.$1.log" 4
}
# cached_stop: SIGTERM the daemon and wait for it: recordings are written.
cached_stop() {
	local pid
	pid=$(cat "$TESTDIR/cached.pid")
	kill -TERM "$pid"
	wait_until 30 gone "$pid" || fail "isocached did not stop"
}
show_json() { "$ADMIN" cache trace show --json "${1:-base@gold}"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
stat_of() { cached_stat "$layer" "$1"; }
# prefetched FILE: has the daemon prefetched the whole trace of FILE's layer?
prefetched() { (($(cached_stat "$1" trace_blocks) >= boot_blocks)); }

# 1. Record.
cached_start --trace-window 60 --log-level debug 2>"$TESTDIR/cached.1.log"
nbd_start a --filter cache vm1
boot a vm1
expect_fail 'no trace recorded' "$ADMIN" cache trace show base@gold # written at window end or exit
cached_stop
show_json | tee "$TESTDIR/show.json"
[ "$(show_json | json '["blocks"]')" = "$boot_blocks" ] || fail "trace blocks, want $boot_blocks"
[ "$(show_json | json '["ranges"]')" = 3 ] || fail "trace ranges, want 3"
[ "$(show_json | json '["bytes"]')" = $((boot_blocks * 4096)) ] || fail "trace bytes"
[ "$(show_json | json '["current"]')" = True ] || fail "a fresh trace is not current"
"$ADMIN" cache trace show base@gold | grep -E "blocks +$boot_blocks .* in 3 ranges" ||
	fail "the table does not show the trace"
[ "$(stat -c %a "$ISOCACHE_TRACE_DIR")" = 700 ] || fail "trace directory is not 0700"
tsize=$(stat -c %s "$ISOCACHE_TRACE_DIR"/*.trace)
((tsize < 100)) || fail "three ranges took $tsize bytes"

# 2. Restart: the next cold start prefetches the trace before the reader.
nbd_stop a
cached_start 2>"$TESTDIR/cached.2.log"
[ "$(stat_of trace_fills)" != "" ] || fail "no trace_fills counter"
wait_until 30 prefetched "$layer" ||
	fail "prefetch did not load the trace: trace_blocks $(stat_of trace_blocks)"
(($(stat_of trace_fills) > 0)) || fail "no prefetch fills"
backing=$(stat_of backing_bytes)
nbd_start b --filter cache vm2
boot b vm2
"$CTL" stats "$layer" | tee "$TESTDIR/stats.2"
[ "$(stat_of hits)" = "$(stat_of lookups)" ] || fail "the reader missed blocks the trace held"
(($(stat_of hits) >= boot_blocks)) || fail "the reader's hits: $(stat_of hits)"
[ "$(stat_of backing_bytes)" = "$backing" ] || fail "the reader caused backing reads"
grep -q "replaying its boot trace ($boot_blocks blocks in 3 runs)" "$TESTDIR/cached.2.log" ||
	fail "the daemon did not say it replays"
nbd_stop b
cached_stop

# 2b. The replay begins when a server opens the layer, before its
# client's first read (a VM's firmware and loader run first): nothing here
# reads, nor asks the daemon about the layer.
cached_start 2>"$TESTDIR/cached.2b.log"
nbd_start c --filter cache vm2
wait_until 30 grep -q "replaying its boot trace" "$TESTDIR/cached.2b.log" ||
	fail "opening the layer did not start its replay: $(cat "$TESTDIR/cached.2b.log")"
nbd_stop c
cached_stop

# 3. A copy of the store (cp -a keeps mtimes and xattrs) finds its trace.
cp -a "$ISOCACHE_STORE" "$TESTDIR/copy"
cleanup_fn chattr -R -i "$TESTDIR/copy"
copy_layer=$TESTDIR/copy/${layer#"$ISOCACHE_STORE"/}
chattr +i "$copy_layer" # root's frozen layers are immutable; cp does not copy that
[ "$(show_json | json '["blocks"]')" = "$boot_blocks" ] || fail "trace gone"
[ "$("$ADMIN" --store "$TESTDIR/copy" cache trace show --json base@gold | json '["current"]')" = True ] ||
	fail "the copied store's layer does not find its trace"
cached_start 2>"$TESTDIR/cached.3.log"
wait_until 30 prefetched "$copy_layer" ||
	fail "the copy's cold start did not prefetch"
cached_stop

# 4. Damaged and huge traces are refused clearly, never a crash.
trace=$(ls "$ISOCACHE_TRACE_DIR"/*.trace)
cp "$trace" "$TESTDIR/good.trace"
printf '\xff' | dd of="$trace" bs=1 seek=73 conv=notrunc status=none # a run
expect_fail 'trace file refused: damaged' "$ADMIN" cache trace show base@gold
head -c $((tsize - 2)) "$TESTDIR/good.trace" >"$trace" # cut short
expect_fail 'trace file refused: damaged' "$ADMIN" cache trace show base@gold
head -c 2M /dev/urandom >"$trace"
expect_fail 'trace file refused: larger than the 1 MiB bound' "$ADMIN" cache trace show base@gold
cached_start --trace-window 60 2>"$TESTDIR/cached.4.log"
cmp <("$CTL" cat "$layer") "$layer" || fail "reads through a daemon with a huge trace differ"
grep -q "refused: larger than the 1 MiB bound; recording anew" "$TESTDIR/cached.4.log" ||
	fail "the daemon did not say why it refused the trace"
[ "$(stat_of trace_fills)" = 0 ] || fail "a refused trace was replayed"
cached_stop
[ "$(show_json | json '["blocks"]')" = "$(($(stat -c %s "$layer") / 4096))" ] ||
	fail "the refused trace was not recorded anew from the whole-file read"

# 5. Stale: the same layer uuid on a file of another mtime is ignored.
cp "$TESTDIR/good.trace" "$trace"
chattr -i "$layer"
touch -m -d '2001-01-01' "$layer"
chattr +i "$layer"
[ "$(show_json | json '["current"]')" = False ] || fail "a stale trace shows as current"
"$ADMIN" cache trace show base@gold | grep -q 'stale' || fail "show does not say stale"
cached_start 2>"$TESTDIR/cached.5.log"
"$CTL" stats "$layer" >/dev/null
wait_until 10 grep -q "its trace is stale" "$TESTDIR/cached.5.log" || fail "stale trace not logged"
[ "$(stat_of trace_fills)" = 0 ] || fail "a stale trace was replayed"
cached_stop

# A layer replaced under the same name (a new layer uuid) has no trace.
"$ADMIN" rm vm1
"$ADMIN" rm vm2
"$ADMIN" rm base@gold
"$ADMIN" snap base@gold
expect_fail 'no trace recorded' "$ADMIN" cache trace show base@gold
"$ADMIN" cache trace clear base@gold && fail "cleared a trace that is not there"
layer=$(find "$ISOCACHE_STORE" -name '*.raw' -perm 0444)
# Its recording window opens with its first read, not at REGISTER: a
# layer registered, left alone past the window, then read is recorded, and
# written while the daemon runs once the window has passed.
cached_start --trace-window 1 2>"$TESTDIR/cached.6.log"
"$CTL" stats "$layer" >/dev/null
t0=$SECONDS
after() { ((SECONDS >= $1)); }
wait_until 10 after $((t0 + 3)) # the passing of time is what is tested
"$CTL" cat "$layer" >/dev/null
[ "$(stat_of trace_fills)" = 0 ] || fail "the new layer replayed the old layer's trace"
wait_until 10 show_json >/dev/null 2>&1 || fail "the window did not end with a trace written"
# (the window may close before cat is done on a loaded machine: some blocks)
(($(show_json | json '["blocks"]') > 0)) || fail "the new layer's read was not recorded"
cached_stop

# 6. clear, and --no-trace: nothing recorded, nothing replayed.
"$ADMIN" cache trace clear base@gold
expect_fail 'no trace recorded' "$ADMIN" cache trace show base@gold
"$ADMIN" clone base@gold vm3
before=$(ls -l --full-time "$ISOCACHE_TRACE_DIR") # the old layer's trace stays
cached_start --no-trace 2>"$TESTDIR/cached.7.log"
nbd_start c --filter cache vm3
boot c vm3
nbd_stop c
cached_stop
expect_fail 'no trace recorded' "$ADMIN" cache trace show base@gold
[ "$(ls -l --full-time "$ISOCACHE_TRACE_DIR")" = "$before" ] ||
	fail "--no-trace wrote in $ISOCACHE_TRACE_DIR: $(ls -l "$ISOCACHE_TRACE_DIR")"
echo PASS
