#!/usr/bin/env bash
# rm of a snapshot whose only child is frozen gives the merged layer a new
# identity (new layer id, file and uuid), so a warm isocached never serves
# a block from before the merge. With 4 KiB clusters the daemon's fills
# (64 KiB) cache holes of the child's file that the merge then fills with
# the snapshot's data; rewritten in place under the same uuid and inode,
# those blocks were served stale afterwards. A layer file's unmapped ranges
# may hold bytes (a write whose map commit never happened: a crash, ENOSPC);
# the test puts 0xee there, which the daemon's 64 KiB fills then cache.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/cached-functions.bash"
requires nbdcopy qemu-io
cd "$TESTDIR"

nbd_store 4K
cleanup_fn find "$TESTDIR" -type s -delete
"$ADMIN" create vm1 --size 1M
"$NBD" --store "$ISOCACHE_STORE" --run 'qemu-io -f raw -c "write -P 0xaa 0 1M" "$uri"' vm1 >/dev/null
"$ADMIN" snap vm1@s1
id_of() { "$ADMIN" info --json "$1" | python3 -c 'import json,sys; c=json.load(sys.stdin)["chain"][0]; print(c["disk_id"], c["uuid"])'; }
read -r leaf _ < <(id_of vm1)
head -c 1M /dev/zero | tr '\0' '\356' | dd of="$ISOCACHE_STORE/layers/$leaf.raw" conv=notrunc status=none
# s2 holds one 4 KiB cluster in each 64 KiB; the rest of its file is unmapped 0xee.
writes=$(for o in $(seq 0 65536 983040); do printf -- "-c 'write -P 0xbb %d 4k' " "$o"; done)
"$NBD" --store "$ISOCACHE_STORE" --run "qemu-io -f raw $writes \"\$uri\"" vm1 >/dev/null
"$ADMIN" snap vm1@s2
"$ADMIN" export -f vm1 expect.raw
read -r s2_id s2_uuid < <(id_of vm1@s2)

cached_start --memory 64M
# Warm: read vm1 through the cache; a read-only server stays up across the
# merge, as a VM reading its disk would.
nbd_start before -r --filter cache vm1
nbdcopy "$(nbd_uri before vm1)" warm.raw
cmp warm.raw expect.raw || fail "the read through the cache differs before the merge"
misses=$(cached_stat all misses)
((misses > 0)) || fail "nothing was read through isocached"

"$ADMIN" rm vm1@s1
read -r new_id new_uuid < <(id_of vm1@s2)
[ "$new_id" != "$s2_id" ] || fail "the merged layer kept its id $s2_id"
[ "$new_uuid" != "$s2_uuid" ] || fail "the merged layer kept its uuid $s2_uuid"
[ ! -e "$ISOCACHE_STORE/layers/$s2_id.raw" ] || fail "the old layer file is still there"
[ "$(stat -c %a "$ISOCACHE_STORE/layers/$new_id.raw")" = 444 ] || fail "the merged layer is not frozen"
"$ADMIN" check
echo "merged: vm1@s2 layer $s2_id ($s2_uuid) -> $new_id ($new_uuid)"

# The server that was up reads what it read; a new one reads the merge.
nbdcopy "$(nbd_uri before vm1)" during.raw
cmp during.raw expect.raw || fail "a server open across the merge reads other data"
nbd_start after -r --filter cache vm1
nbdcopy "$(nbd_uri after vm1)" after.raw
cmp after.raw expect.raw || fail "a block from before the merge was served"
"$ADMIN" export -f vm1 export.raw
cmp export.raw expect.raw || fail "vm1 differs after the merge"
echo "PASS: no block from before the merge is served (misses before: $misses, hits: $(cached_stat all hits))"
