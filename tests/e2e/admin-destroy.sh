#!/usr/bin/env bash
# isocache-admin destroy removes a whole store, frozen (immutable) layers
# included, which rm -rf cannot; it must be named twice, and it is refused
# while a live process owns a vdisk unless --force.
source "$(dirname "$0")/owner-functions.bash"
cd "$TESTDIR"
S=$ISOCACHE_STORE

make_store() {
	"$ADMIN" init >/dev/null
	random_image base.raw 2
	"$ADMIN" import base.raw golden >/dev/null
	"$ADMIN" snap golden@v1 >/dev/null
	"$ADMIN" clone golden@v1 vm1 >/dev/null
}
make_store
frozen=$S/layers/$("$ADMIN" info golden@v1 --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["chain"][0]["disk_id"])').raw
if lsattr "$frozen" 2>/dev/null | grep -q '^[^ ]*i'; then
	! rm -f "$frozen" 2>/dev/null || fail "rm removed an immutable layer file"
	echo "rm (and so rm -rf) fails on the immutable layer, as expected"
fi

# Named once only, or another directory: refused, nothing removed.
expect_fail "expected DIR" "$ADMIN" destroy
mkdir other
expect_fail "is not the store in use" "$ADMIN" destroy other
[ -f "$S/meta.mdb" ] || fail "a refused destroy removed the store"

# A live owner: refused, naming the vdisk and its process.
nbd_start a vm1
pid=$(cat "$TESTDIR/a.pid")
expect_fail "vm1 is in use by .*\(pid $pid\)" "$ADMIN" destroy "$S"
"$ADMIN" check >/dev/null || fail "a refused destroy changed the store"
nbd_stop a

"$ADMIN" destroy "$S" | tee out.txt
grep -q "^destroyed store $(realpath "$TESTDIR")/store$" out.txt || fail "destroy said: $(cat out.txt)"
[ ! -e "$S" ] || fail "the store directory is still there: $(ls -la "$S")"

# --force destroys it under a live owner; a file of the user's stays.
make_store
echo "mine" >"$S/notes.txt"
nbd_start b vm1
"$ADMIN" destroy --force "$S" 2>err.txt
grep -q "vm1 is in use by .*destroying anyway" err.txt || fail "--force did not name the owner: $(cat err.txt)"
grep -q "left in place" err.txt || fail "the leftover directory was not mentioned"
[ "$(ls "$S")" = notes.txt ] || fail "destroy left: $(ls "$S")"
echo PASS
