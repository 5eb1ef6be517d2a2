# Helpers for the tests/e2e/owner-*.sh scripts, which source only this
# file (not a test itself): tests/functions.sh, nbd-functions.bash, the
# clients the tests need, then xtrace.
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/nbd-functions.bash"
requires qemu-io
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd is not installed" >&2; exit 77; }
set -x

# owner_vdisk SIZE NAME...: a store at $ISOCACHE_STORE with empty vdisks.
owner_vdisk() {
	local size=$1 name
	shift
	nbd_store
	for name in "$@"; do "$ADMIN" create --size "$size" "$name"; done
}

# owner_pid NAME: the pid in NAME's ownership record ("0" when free).
owner_pid() {
	"$ADMIN" owner show "$1" --json |
		/usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print(r.get("pid", 0))'
}

# owner_socket NAME: the control socket of NAME's owner.
owner_socket() {
	"$ADMIN" owner show "$1" --json |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["socket"])'
}

# owner_writer URI FIRST COUNT LOG: write COUNT 64 KiB blocks from block
# FIRST, block i filled with byte (i % 251) + 1, each followed by a flush;
# append "flushed i" to LOG after each flush and "error i MSG" at the first
# error (then stop). Runs in the foreground.
owner_writer() {
	/usr/bin/python3 - "$@" <<'PY'
import nbd, sys
uri, first, count, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
h = nbd.NBD()
h.connect_uri(uri)
with open(log, "a", buffering=1) as out:
    for i in range(first, first + count):
        try:
            h.pwrite(bytes([i % 251 + 1]) * 65536, i * 65536)
            h.flush()
        except nbd.Error as e:
            out.write("error %d %s\n" % (i, e))
            break
        out.write("flushed %d\n" % i)
PY
}

# owner_check_blocks URI FIRST COUNT: blocks FIRST.. FIRST+COUNT-1 hold the
# writer's pattern.
owner_check_blocks() {
	/usr/bin/python3 - "$@" <<'PY'
import nbd, sys
uri, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
h = nbd.NBD()
h.connect_uri(uri)
for i in range(first, first + count):
    if h.pread(65536, i * 65536) != bytes([i % 251 + 1]) * 65536:
        sys.exit("block %d does not hold its pattern" % i)
PY
}
