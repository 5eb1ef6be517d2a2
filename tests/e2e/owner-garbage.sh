#!/usr/bin/env bash
# Bad input on the control socket: garbage, a wrong version and a requester
# that disconnects mid-handoff each end only their connection; the owner
# keeps ownership and keeps serving.
source "$(dirname "$0")/owner-functions.bash"

owner_vdisk 16M vm
nbd_start a --release=always vm 2>"$TESTDIR/a.err"
apid=$(cat "$TESTDIR/a.pid")
sock=$(owner_socket vm)
[ -S "$sock" ] || fail "no control socket at $sock"

/usr/bin/python3 - "$sock" <<'PY'
import os, socket, struct, sys
path = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    return s
def closed_after(payload):
    s = conn()
    s.send(payload)
    data = s.recv(70000)
    while data:
        data = s.recv(70000)
    s.close()
MAGIC = 0x4c544349
# Garbage, a truncated header, a wrong version, an unknown type.
closed_after(os.urandom(300))
closed_after(b"ICT")
closed_after(struct.pack("<IIII", MAGIC, 9 | 3 << 16, 16, 1))
closed_after(struct.pack("<IIII", MAGIC, 1 | 77 << 16, 16, 1))
# A RELEASE whose sender leaves at once.
name = b"vm".ljust(256, b"\0")
body = name + os.urandom(16) + struct.pack("<II", 5000, 0) + b"x".ljust(64, b"\0") + \
       b"y".ljust(128, b"\0") + b"".ljust(108, b"\0")
s = conn()
s.send(struct.pack("<IIII", MAGIC, 1 | 1 << 16, 16 + len(body), 1) + body)
s.close()
PY
wait_until 30 grep -q "the requester (pid [0-9]*) left" "$TESTDIR/a.err" ||
	fail "the owner did not notice that the requester left: $(cat "$TESTDIR/a.err")"
[ "$(owner_pid vm)" = "$apid" ] || fail "the owner lost vm to a requester that left"
kill -0 "$apid" || fail "the owner died"
qemu-io -f raw -c "write -P 0x44 0 64k" -c "read -P 0x44 0 64k" "$(nbd_uri a)" >/dev/null
"$ADMIN" stats --json vm | grep -q '"owned":true' || fail "stats do not answer"
nbd_stop a
echo PASS
