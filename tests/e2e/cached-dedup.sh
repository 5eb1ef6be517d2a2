#!/usr/bin/env bash
# Content dedup (docs/CACHED.md, "Dedup"): two layers of one owner, made
# separately with 2 MiB of equal blocks (at other offsets) and 1 MiB each
# of their own, cost the daemon 4 MiB of pages, not 6 (dedup_bytes = 2 MiB),
# and 6 with --no-dedup. A client of either layer maps only that layer's
# own bytes. A tenant's layer with the same bytes, or one that claims the
# other's identity in its xattr, shares nothing: each reader gets her own
# bytes. The same through a store, isocache-nbd and isocache-admin.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
source "$(dirname "$0")/nbd-functions.bash"
trace_on
requires curl nbdcopy
cached_as_nobody

MIB=1048576
head -c $((2 * MIB)) /dev/urandom >"$TESTDIR/common"
head -c $((1 * MIB)) /dev/urandom >"$TESTDIR/a-only"
head -c $((1 * MIB)) /dev/urandom >"$TESTDIR/b-only"
cat "$TESTDIR/common" "$TESTDIR/a-only" >"$TESTDIR/a"
cat "$TESTDIR/b-only" "$TESTDIR/common" >"$TESTDIR/b"
cached_freeze "$TESTDIR/a"
cached_freeze "$TESTDIR/b"

# Bytes of the daemon's arena pages now (the cached data and the slots).
arena_rss() {
	awk '/memfd:isocached-layer/ { on = 1; next } /^[0-9a-f]+-[0-9a-f]+ / { on = 0 }
	     on && $1 == "Rss:" { kb += $2 } END { print kb * 1024 }' \
		"/proc/$(cat "$TESTDIR/cached.pid")/smaps"
}
read_both() {
	"$CTL" cat "$TESTDIR/a" | cmp - "$TESTDIR/a"
	"$CTL" cat "$TESTDIR/b" | cmp - "$TESTDIR/b"
	"$CTL" cat "$TESTDIR/b" | cmp - "$TESTDIR/b" # warm: the shared blocks come through a
}

cached_start --memory 64M --metrics "unix:$TESTDIR/metrics.sock"
read_both
[ "$(cached_stat all dedup_bytes)" = $((2 * MIB)) ] ||
	fail "dedup_bytes is $(cached_stat all dedup_bytes), not the 2 MiB in common"
curl -sf --max-time 10 --unix-socket "$TESTDIR/metrics.sock" http://localhost/metrics |
	grep -x "isocached_dedup_bytes $((2 * MIB))" || fail "the metric isocached_dedup_bytes is not 2 MiB"
[ "$(cached_stat "$TESTDIR/b" dedup_bytes)" = $((2 * MIB)) ] || fail "b's blocks were not shared"
[ "$(cached_stat all blocks)" = 1024 ] || fail "$(cached_stat all blocks) blocks hold pages, not 1024"
with=$(arena_rss)
# own_blocks N FILE [CMD-PREFIX...]: the arena a client of FILE maps holds
# N blocks of FILE's bytes and nothing else (no arenas with --no-shared).
own_blocks() {
	local n=$1 file=$2
	shift 2
	[ -z "${IC_CACHED_NO_SHARED:-}" ] || return 0
	"$@" "$CTL" shm own "$file" | tee "$TESTDIR/own"
	grep -q "^$n blocks of its own, 0 foreign\$" "$TESTDIR/own" || fail "$file's arena: $(cat "$TESTDIR/own")"
}
# a's arena holds all its 768 blocks, b's only its 256 (its common blocks
# are read through the daemon, from a's arena, which b's clients never map).
own_blocks 768 "$TESTDIR/a"
own_blocks 256 "$TESTDIR/b"

# A tenant's layer with a's bytes, and another claiming a's identity (its
# xattr) with bytes of its own at the common blocks: no sharing either way,
# and every reader gets her own file's bytes.
"${NOBODY[@]}" bash -c "$(declare -f cached_freeze); set -e
	cat '$TESTDIR/a' >'$TESTDIR/shared/mine'
	cached_freeze '$TESTDIR/shared/mine'
	head -c $((3 * MIB)) /dev/urandom >'$TESTDIR/shared/claim'
	setfattr -n user.isocache.layer -v '$(getfattr --only-values -n user.isocache.layer "$TESTDIR/a")' '$TESTDIR/shared/claim'
	chmod 0444 '$TESTDIR/shared/claim'"
for f in mine claim; do
	"${NOBODY[@]}" "$CTL" cat "$TESTDIR/shared/$f" | sha256sum >"$TESTDIR/$f.got"
	sha256sum <"$TESTDIR/shared/$f" | cmp - "$TESTDIR/$f.got" || fail "nobody read wrong bytes of $f"
	[ "$(cached_stat "$TESTDIR/shared/$f" dedup_bytes "${NOBODY[@]}")" = 0 ] ||
		fail "nobody's $f shares blocks with root's layers"
	own_blocks 768 "$TESTDIR/shared/$f" "${NOBODY[@]}"
done
"$CTL" cat "$TESTDIR/a" | sha256sum | cmp - <(sha256sum <"$TESTDIR/a") || fail "a changed"
[ "$(cached_stat all dedup_bytes)" = $((2 * MIB)) ] || fail "the tenant's layers were deduplicated"

# Through a store, the cache filter and isocache-admin: a and b imported
# as two golden images (root's layers on the same filesystem, so of the
# same domain as the files above) read right through isocache-nbd, and
# every block of theirs is held by the layers above already: cache stats
# shows 3 MiB deduplicated for each (DEDUP in the table, dedup_bytes).
nbd_store
for g in a b; do
	"$ADMIN" import "$TESTDIR/$g" "g$g"
	"$ADMIN" snap "g$g@v1"
	"$NBD" -r --filter cache --run 'nbdcopy "$uri" '"$TESTDIR/g$g.out" "g$g@v1"
	cmp "$TESTDIR/g$g.out" "$TESTDIR/$g" || fail "g$g@v1 read wrong through the cache"
done
"$ADMIN" cache stats | tee "$TESTDIR/table"
head -1 "$TESTDIR/table" | grep -qw DEDUP || fail "cache stats has no DEDUP column"
"$ADMIN" cache stats --json | /usr/bin/python3 -c '
import json, sys
rows = {r["layer"]: r["dedup_bytes"] for r in json.load(sys.stdin)}
print(rows)
sys.exit(0 if rows.get("ga@v1") == rows.get("gb@v1") == 3 << 20 else 1)' ||
	fail "cache stats --json: the images did not share the layers' blocks"
_ic_kill_pidfile "$TESTDIR/cached.pid"

cached_start --memory 64M --no-dedup
read_both
[ "$(cached_stat all dedup_bytes)" = 0 ] || fail "--no-dedup: blocks were shared"
[ "$(cached_stat all blocks)" = 1536 ] || fail "--no-dedup: $(cached_stat all blocks) blocks"
without=$(arena_rss)
echo "arena memory: $with bytes with dedup, $without without"
# 4 MiB against 6 MiB of data, plus the slots' pages either way.
((with * 10 <= without * 7)) || fail "dedup saved too little: $with against $without"
echo PASS
