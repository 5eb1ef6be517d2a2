#!/usr/bin/env bash
# Where isocache-nbd listens: ports are validated (1-65535, 0 = a free one)
# and every listening address is logged, so -p 0 says which port it got.
# A second server on the same -k is refused while the first listens, in
# the foreground and with --fork, and leaves the first reachable; a stale
# socket nobody listens on is replaced; a file that is not a socket is
# never removed.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires nbdinfo python3
trace_on

nbd_store
"$ADMIN" create --size 8M vm1

# refused RC PATTERN ARGS...: isocache-nbd ARGS exits RC saying PATTERN.
refused() {
	local want=$1 pattern=$2 rc=0
	shift 2
	timeout 20 "$NBD" --store "$ISOCACHE_STORE" "$@" 2>"$TESTDIR/err" || rc=$?
	[ "$rc" = "$want" ] || fail "isocache-nbd $* gave $rc, not $want: $(cat "$TESTDIR/err")"
	grep -q -- "$pattern" "$TESTDIR/err" || fail "isocache-nbd $*: no '$pattern' in: $(cat "$TESTDIR/err")"
}

refused 2 "--port takes a number from 0 to 65535, not '99999'" -p 99999 -r vm1
refused 2 "not 'http'" -p http -r vm1
refused 2 "not '-1'" -p -1 -r vm1

# -p 0: a free port, logged, and served.
start_bg "$TESTDIR/tcp.pid" "$NBD" --store "$ISOCACHE_STORE" -t -r -p 0 \
	--pid-file "$TESTDIR/tcp.pid" vm1 2>"$TESTDIR/tcp.log"
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$TESTDIR/tcp.log")
[ -n "$port" ] && [ "$port" != 0 ] || fail "-p 0 did not say where: $(cat "$TESTDIR/tcp.log")"
nbdinfo --size "nbd://127.0.0.1:$port" | grep -qx 8388608 || fail "nothing served on port $port"

# A second server on the same socket is refused; the first keeps it.
nbd_start first -r vm1 2>"$TESTDIR/first.log"
grep -q "listening on $TESTDIR/first.sock" "$TESTDIR/first.log" || fail "socket path not logged"
refused 1 "another server is listening there" -r -k "$TESTDIR/first.sock" vm1
refused 1 "another server is listening there" -r --fork -k "$TESTDIR/first.sock" vm1
nbdinfo --size "$(nbd_uri first)" | grep -qx 8388608 || fail "first server unreachable"
nbd_stop first

# A stale socket (bound, nobody listening) is replaced.
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
	"$TESTDIR/stale.sock"
[ -S "$TESTDIR/stale.sock" ] || fail "no stale socket made"
nbd_start stale -r vm1
nbdinfo --size "$(nbd_uri stale)" | grep -qx 8388608 || fail "stale socket not replaced"
nbd_stop stale

# Anything else at the path is left alone.
echo precious >"$TESTDIR/file.sock"
refused 1 "exists and is not a socket" -r -k "$TESTDIR/file.sock" vm1
[ "$(cat "$TESTDIR/file.sock")" = precious ] || fail "a regular file was replaced"
echo PASS
