#!/usr/bin/env bash
# Maps larger than one etcd transaction (docs/MULTI-HOST.md §2, "Limits"):
# etcd takes 128 writes and 1.5 MiB a transaction, and a map's chunk
# covers 4 GiB (2^16 clusters of 64 KiB). A sparse 600 GiB image with a
# 64 KiB block in each of 150 chunks, imported into a store in etcd: the
# import's flush commits its 150 chunks in several transactions, every
# block reads back through isocache-nbd. Its snapshot's flattened map (150
# chunks, written whole at freeze) is written in steps before the commit
# that freezes it; a clone reads every block through it. Then all three
# are removed, the snapshot's maps each as one range deletion.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/../etcd.sh"
requires qemu-io
etcd_cluster_start
cleanup_fn chattr -R -i "$ISOCACHE_STORE"
BLOCKS=150
GIB=$((1 << 30))

python3 - "$TESTDIR/big.raw" "$BLOCKS" <<'PY'
import sys
path, blocks = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    for i in range(blocks):
        f.seek(i * (4 << 30) + (1 << 20))
        f.write(bytes([i % 251 + 1]) * 65536)
    f.truncate(blocks * (4 << 30))
PY
"$ADMIN" init --meta "etcd://$ETCD_ENDPOINTS/big"
"$ADMIN" import "$TESTDIR/big.raw" big 2>"$TESTDIR/import.err" ||
	fail "import of a map of $BLOCKS chunks: $(cat "$TESTDIR/import.err")"
splits=$(grep -c 'committing them in two' "$TESTDIR/import.err" || true)
echo "import: its flush split $splits times"
((splits >= 1)) || fail "the import's flush was not split: $(cat "$TESTDIR/import.err")"

# reads BLOCK...: qemu-io commands reading each block's pattern.
reads() {
	local i
	for ((i = 0; i < BLOCKS; i++)); do
		printf -- '-c\nread -P %d %d 64k\n' $((i % 251 + 1)) $((i * 4 * GIB + (1 << 20)))
	done
}
check_blocks() {
	local uri=$1 args
	mapfile -t args < <(reads)
	qemu-io -f raw -r "${args[@]}" "$uri" >"$TESTDIR/r.io" || fail "reading $uri: $(tail -3 "$TESTDIR/r.io")"
	qemu_io_done "$TESTDIR/r.io" "$BLOCKS"
}
nbd_start a -r big
check_blocks "$(nbd_uri a)"
nbd_stop a
echo "$BLOCKS blocks in $BLOCKS chunks read back after the import"

"$ADMIN" snap big@gold 2>"$TESTDIR/snap.err" || fail "snap of a map of $BLOCKS chunks: $(cat "$TESTDIR/snap.err")"
grep 'wrote [0-9]* chunks of flattened maps ahead' "$TESTDIR/snap.err" ||
	fail "the snapshot's map was not written in steps: $(cat "$TESTDIR/snap.err")"
"$ADMIN" clone big@gold vm
nbd_start b -r vm
check_blocks "$(nbd_uri b)"
nbd_stop b
echo "$BLOCKS blocks read back through a clone of the snapshot"
"$ADMIN" check

# Removal: the clone, the vdisk, then the snapshot, whose flattened map
# and allocation map (150 chunks each) are deleted as one range each, not
# a key each (that was more writes than a transaction takes: refused).
"$ADMIN" rm vm
"$ADMIN" rm big
"$ADMIN" rm big@gold 2>"$TESTDIR/rm.err" ||
	fail "rm of a snapshot whose maps have $BLOCKS chunks: $(cat "$TESTDIR/rm.err")"
chunks=$(et list /isocache/big/ | grep -cE '/(alloc|resolved)/[0-9a-f]{16}/[0-9a-f]{16}=' || true)
[ "$chunks" = 0 ] || fail "$chunks chunks of removed maps are left in etcd"
"$ADMIN" ls | tail -n +2 | grep -q . && fail "images are left: $("$ADMIN" ls)"
"$ADMIN" check
echo PASS
