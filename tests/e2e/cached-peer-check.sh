#!/usr/bin/env bash
# The cache client hands descriptors only to a daemon run by root or by its
# own uid: a listener of another uid at the socket path gets no descriptor
# (not even the shared buffer of HELLO), the refusal names the socket and
# its owner, and isocache-nbd's cache filter then reads from the layers, so
# no I/O fails because of it (issue 13 item 3). A listener of our own uid,
# the control, does get descriptors, so the check can fail.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/cached-functions.bash"
trace_on
requires nbdcopy
cached_as_nobody
LISTENER=$IC_SRC/tests/e2e/cached-fake-listener.py

mkdir -m 0777 "$TESTDIR/fake"
fake=$TESTDIR/fake/cached.sock own=$TESTDIR/own.sock
start_bg "$TESTDIR/fake/pid" "${NOBODY[@]}" /usr/bin/python3 "$LISTENER" "$fake" \
	"$TESTDIR/fake/pid" "$TESTDIR/fake/report"
start_bg "$TESTDIR/own.pid" /usr/bin/python3 "$LISTENER" "$own" "$TESTDIR/own.pid" \
	"$TESTDIR/own.report"
cached_layer "$TESTDIR/layer" 1M

# report SOCKET FILE: "connections N descriptors M" of the listener on
# SOCKET, once it has read every connection made before this one.
report() {
	rm -f "$2"
	/usr/bin/python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.send(b"END")' "$1"
	wait_until 10 test -s "$2"
	cat "$2" || fail "no report from the listener on $1"
}

# The control: a listener of our own uid is handed HELLO's buffer (and,
# never answering, times the client out).
if "$CTL" -s "$own" -t 300 register "$TESTDIR/layer"; then fail "the fake daemon answered"; fi
[[ $(report "$own" "$TESTDIR/own.report") == "connections 1 descriptors 1" ]] ||
	fail "the control listener did not get HELLO's descriptor"

# The library refuses nobody's listener before passing anything, and says
# which socket and whose it is.
if "$CTL" -s "$fake" -t 300 register "$TESTDIR/layer" 2>"$TESTDIR/err"; then
	fail "registered with a listener of nobody's"
fi
cat "$TESTDIR/err"
[[ $(report "$fake" "$TESTDIR/fake/report") == "connections 1 descriptors 0" ]] ||
	fail "the listener of another uid got a descriptor"
grep -q "isocached socket $fake is served by uid 65534" "$TESTDIR/err" ||
	fail "the refusal does not name the socket and its owner"

# The cache filter reads past the impostor; every byte still right.
cached_golden 8 vm
nbd_start srv --filter "cache:socket=$fake" vm
nbdcopy "$(nbd_uri srv vm)" "$TESTDIR/copy.raw"
cmp "$TESTDIR/copy.raw" "$TESTDIR/base.raw" || fail "wrong data through the cache filter"
nbd_stop srv

out=$(report "$fake" "$TESTDIR/fake/report")
n=${out#connections } && n=${n%% *}
[[ $out == *" descriptors 0" ]] && ((n >= 2)) ||
	fail "the listener of another uid: $out (wanted the filter's connections, no descriptor)"
echo PASS
