#!/usr/bin/env bash
# No symbolic link inside a store is followed. A link planted in place of a
# layer file (snap, rm, a write through NBD, an open for export), of
# meta.mdb-lock (ls) and of layers/ itself is refused with a message naming
# it, and the foreign file it points at keeps its mode, flags, extended
# attributes and content. Before, root's snap made such a file 0444 and
# immutable, rm lifted its immutable flag, NBD wrote into it and ls wrote
# LMDB's lock table over it.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires qemu-io lsattr chattr getfattr
cd "$TESTDIR"

nbd_store 64K
"$ADMIN" create vm1 --size 4M
"$NBD" --store "$ISOCACHE_STORE" --run 'qemu-io -f raw -c "write -P 0xaa 0 1M" "$uri"' vm1 >/dev/null
"$ADMIN" snap vm1@s1
"$NBD" --store "$ISOCACHE_STORE" --run 'qemu-io -f raw -c "write -P 0xbb 1M 1M" "$uri"' vm1 >/dev/null
"$ADMIN" export -f vm1 vm1.raw
layer_of() { "$ADMIN" info --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["chain"][0]["disk_id"])'; }
LEAF=layers/$(layer_of vm1).raw
SNAP=layers/$(layer_of vm1@s1).raw

# The foreign file: root's, 0600, with content of its own.
head -c 4M /dev/urandom >foreign
chmod 0600 foreign
cleanup_fn chattr -i "$TESTDIR/foreign"
state() { stat -c '%a %s' foreign; lsattr -d foreign | cut -d' ' -f1; getfattr -d foreign 2>/dev/null; sha256sum <foreign; }

# plant REL TARGET: move the store's REL aside (lifting the immutable flag
# of a frozen layer) and put a link to TARGET there; unplant REL undoes it.
plant() {
	aside_flags=$(lsattr -d "$ISOCACHE_STORE/$1" | cut -d' ' -f1)
	chattr -i "$ISOCACHE_STORE/$1"
	mv "$ISOCACHE_STORE/$1" "$TESTDIR/aside"
	ln -s "$2" "$ISOCACHE_STORE/$1"
}
unplant() {
	rm "$ISOCACHE_STORE/$1"
	mv "$TESTDIR/aside" "$ISOCACHE_STORE/$1"
	[[ $aside_flags != *i* ]] || chattr +i "$ISOCACHE_STORE/$1"
}

# refused WHAT CMD...: CMD fails, names the link, and foreign is unchanged.
refused() {
	local what=$1 before
	shift
	before=$(state)
	if "$@" 2>err; then fail "$what: succeeded through a symbolic link"; fi
	grep -q "is a symbolic link; refusing" err || { cat err; fail "$what: no clear refusal"; }
	[ "$(state)" = "$before" ] || fail "$what: the foreign file changed"
	echo "$what: refused: $(grep -m1 'symbolic link' err)"
}

# snap would freeze the leaf: chmod 0444, xattr, immutable.
plant "$LEAF" "$TESTDIR/foreign"
refused "snap" "$ADMIN" snap vm1@s2
# export opens the chain; NBD opens the leaf for writing.
refused "open (export)" "$ADMIN" export -f vm1 out.raw
refused "write through NBD" "$NBD" --store "$ISOCACHE_STORE" \
	--run 'qemu-io -f raw -c "write -P 0xcc 0 4M" "$uri"' vm1
# check reports the link without following it.
if "$ADMIN" check >check.out 2>&1; then fail "check passed with a link in place of $LEAF"; fi
grep -q "$LEAF: not a regular file (a symbolic link, never followed)" check.out ||
	fail "check does not report the link: $(cat check.out)"
unplant "$LEAF"

# rm of vm1@s1 merges it into vm1 and lifts the frozen marks: a frozen,
# immutable foreign file in its place.
chmod 0444 foreign
chattr +i foreign
plant "$SNAP" "$TESTDIR/foreign"
refused "rm (merge)" "$ADMIN" rm vm1@s1
unplant "$SNAP"
chattr -i foreign
chmod 0600 foreign

# rm of a vdisk removes its leaf file: refused before the metadata changes.
"$ADMIN" clone vm1@s1 vm2
plant "layers/$(layer_of vm2).raw" "$TESTDIR/foreign"
refused "rm (vdisk)" "$ADMIN" rm vm2
"$ADMIN" info vm2 >/dev/null || fail "rm of vm2 changed the metadata before refusing"
unplant "layers/$(layer_of vm2).raw"

# LMDB's lock file: ls would write its reader table into the target.
plant meta.mdb-lock "$TESTDIR/foreign"
refused "ls (meta.mdb-lock)" "$ADMIN" ls
unplant meta.mdb-lock

# layers/ as a link to a directory holding copies of the layer files.
cp -a "$ISOCACHE_STORE/layers" foreign-layers
chattr -R -i foreign-layers
before_dir=$(cd foreign-layers && ls -l && sha256sum ./*)
plant layers "$TESTDIR/foreign-layers"
refused "open (layers/ is a link)" "$ADMIN" export -f vm1 out.raw
refused "create (layers/ is a link)" "$ADMIN" create vm3 --size 1M
refused "write (layers/ is a link)" "$NBD" --store "$ISOCACHE_STORE" \
	--run 'qemu-io -f raw -c "write -P 0xcc 0 4M" "$uri"' vm1
[ "$(cd foreign-layers && ls -l && sha256sum ./*)" = "$before_dir" ] ||
	fail "the foreign layers directory changed"
unplant layers

# The store is whole and vm1 reads as before.
"$ADMIN" check
"$ADMIN" export -f vm1 out.raw
cmp vm1.raw out.raw || fail "vm1 changed"
echo "PASS: no symbolic link in a store is followed"
