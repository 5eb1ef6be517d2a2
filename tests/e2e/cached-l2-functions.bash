# Sourced by tests/e2e/cached-l2-*.sh after cached-functions.bash.
source "$(dirname "${BASH_SOURCE[0]}")/nbd-functions.bash"
requires setfattr getfattr

# cached_l2_start ARGS...: isocached with an L2 file in $TESTDIR/l2.
cached_l2_start() {
	cached_start --memory 16M --l2 "$TESTDIR/l2" --l2-size 32M "$@"
}

# cached_l2_stop: SIGTERM the daemon and expect a clean exit (the L2
# index is written then).
cached_l2_stop() { nbd_stop cached; }

# cached_l2_cat FILE: read FILE through the daemon (read-through) and
# compare it with the file itself.
cached_l2_cat() {
	"$CTL" cat "$1" 2>"$TESTDIR/cat.log" | cmp - "$1" || fail "wrong data read through the daemon"
	grep -q " 0 read directly" "$TESTDIR/cat.log" || fail "the daemon did not serve: $(cat "$TESTDIR/cat.log")"
}

# cached_l2_filled FILE SIZE: a frozen layer of SIZE random bytes, read once
# through a daemon with L2 (so L2 holds all of it), and the daemon stopped.
cached_l2_filled() {
	cached_layer "$1" "$2"
	cached_l2_start
	cached_l2_cat "$1"
	cached_l2_stop
}

# cached_l2_persisted L2 DATA-SIZE: how many slots the newest index region
# of the L2 file holds (docs/CACHED.md: two regions of a 4 KiB header, the
# sequence number at byte 16, then 24 bytes per slot, identity 0 = empty).
# A region read while it is being written shows fewer, never more.
cached_l2_persisted() {
	/usr/bin/python3 - "$@" <<'PY'
import os, struct, sys
path, data = sys.argv[1], int(sys.argv[2])
region = (os.path.getsize(path) - data) // 2
best = (-1, 0)
with open(path, "rb") as f:
    for r in (0, 1):
        f.seek(r * region)
        img = f.read(region)
        magic, _, nslots, seq = struct.unpack_from("<QIIQ", img, 0)
        if magic == 0:
            continue
        used = sum(1 for i in range(nslots)
                   if struct.unpack_from("<Q", img, 4096 + 24 * i)[0] != 0)
        best = max(best, (seq, used))
print(best[1])
PY
}

# cached_refuses: nothing answers on $ISOCACHE_SOCKET.
cached_refuses() { ! "$CTL" stats all >/dev/null 2>&1; }
