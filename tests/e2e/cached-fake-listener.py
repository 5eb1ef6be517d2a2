#!/usr/bin/python3
"""A listener posing as isocached, for cached-peer-check.sh.

    cached-fake-listener.py SOCKET PIDFILE REPORT

Listens on SOCKET, writes its pid to PIDFILE once it does, then accepts
connections one at a time until killed, reads every packet with room for
descriptors, closes any that came, and replies to nothing. A connection
whose first packet is "END" is the test's marker: every connection made
before it has been read, so REPORT is written then, as "connections N
descriptors M" (the marker not counted).
"""
import array
import os
import socket
import sys

path, pidfile, report = sys.argv[1:4]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
srv.bind(path)
srv.listen(16)
with open(pidfile + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(pidfile + ".tmp", pidfile)

conns = fds = 0
while True:
    c, _ = srv.accept()
    c.settimeout(10)
    try:
        first = True
        while True:
            data, anc, _, _ = c.recvmsg(4096, socket.CMSG_SPACE(64 * 4))
            if first and data == b"END":
                with open(report + ".tmp", "w") as f:
                    f.write("connections %d descriptors %d\n" % (conns, fds))
                os.rename(report + ".tmp", report)
                conns -= 1
                break
            first = False
            for level, kind, body in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    got = array.array("i")
                    got.frombytes(body[:len(body) - len(body) % got.itemsize])
                    for fd in got:
                        os.close(fd)
                    fds += len(got)
            if not data:
                break
    except OSError:
        pass
    c.close()
    conns += 1
