#!/usr/bin/env bash
# Requests to a control socket go only to a process of root or of our own
# uid (as the listening side accepts only those): a listener of another uid
# planted where a path points learns nothing of our requests, and the
# refusal names the socket and its owner. A listener of the caller's own uid
# does get the request, so the check can fail.
source "$(dirname "$0")/../functions.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to run processes as other uids" >&2; exit 77; }
requires setpriv
cd "$TESTDIR"
chmod 0755 "$TESTDIR"
as() { local uid=$1; shift; setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"; }

# listen UID SOCKET REPORT: a SEQPACKET listener of uid UID that counts the
# bytes every connection sends and writes "bytes N" to REPORT when a
# connection sends "END" (all earlier connections have been read by then).
listen() {
	as "$1" /usr/bin/python3 -c '
import os, socket, sys
path, report = sys.argv[1:3]
os.umask(0)  # a hostile listener lets anyone connect
srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
srv.bind(path)
srv.listen(8)
open(path + ".pid", "w").write("%d\n" % os.getpid())
total = 0
while True:
    c, _ = srv.accept()
    c.settimeout(10)
    try:
        data = c.recv(65536)
    except OSError:
        data = b""
    if data == b"END":
        open(report, "w").write("bytes %d\n" % total)
    else:
        total += len(data)
    c.close()' "$2" "$3" &
	wait_until 10 test -s "$2.pid" || fail "the listener of uid $1 did not start"
	cleanup_fn kill "$(cat "$2.pid")"
}
report() {
	rm -f "$2"
	/usr/bin/python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(sys.argv[1]); s.send(b"END")' "$1"
	wait_until 10 test -s "$2" || fail "no report from $1"
	cat "$2"
}

mkdir -m 0777 sockets home
as 65534 "$ADMIN" --store home/store init >/dev/null
listen 65533 sockets/other.sock sockets/other.report
listen 65534 sockets/mine.sock sockets/mine.report

# Uid 65534 asks a socket of uid 65533: refused before a byte is sent.
rc=0
as 65534 "$ADMIN" --store home/store stats --socket sockets/other.sock 2>err || rc=$?
cat err
[ $rc != 0 ] || fail "a request to another uid's socket succeeded"
grep -q 'sockets/other.sock is served by uid 65533' err || fail "the refusal does not name the socket's owner"
[ "$(report sockets/other.sock sockets/other.report)" = "bytes 0" ] ||
	fail "the listener of another uid received our request: $(cat sockets/other.report)"

# The control: its own uid's listener gets the request (it never answers, so
# the call ends at its deadline).
as 65534 "$ADMIN" --store home/store stats --socket sockets/mine.sock 2>err && fail "no answer, yet success"
grep -q 'served by uid' err && fail "our own uid's socket was refused"
got=$(report sockets/mine.sock sockets/mine.report)
[ "$got" != "bytes 0" ] || fail "the control listener received nothing"
echo "ok: another uid's socket got nothing; our own got the request ($got)"
