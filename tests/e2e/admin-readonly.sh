#!/usr/bin/env bash
# A user who may read a store but not write it runs the commands that only
# read: ls, tree, info, check, export and stats open the metadata read-only.
# LMDB's lock file holds its reader table, so it must be writable by the
# reader (a group); without that the refusal says so. Writes stay refused.
source "$(dirname "$0")/../functions.sh"
requires setpriv
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to run as another uid" >&2; exit 77; }
cd "$TESTDIR"
chmod 755 "$TESTDIR" # mktemp -d makes it 0700
S=$ISOCACHE_STORE
$ADMIN init --group nogroup >/dev/null # private otherwise; uid 65534's group
random_image base.raw 2
$ADMIN import base.raw golden >/dev/null
$ADMIN snap golden@v1 >/dev/null
$ADMIN clone golden@v1 vm1 >/dev/null
start_bg cached.pid "$CACHED" --foreground --socket "$ISOCACHE_SOCKET" --memory 16M \
	--pid-file cached.pid
chmod 666 "$ISOCACHE_SOCKET"
mkdir -m 777 out
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

# The lock file is the owner's alone until granted: a group member who
# could open it could hold a shared lock and so hold every writer up.
[ "$(stat -c %a "$S/meta.mdb-lock")" = 600 ] ||
	fail "meta.mdb-lock is $(stat -c %a "$S/meta.mdb-lock"), not 600, in a shared store"
expect_fail "Permission denied" nobody cat "$S/meta.mdb-lock"
# A lock file made again on open (one lost in a copy) gets the same mode.
rm "$S/meta.mdb-lock"
$ADMIN ls >/dev/null
[ "$(stat -c %a "$S/meta.mdb-lock")" = 600 ] ||
	fail "a remade meta.mdb-lock is $(stat -c %a "$S/meta.mdb-lock"), not 600"

# Without write access to meta.mdb-lock: refused, naming what is needed.
expect_fail "meta.mdb-lock: readers need write access to this lock file" nobody $ADMIN ls

# Grant it to the reader's group, as docs/CLI.md says.
chmod g+rw "$S/meta.mdb-lock"
nobody $ADMIN ls | tee ls.txt
grep -Eq '^vm1 +vdisk ' ls.txt || fail "ls as uid 65534 did not list vm1"
nobody $ADMIN tree | grep -q 'vm1' || fail "tree as uid 65534"
nobody $ADMIN info vm1 | grep -q 'golden@v1' || fail "info as uid 65534"
nobody $ADMIN check | grep -q 'agree' || fail "check as uid 65534"
nobody $ADMIN export vm1 out/vm1.raw
cmp base.raw out/vm1.raw || fail "export as uid 65534 differs"
nobody $ADMIN stats | grep -Eq '^golden@v1 ' || fail "stats as uid 65534 lacks golden@v1"

# Commands that write stay refused, and the store is as it was.
expect_fail "Permission denied" nobody $ADMIN create x --size 1M
expect_fail "Permission denied" nobody $ADMIN rm vm1
$ADMIN check >/dev/null
[ "$($ADMIN ls --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 3 ] ||
	fail "the store changed"
echo PASS
