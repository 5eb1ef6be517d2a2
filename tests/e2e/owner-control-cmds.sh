#!/usr/bin/env bash
# isocache-admin stats and filter talk to a live server's control socket:
# the stack is listed, changed live (a filter added and removed while a
# client is connected) and its counters read, by vdisk name or by socket.
source "$(dirname "$0")/owner-functions.bash"

owner_vdisk 16M vm
nbd_start a --filter stats vm
qemu-io -f raw -c "write -P 0x11 0 1M" -c "read -P 0x11 0 1M" "$(nbd_uri a)" >/dev/null

"$ADMIN" stats --json vm >"$TESTDIR/stats.json"
# The same as tables: the stats filter's row for the writes names them.
"$ADMIN" stats vm | tee "$TESTDIR/stats.txt"
grep -Eq '^  1 +pwrite +16 +1 MiB +0 ' "$TESTDIR/stats.txt" || fail "stats table lacks the writes"
grep -Eq '^ +[0-9]+ +cache +cache +.*connected=' "$TESTDIR/stats.txt" || fail "stats table lacks the cache filter"
/usr/bin/python3 - "$TESTDIR/stats.json" "$(cat "$TESTDIR/a.pid")" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["pid"] == int(sys.argv[2]) and s["policy"] == "when-unused", s
assert s["vdisks"][0]["name"] == "vm" and s["vdisks"][0]["owned"], s
assert [f["name"] for f in s["stack"] if not f["bottom"]] == ["stats", "cache"], s["stack"]
assert s["stack"][0]["report"]["layers"][0]["pwrite"]["bytes"] == 1 << 20, s["stack"]
PY
"$ADMIN" filter add vm delay:read=1ms
"$ADMIN" filter ls vm --json | grep -q '"delay"' || fail "filter add did not show in ls"
qemu-io -f raw -c "read -P 0x11 0 1M" "$(nbd_uri a)" >/dev/null
"$ADMIN" filter rm --socket "$(owner_socket vm)" delay
! "$ADMIN" filter ls vm --json | grep -q '"delay"' || fail "filter rm did not remove it"
! "$ADMIN" filter rm vm nosuch 2>"$TESTDIR/err" || fail "removing a missing filter succeeded"
cat "$TESTDIR/err"
! "$ADMIN" filter frob vm 2>/dev/null || fail "a bad action was accepted"
! "$ADMIN" stats 2>"$TESTDIR/err" || fail "stats of the cache daemon, which is not running, succeeded"
grep -q "cannot reach isocached" "$TESTDIR/err" || fail "unclear: $(cat "$TESTDIR/err")"
"$ADMIN" owner ls | grep -q "^vm .* owned" || fail "owner ls"
nbd_stop a
! "$ADMIN" stats vm 2>"$TESTDIR/err" || fail "stats of a vdisk nobody serves"
grep -q "no live process" "$TESTDIR/err" || fail "unclear: $(cat "$TESTDIR/err")"
echo PASS
