#!/usr/bin/env bash
# The systemd units cmake --install puts in place pass systemd-analyze
# verify (no systemd as PID 1 needed), and isocached started the way
# isocached.socket starts it works: systemd-socket-activate listens on the
# socket, execs the daemon on the first connection and passes the socket
# (sd_listen_fds); a read through isocache-nbd's cache filter is served by
# it; it reports READY=1 and STOPPING=1 (sd_notify) to NOTIFY_SOCKET; and
# after SIGTERM it exits 0 leaving the socket, which is systemd's.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/cached-functions.bash"
requires systemd-analyze systemd-socket-activate nbdcopy python3
trace_on

prefix=$TESTDIR/prefix
cmake --install "$IC_BUILD" --prefix "$prefix" >/dev/null
units=$prefix/lib/systemd/system
for u in isocached.socket isocached.service isocache-nbd@.service isocache-fuse@.service; do
	[ -s "$units/$u" ] || fail "$u is not installed"
done
grep -q "^ExecStart=$prefix/sbin/isocached " "$units/isocached.service" ||
	fail "isocached.service does not run the installed daemon"
# Templates are verified as instances. Any output is a finding (an unknown
# key is only a warning, with exit status 0).
out=$(cd "$units" && MANPATH=$prefix/share/man SYSTEMD_UNIT_PATH=$units: systemd-analyze verify \
	isocached.socket isocached.service isocache-nbd@vm1.service \
	isocache-fuse@mnt-isocache.service 2>&1) || fail "systemd-analyze verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"

# The service manager's end of sd_notify: a datagram socket that logs
# every message it receives.
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2], "w").close()
while True:
    msg = s.recv(4096).decode()
    with open(sys.argv[2], "a") as f:
        f.write(msg + "\n")
' "$TESTDIR/notify.sock" "$TESTDIR/notify.log" &
cleanup_fn kill $!
wait_until 10 test -e "$TESTDIR/notify.log" || fail "the notify receiver did not start"

systemd-socket-activate --seqpacket -l "$ISOCACHE_SOCKET" -E NOTIFY_SOCKET="$TESTDIR/notify.sock" \
	"$CACHED" --foreground --memory 64M &
daemon=$!
cleanup_fn kill "$daemon"
wait_until 10 test -S "$ISOCACHE_SOCKET" || fail "systemd-socket-activate did not listen"
[ "$(cat /proc/$daemon/comm)" = systemd-socket- ] || fail "the daemon started before a connection"

cached_golden 8 vm
nbd_start srv vm # the cache filter is in every stack by default
uri=$(nbd_uri srv vm)
nbdcopy "$uri" "$TESTDIR/copy.raw"
cmp "$TESTDIR/copy.raw" "$TESTDIR/base.raw" || fail "wrong data through the activated daemon"
[ "$(cat /proc/$daemon/comm)" = isocached ] || fail "the first connection did not start isocached"
wait_until 10 grep -qx READY=1 "$TESTDIR/notify.log" || fail "isocached did not report READY=1"
filled() { (($(cached_stat all fills) > 0)); }
wait_until 10 filled || fail "the activated daemon filled nothing"
nbdcopy "$uri" "$TESTDIR/copy2.raw"
cmp "$TESTDIR/copy2.raw" "$TESTDIR/base.raw" || fail "wrong data on the second read"
hits=$(cached_stat all hits)
((hits > 0)) || fail "the second read was not served from the cache"
nbd_stop srv

kill -TERM "$daemon"
rc=0
wait "$daemon" || rc=$?
[ "$rc" = 0 ] || fail "isocached exited with $rc after SIGTERM"
# The receiver writes what it got on its own time: the daemon may be gone first.
wait_until 10 grep -qx STOPPING=1 "$TESTDIR/notify.log" || fail "isocached did not report STOPPING=1"
[ -S "$ISOCACHE_SOCKET" ] || fail "isocached removed the socket systemd owns"
