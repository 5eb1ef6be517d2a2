# Helpers for the tests/e2e/owner-*.sh scripts, which source only this
# file (not a test itself): tests/functions.sh, nbd-functions.bash, the
# clients the tests need, then xtrace (trace_on).
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/nbd-functions.bash"
requires qemu-io
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd is not installed" >&2; exit 77; }
trace_on

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
# append "flushed i T" to LOG after each flush and "error i T MSG" at the
# first error (then stop), T the monotonic clock in ms (ic_now_ms's, the
# same in every namespace). Block i lands at block i modulo the export's
# blocks, so a writer meant to outlast a test may count past its end.
# With OWNER_WRITER_PAUSE_MS, it pauses that long after each flush, so as
# not to keep every core busy. Runs in the foreground.
owner_writer() {
	/usr/bin/python3 - "$@" <<'PY'
import nbd, os, sys, time
ms = lambda: int(time.monotonic() * 1000)
uri, first, count, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
pause = int(os.environ.get("OWNER_WRITER_PAUSE_MS", "0")) / 1000
h = nbd.NBD()
h.connect_uri(uri)
wrap = h.get_size() // 65536
with open(log, "a", buffering=1) as out:
    for i in range(first, first + count):
        try:
            h.pwrite(bytes([i % 251 + 1]) * 65536, i % wrap * 65536)
            h.flush()
        except nbd.Error as e:
            out.write("error %d %d %s\n" % (i, ms(), e))
            break
        out.write("flushed %d %d\n" % (i, ms()))
        if pause:
            time.sleep(pause)
PY
}

# owner_check_blocks URI FIRST COUNT: blocks FIRST.. FIRST+COUNT-1 hold the
# writer's pattern (past the export's end, the last write to each block:
# the last of them, one fewer than the export has blocks).
owner_check_blocks() {
	/usr/bin/python3 - "$@" <<'PY'
import nbd, sys
uri, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
h = nbd.NBD()
h.connect_uri(uri)
wrap = h.get_size() // 65536
# Past the end, the block of write first + count (not acknowledged, and
# perhaps landed) is left out too.
for i in range(max(first, first + count - wrap + 1), first + count):
    if h.pread(65536, i % wrap * 65536) != bytes([i % 251 + 1]) * 65536:
        sys.exit("block %d does not hold its pattern" % i)
PY
}

# owner_client NAME URI: a VM-like NBD client in the background, connected
# to URI and then quiet, obeying owner_client_do. Killed by PID at exit.
# One client at a time (it is driven through file descriptor 7).
owner_client() {
	local name=$1 uri=$2
	mkfifo "$TESTDIR/$name.in"
	: >"$TESTDIR/$name.out"
	/usr/bin/python3 - "$uri" "$TESTDIR/$name.in" "$TESTDIR/$name.out" <<'PY' &
import nbd, sys
uri, cmds, log = sys.argv[1:]
h = nbd.NBD()
h.connect_uri(uri)
with open(log, "a", buffering=1) as out:
    out.write("connected\n")
    for line in open(cmds):
        byte = int(line.split()[1], 0)
        try:
            h.pwrite(bytes([byte]) * 4096, 0)
            h.flush()
            out.write("ok\n")
        except nbd.Error as e:
            out.write("error %s\n" % e)
PY
	echo $! >"$TESTDIR/$name.pid"
	cleanup_fn _ic_kill_pidfile "$TESTDIR/$name.pid"
	exec 7>"$TESTDIR/$name.in"
	owner_client_wait "$name" 1
	grep -q '^connected$' "$TESTDIR/$name.out" || fail "client $name did not connect"
}

# owner_client_wait NAME N: wait (up to 20 s) until the client has
# answered N lines.
_owner_client_answered() { # NAME N: it has, or it has exited and never will
	[ "$(wc -l <"$TESTDIR/$1.out")" -ge "$2" ] || gone "$(cat "$TESTDIR/$1.pid")"
}
owner_client_wait() {
	wait_until 20 _owner_client_answered "$1" "$2" || true
	[ "$(wc -l <"$TESTDIR/$1.out")" -ge "$2" ] || fail "client $1 gave no answer: $(cat "$TESTDIR/$1.out")"
}

# owner_client_do NAME BYTE: the client writes 4 KiB of BYTE at offset 0
# and flushes; prints its answer ("ok" or "error MSG").
owner_client_do() {
	local n
	n=$(($(wc -l <"$TESTDIR/$1.out") + 1))
	echo "write $2" >&7
	owner_client_wait "$1" "$n"
	tail -n 1 "$TESTDIR/$1.out"
}

# owner_client_end NAME: close the client's commands; it exits.
owner_client_end() {
	exec 7>&-
	wait "$(cat "$TESTDIR/$1.pid")" || true
}

# owner_block0 NAME: the first 4 KiB of vdisk NAME, as one hex byte when
# they are all that byte ("11"), else "mixed".
owner_block0() {
	"$ADMIN" export "$1" "$TESTDIR/block0.raw" >/dev/null
	head -c 4096 "$TESTDIR/block0.raw" | od -An -tx1 -v | tr -s ' \n' '\n\n' | sed '/^$/d' |
		sort -u | awk '{ n++; b = $0 } END { print (n == 1 ? b : "mixed") }'
}
