#!/usr/bin/env bash
# A session of another uid cannot read a layer it did not register, even
# while root's sessions have it cached; it can cache its own layers, and
# --quota caps what its fills may hold.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
trace_on
cached_as_nobody

mkdir -m 0700 "$TESTDIR/private"
cached_layer "$TESTDIR/private/base" 4M
cached_start --memory 16M --quota nobody=1M

"$CTL" cat "$TESTDIR/private/base" | cmp - "$TESTDIR/private/base"

# nobody cannot open the file, so it has no fd to register and no handle.
if "${NOBODY[@]}" "$CTL" register "$TESTDIR/private/base"; then fail "nobody registered"; fi
for h in 0 1 2; do
	if "${NOBODY[@]}" "$CTL" read-handle $h 0 1 >"$TESTDIR/stolen"; then
		fail "nobody read handle $h"
	fi
	[ ! -s "$TESTDIR/stolen" ] || fail "nobody got data"
done

# nobody's own layer works, and its fills stay within its 1M quota.
nobody_layer mine 4M
"${NOBODY[@]}" "$CTL" cat "$TESTDIR/shared/mine" | cmp - "$TESTDIR/shared/mine"
blocks=$(cached_stat "$TESTDIR/shared/mine" blocks "${NOBODY[@]}")
((blocks <= 256)) || fail "nobody holds $blocks blocks, past its 1M quota"
# root's cached copy was not evicted by nobody's reads.
root_blocks=$(cached_stat "$TESTDIR/private/base" blocks)
((root_blocks == 1024)) || fail "root's layer lost blocks: $root_blocks"
echo PASS
