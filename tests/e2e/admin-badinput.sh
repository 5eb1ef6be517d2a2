#!/usr/bin/env bash
# Bad input gets a clear message naming the thing, a non-zero exit, and no
# change to the store: names, sizes, missing images, corrupt, foreign and
# newer metadata files, missing and truncated layer files.
source "$(dirname "$0")/../functions.sh"
requires mdb_dump mdb_load
cd "$TESTDIR"
S=$ISOCACHE_STORE

expect_fail "no store here" $ADMIN ls
expect_fail "power of two" $ADMIN init --cluster-size 3K
$ADMIN init
expect_fail "exists already" $ADMIN init
expect_fail "not a size" $ADMIN create a --size 12Q
expect_fail "multiple of 512" $ADMIN create a --size 1000
expect_fail "--size is required" $ADMIN create a
expect_fail "invalid image name" $ADMIN create 'bad/name' --size 1M
expect_fail "invalid image name" $ADMIN create --size 1M -- '-x'
expect_fail "invalid image name" $ADMIN create '.hidden' --size 1M
expect_fail "invalid image name" $ADMIN create 'a@b@c' --size 1M
expect_fail "unknown command" $ADMIN frobnicate
expect_fail "unknown option" $ADMIN ls --bogus
$ADMIN create a --size 1M
expect_fail "exists" $ADMIN create a --size 1M
expect_fail "no such image" $ADMIN snap nosuch@s
expect_fail "NAME@SNAP" $ADMIN clone a b
expect_fail "no such image" $ADMIN export nosuch out
expect_fail "No such file" $ADMIN import /nonexistent x
$ADMIN snap a@s1
expect_fail "exists" $ADMIN snap a@s1
$ADMIN --help | grep -q "Commands:" || fail "--help lacks the command list"
for c in init create import export snap clone ls info tree rm resize flatten check; do
	$ADMIN "$c" --help | grep -q "^Usage: isocache-admin" || fail "$c --help"
done

# Nothing above changed the store.
$ADMIN check
before=$($ADMIN ls --json)

# A missing layer file and a truncated one: check says so, export refuses.
cp -a "$S" good
leaf=$($ADMIN info --json a | python3 -c 'import json,sys; print(json.load(sys.stdin)["chain"][0]["disk_id"])')
truncate -s 4096 "$S/layers/$leaf.raw"
expect_fail "truncated" $ADMIN export a out
if $ADMIN check >check.out; then fail "check passed a truncated layer"; fi
grep -q truncated check.out || fail "check did not name the truncation"
rm "$S/layers/$leaf.raw"
if $ADMIN check >check.out; then fail "check passed a missing layer"; fi
grep -q "No such file" check.out || fail "check did not name the missing file"
touch "$S/layers/stray.raw"
if $ADMIN check >check.out; then fail "check passed a stray file"; fi
grep -q "no layer owns" check.out || fail "check did not name the stray file"
chattr -R -i "$S" 2>/dev/null || true
rm -rf "$S" && cp -a good "$S"

# A corrupt metadata file (garbage) and a foreign LMDB file.
cp "$S/meta.mdb" meta.good
head -c 65536 /dev/urandom >"$S/meta.mdb"
expect_fail "not an isocache metadata file" $ADMIN ls
printf 'VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n 6b6579\n 76616c7565\nDATA=END\n' >foreign.dump
rm -f "$S/meta.mdb" "$S/meta.mdb-lock"
mdb_load -n -f foreign.dump "$S/meta.mdb"
expect_fail "not an isocache store" $ADMIN ls

# A newer schema version: refused, naming the versions.
cp meta.good "$S/meta.mdb"
rm -f "$S/meta.mdb-lock"
mdb_dump -n -s info "$S/meta.mdb" >info.dump
# The schema value is a little-endian u32: 1 → 99.
python3 - info.dump <<'PY'
import sys
p = sys.argv[1]
lines = open(p).read().split('\n')
for i, l in enumerate(lines):
    if l.strip() == '736368656d61':  # "schema"
        lines[i + 1] = ' 63000000'
open(p, 'w').write('\n'.join(lines))
PY
mdb_load -n -s info "$S/meta.mdb" <info.dump
expect_fail "schema version 99 is newer" $ADMIN ls

# Back to the good file: the store is as it was.
cp meta.good "$S/meta.mdb"
rm -f "$S/meta.mdb-lock"
[ "$($ADMIN ls --json)" = "$before" ] || fail "the store changed"
$ADMIN check
echo "admin-badinput: ok"
