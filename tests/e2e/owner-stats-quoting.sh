#!/usr/bin/env bash
# The control socket's STATS answer is JSON whatever the strings in it hold:
# a run directory with a quote and a backslash in its name (so the socket
# path has them) still gives JSON that parses, with the path intact, and
# the owner's policy is still read from it. The hand-written writer put
# such paths in unescaped.
source "$(dirname "$0")/owner-functions.bash"

export ISOCACHE_RUN_DIR="$TESTDIR/run \"q\" \\b"
owner_vdisk 16M vm
nbd_start a --filter stats vm

sock=$(owner_socket vm)
case $sock in "$ISOCACHE_RUN_DIR"/*) ;; *) fail "the socket $sock is not under the run directory" ;; esac
"$ADMIN" stats --json vm >"$TESTDIR/stats.json"
/usr/bin/python3 - "$TESTDIR/stats.json" "$sock" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["socket"] == sys.argv[2], (s["socket"], sys.argv[2])
assert s["vdisks"][0]["name"] == "vm" and s["policy"] == "when-unused", s
PY
[ "$("$ADMIN" owner show vm --json |
	/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["policy"])')" = when-unused ] ||
	fail "the owner's policy was not read from its STATS answer"
"$ADMIN" stats vm | grep -F "$sock" || fail "the stats table lacks the socket path"
nbd_stop a
echo PASS
