#!/usr/bin/env bash
# Frozen layers on the shared directory, cached by each host's own
# isocached (docs/MULTI-HOST.md §1): two hosts (tests/hosts.sh), each with
# its isocached and its isocache-nbd with the cache filter, serve two
# clones of one golden image from the one store, one clone on each host.
# Host a's clone is read whole twice, then host b's: every byte reads as
# the image; each host's daemon has filled nothing before its own host
# reads (b's, after a's reads, included), then fills the golden layer from
# the shared file (backing bytes more than none, at most the image), and
# serves the second read from its memory (hits) without filling more.
source "$(dirname "$0")/hosts-functions.bash"
hosts_start
hosts_store
random_image "$TESTDIR/base.raw" 8
on_host a "$ADMIN" --store "$(host_store a)" import "$TESTDIR/base.raw" base
on_host a "$ADMIN" --store "$(host_store a)" snap base@gold
for h in a b; do
	on_host "$h" "$ADMIN" --store "$(host_store "$h")" clone base@gold "vm$h"
	start_bg "$TESTDIR/cached-$h.pid" on_host_exec "$h" "$CACHED" --foreground \
		--socket "$TESTDIR/cached-$h.sock" --memory 64M --pid-file "$TESTDIR/cached-$h.pid" \
		2>"$TESTDIR/cached-$h.log"
done

# stats H PASS: host H's daemon's counters, as JSON in $TESTDIR/H-PASS.json.
stats() {
	ISOCACHE_SOCKET=$TESTDIR/cached-$1.sock on_host "$1" "$ADMIN" --store "$(host_store "$1")" \
		cache stats --json >"$TESTDIR/$1-$2.json"
}
for h in a b; do
	ISOCACHE_SOCKET=$TESTDIR/cached-$h.sock host_nbd "$h" "n$h" --cache none --filter cache "vm$h"
	stats "$h" 0
	for pass in 1 2; do
		qemu-img compare -f raw -F raw "$TESTDIR/base.raw" "$(nbd_uri "n$h")" ||
			fail "vm$h on host $h, read $pass, differs from the image"
		stats "$h" "$pass"
	done
	host_nbd_stop "n$h"
	/usr/bin/python3 - "$TESTDIR/$h-0.json" "$TESTDIR/$h-1.json" "$TESTDIR/$h-2.json" "$h" <<'PY'
import json, sys
before, first, second = ({r["layer"]: r for r in json.load(open(p))} for p in sys.argv[1:4])
host = "host " + sys.argv[4]
g0 = before.get("base@gold", {"backing_bytes": 0})
g1, g2 = first.get("base@gold"), second.get("base@gold")
assert g0["backing_bytes"] == 0, (host, "filled before its reads", before)
assert g1 and 0 < g1["backing_bytes"] <= 8 << 20, (host, first)
assert g2["backing_bytes"] == g1["backing_bytes"], (host, "filled again", g1, g2)
assert g2["hits"] > g1["hits"], (host, "no hits on the second read", g1, g2)
print("%s: base@gold filled with %d bytes, %d hits after the second read"
      % (host, g2["backing_bytes"], g2["hits"]))
PY
done
echo PASS
