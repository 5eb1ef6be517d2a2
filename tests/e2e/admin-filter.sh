#!/usr/bin/env bash
# isocache-admin filter and stats against a live isocache-nbd as the README
# tour uses them: add goes to the top by default (so a delay sees reads the
# cache filter answers), --position places it elsewhere, every change shows
# the stack, ls and stats print tables (--json on request), bad specs are
# named, owner release prints one line with both times, and removing and
# re-adding the cache filter live leaves a clean shutdown.
source "$(dirname "$0")/owner-functions.bash"
cd "$TESTDIR"

nbd_store
random_image base.raw 4
"$ADMIN" import base.raw golden >/dev/null
"$ADMIN" snap golden@v1 >/dev/null
"$ADMIN" clone golden@v1 vm1 >/dev/null
start_bg cached.pid "$CACHED" --foreground --socket "$ISOCACHE_SOCKET" --memory 64M \
	--pid-file cached.pid
nbd_start a --release=always vm1 2>nbd.log
uri=$(nbd_uri a vm1)
read_all() { qemu-io -f raw -c "read 0 4M" "$uri" >/dev/null; }
# delayed: the delay filter's count, from filter ls --json.
delayed() {
	"$ADMIN" filter ls vm1 --json | /usr/bin/python3 -c '
import json, sys
print([f for f in json.load(sys.stdin) if f["name"] == "delay"][0]["report"]["delayed"])'
}

# stats NAME: tables, and "never" for a vdisk nobody wrote.
"$ADMIN" stats vm1 | tee stats.txt
grep -Eq '^VDISK +OWNED +GENERATION +LAST WRITE$' stats.txt || fail "stats lacks the vdisk table"
grep -Eq '^vm1 +yes +[0-9]+ +never$' stats.txt || fail "stats does not say vm1 was never written"
grep -q 'idle_ms' stats.txt && fail "stats still prints idle_ms"
"$ADMIN" stats vm1 --json | /usr/bin/python3 -c 'import json,sys; assert json.load(sys.stdin)["vdisks"][0]["idle_ms"] == -1'

# filter ls: a table by default, JSON with --json.
"$ADMIN" filter ls vm1 | tee ls.txt
grep -Eq '^POS +FILTER +SPEC +REPORT$' ls.txt || fail "filter ls is not a table"
grep -Eq '^  0 +cache +cache ' ls.txt || fail "filter ls lacks the cache filter at 0"
grep -Eq '^  - +layers? +\(the layer files\)' ls.txt || fail "filter ls lacks the bottom"

# Read once so isocached holds the blocks, then add a delay: it goes on top
# and the stack is shown.
read_all
"$ADMIN" filter add vm1 delay:read=200us | tee add.txt
grep -q '^filter stack of vm1, top first:$' add.txt || fail "add did not show the stack"
grep -Eq '^  0 +delay +delay:read=200us ' add.txt || fail "delay is not on top: $(cat add.txt)"
grep -Eq '^  1 +cache ' add.txt || fail "cache is not under delay"
read_all
[ "$(delayed)" -gt 0 ] || fail "the delay on top delayed nothing"
"$ADMIN" filter rm vm1 delay | grep -q '^filter stack of vm1' || fail "rm did not show the stack"
"$ADMIN" filter add vm1 stats --position bottom >/dev/null
"$ADMIN" filter ls vm1 --json | /usr/bin/python3 -c '
import json, sys
names = [f["name"] for f in json.load(sys.stdin)]
assert names[-2:-1] == ["stats"] and names[0] == "cache", names'
"$ADMIN" filter add vm1 delay:read=1us --position 1 >/dev/null
"$ADMIN" filter ls vm1 --json | /usr/bin/python3 -c '
import json, sys
names = [f["name"] for f in json.load(sys.stdin)]
assert names[:3] == ["cache", "delay", "stats"], names'
expect_fail "'sideways' is not top, bottom or a position" "$ADMIN" filter add vm1 stats --position sideways
expect_fail "--position does not apply to filter rm" "$ADMIN" filter rm vm1 stats --position 1

# Bad specs are named as isocache-nbd names them.
expect_fail 'no filter called "bogus"' "$ADMIN" filter add vm1 bogus
expect_fail 'bad parameter read=abc' "$ADMIN" filter add vm1 delay:read=abc
expect_fail 'no filter called "bogus" in the stack' "$ADMIN" filter rm vm1 bogus

# After a live snapshot (which moves the vdisk's parent layers in memory),
# the cache filter removed and added back live; reads still match, and the
# shutdown below closes every layer the stack has open.
"$ADMIN" snap vm1@before | grep -q "^made snapshot vm1@before" || fail "live snap"
"$ADMIN" filter rm vm1 cache >/dev/null
read_all
"$ADMIN" filter add vm1 cache >/dev/null
qemu-io -f raw -c "write -P 0x5a 0 64k" "$uri" >/dev/null
qemu-io -f raw -c "read -P 0x5a 0 64k" "$uri" >/dev/null || fail "the write did not read back"
read_all

# owner release: one line on stdout with both times, nothing on stderr.
"$ADMIN" owner release vm1 >rel.out 2>rel.err
cat rel.out rel.err
grep -Eq '^vm1: released in [0-9]+ ms \(its owner: "released after [0-9]+ ms"\)$' rel.out ||
	fail "release said: $(cat rel.out)"
[ ! -s rel.err ] || fail "release also wrote to stderr: $(cat rel.err)"

nbd_stop a
cat nbd.log
grep -q "which is not open" nbd.log && fail "shutdown closed a disk the stack did not have open"
echo PASS
