#!/usr/bin/env bash
# Ways to run the server: captive --run (exit status passed through), -s on
# stdin/stdout, --fork with a pid file, TCP, a non-persistent server
# exiting after its client, and SIGTERM during load answering every request
# in flight and exiting 0.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires nbdsh nbdinfo python3 qemu-io
trace_on

nbd_store
"$ADMIN" create --size 64M vm
S=(--store "$ISOCACHE_STORE")

# --run: $uri is set; the command's status is ours. Its socket's
# directory is made in $TMPDIR and gone afterwards, after a start that
# failed too (it was left behind in /tmp then).
# (A name with a space and a '#' in it: $uri encodes them.)
mkdir "$TESTDIR/t m#p"
export TMPDIR="$TESTDIR/t m#p"
"$NBD" "${S[@]}" --run 'nbdinfo --size "$uri"; echo "$unixsocket" >'"$TESTDIR/run.sock" vm |
	grep -qx 67108864 || fail "--run"
[[ $(cat "$TESTDIR/run.sock") == "$TMPDIR"/isocache-nbd.*/nbd.sock ]] ||
	fail "--run's socket is not in \$TMPDIR: $(cat "$TESTDIR/run.sock")"
rc=0; "$NBD" "${S[@]}" --run 'exit 3' vm || rc=$?
[ "$rc" = 3 ] || fail "--run status $rc"
expect_fail "nosuch" "$NBD" "${S[@]}" --run true nosuch
[ -z "$(ls -A "$TMPDIR")" ] || fail "--run left behind: $(ls -A "$TMPDIR")"
TMPDIR=$TESTDIR/$(printf '%0120d' 0) expect_fail "TMPDIR .* is too long" "$NBD" "${S[@]}" --run true vm
unset TMPDIR

# -s: one client on stdin/stdout.
nbdsh -c "
h.connect_command(['$NBD', '--store', '$ISOCACHE_STORE', '-s', 'vm'])
h.pwrite(b'stdio' * 100, 4096)
h.flush()
assert h.pread(500, 4096) == b'stdio' * 100
" || fail "-s"

# --fork: returns once serving; the pid file names the daemon.
"$NBD" "${S[@]}" --fork -t -k "$TESTDIR/f.sock" --pid-file "$TESTDIR/f.pid" vm
pid=$(cat "$TESTDIR/f.pid")
cleanup_fn kill "$pid"
nbdinfo --size "nbd+unix:///?socket=$TESTDIR/f.sock" | grep -qx 67108864 || fail "--fork"
kill -TERM "$pid"
wait_until 10 gone "$pid" || fail "--fork daemon ignored SIGTERM"

# TCP on a free port; without -t the server exits after its client.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$NBD" "${S[@]}" -p "$port" --pid-file "$TESTDIR/t.pid" vm &
tpid=$!
cleanup_fn kill "$tpid"
wait_until 10 test -s "$TESTDIR/t.pid" || fail "the TCP server did not start within 10 s"
nbdinfo --size "nbd://127.0.0.1:$port" | grep -qx 67108864 || fail "TCP"
rc=0; wait "$tpid" || rc=$?
[ "$rc" = 0 ] || fail "non-persistent server exited with $rc"

# SIGTERM with requests in flight (each held 300 ms by the delay filter):
# every one is answered, then the server flushes and exits 0.
nbd_start s --filter delay:write=300ms vm
pid=$(cat "$TESTDIR/s.pid")
nbdsh -u "$(nbd_uri s)" -c "
import os, signal, time
cookies = [h.aio_pwrite(bytes([i]) * 4096, i * 65536) for i in range(16)]
# The condition under test, not a wait for an event: the signal comes while
# the first writes sit in the delay filter (the rest, sent or still in the
# socket, must be answered too: the server reads what was sent before it
# stopped reading).
time.sleep(0.1)
os.kill($pid, signal.SIGTERM)
while h.aio_in_flight() > 0:
    h.poll(-1)
for c in cookies:
    assert h.aio_command_completed(c)
" || fail "requests in flight at SIGTERM"
rc=0; wait "$pid" || rc=$?
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
"$NBD" "${S[@]}" --run 'qemu-io -f raw -c "read -P 15 983040 4096" "$uri"' vm >"$TESTDIR/log"
! grep -q 'verification failed' "$TESTDIR/log" || fail "writes answered before SIGTERM were lost"
