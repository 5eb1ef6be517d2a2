#!/usr/bin/env bash
# NBD over TLS with real clients: PSK (nbdinfo and nbdsh with a psktool
# file, qemu-io with tls-creds-psk) and x509 (nbdinfo with
# tls-certificates, qemu-img with tls-creds-x509; with --tls-verify-peer
# only clients holding a certificate from the CA); a plain client is
# refused when TLS is required (NBD_REP_ERR_TLS_REQD), served when it is
# only offered; a wrong key fails; plain TCP beyond loopback is refused
# without --insecure.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/../pki.sh"
requires nbdinfo nbdsh qemu-io qemu-img certtool psktool
trace_on

nbd_store
"$ADMIN" create --size 8M vm1

# tcp_start NAME ARGS...: serve on a free port, set $port.
tcp_start() {
	local name=$1
	shift
	start_bg "$TESTDIR/$name.pid" "$NBD" --store "$ISOCACHE_STORE" -t -p 0 \
		--pid-file "$TESTDIR/$name.pid" "$@" 2>"$TESTDIR/$name.log"
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$TESTDIR/$name.log")
	[ -n "$port" ] || fail "$name: no port logged: $(cat "$TESTDIR/$name.log")"
}
tcp_stop() {
	local pid
	pid=$(cat "$TESTDIR/$1.pid")
	kill -TERM "$pid"
	wait "$pid" || fail "server $1 exited with $? after SIGTERM"
}

# ---- PSK ----
mkdir -p "$TESTDIR/psk" "$TESTDIR/other"
psktool -u alice -p "$TESTDIR/psk/keys.psk" >/dev/null
psktool -u alice -p "$TESTDIR/other/keys.psk" >/dev/null # same user, another key
tcp_start psk --tls-psk "$TESTDIR/psk/keys.psk" vm1
tls_uri="nbds://alice@127.0.0.1:$port/?tls-psk-file=$TESTDIR/psk/keys.psk"
nbdinfo --size "$tls_uri" | grep -qx 8388608 || fail "nbdinfo over TLS-PSK"
nbdsh -c "
h.set_uri_allow_local_file(True)
h.connect_uri('$tls_uri')
" -c '
h.pwrite(b"tls!" * 1024, 4096)
assert h.pread(4096, 4096) == b"tls!" * 1024
assert h.get_tls_negotiated()
'
qemu-io --object "tls-creds-psk,id=tls0,endpoint=client,dir=$TESTDIR/psk,username=alice" \
	--image-opts "driver=nbd,host=127.0.0.1,port=$port,tls-creds=tls0" \
	-c 'read -P 0x74 4096 1' -c 'write -P 0x5a 0 64k' -c 'read -P 0x5a 0 64k' \
	>"$TESTDIR/qemu-io.out" || fail "qemu-io over TLS-PSK: $(cat "$TESTDIR/qemu-io.out")"
grep -q 'Pattern verification failed' "$TESTDIR/qemu-io.out" && fail "qemu-io read back wrong data"
# A plain client gets NBD_REP_ERR_TLS_REQD, one with the wrong key fails.
nbdsh -c "
h.set_tls(nbd.TLS_DISABLE)
try:
    h.connect_tcp('127.0.0.1', '$port')
    raise SystemExit('plain client connected to a TLS-only server')
except nbd.Error as e:
    print(e)
    assert 'TLS' in str(e), e
"
! nbdinfo --size "nbd://127.0.0.1:$port" 2>/dev/null || fail "plain nbdinfo served"
! nbdinfo --size "nbds://alice@127.0.0.1:$port/?tls-psk-file=$TESTDIR/other/keys.psk" \
	2>/dev/null || fail "wrong key accepted"
nbdinfo --size "$tls_uri" | grep -qx 8388608 || fail "server hurt by refused clients"
tcp_stop psk

# --tls=on: offered, not required.
tcp_start opt --tls=on --tls-psk "$TESTDIR/psk/keys.psk" -r vm1
nbdinfo --size "nbd://127.0.0.1:$port" | grep -qx 8388608 || fail "plain client refused with --tls=on"
nbdinfo --size "nbds://alice@127.0.0.1:$port/?tls-psk-file=$TESTDIR/psk/keys.psk" |
	grep -qx 8388608 || fail "TLS client refused with --tls=on"
tcp_stop opt

# ---- x509 ----
pki=$TESTDIR/pki
pki_make "$pki"
# Clients: one with only the CA, one with a client certificate too.
mkdir -p "$TESTDIR/nocert" "$TESTDIR/cli"
cp "$pki/ca-cert.pem" "$TESTDIR/nocert/"
cp "$pki/ca-cert.pem" "$pki/client-cert.pem" "$pki/client-key.pem" "$TESTDIR/cli/"
tcp_start x509 --tls=require --tls-certificates "$pki" vm1
nbdinfo --size "nbds://localhost:$port/?tls-certificates=$TESTDIR/nocert" | grep -qx 8388608 ||
	fail "nbdinfo over TLS-x509"
qemu-img info --object "tls-creds-x509,id=tls0,endpoint=client,dir=$TESTDIR/nocert" \
	--image-opts "driver=nbd,host=localhost,port=$port,tls-creds=tls0" >"$TESTDIR/info" ||
	fail "qemu-img over TLS-x509"
grep -q 'virtual size: 8 MiB' "$TESTDIR/info" || fail "qemu-img info: $(cat "$TESTDIR/info")"
! nbdinfo --size "nbd://127.0.0.1:$port" 2>/dev/null || fail "plain client served with x509"
tcp_stop x509
# --tls-verify-peer: only clients with a certificate from the CA.
tcp_start verify --tls-certificates "$pki" --tls-verify-peer vm1
nbdinfo --size "nbds://localhost:$port/?tls-certificates=$TESTDIR/cli" | grep -qx 8388608 ||
	fail "client certificate refused"
qemu-img info --object "tls-creds-x509,id=tls0,endpoint=client,dir=$TESTDIR/cli" \
	--image-opts "driver=nbd,host=localhost,port=$port,tls-creds=tls0" >/dev/null ||
	fail "qemu-img with a client certificate refused"
! nbdinfo --size "nbds://localhost:$port/?tls-certificates=$TESTDIR/nocert" 2>/dev/null ||
	fail "client without a certificate served with --tls-verify-peer"
tcp_stop verify

# ---- Refusals ----
# refused PATTERN ARGS...: isocache-nbd ARGS fails saying PATTERN.
refused() {
	local pattern=$1 rc=0
	shift
	timeout 20 "$NBD" --store "$ISOCACHE_STORE" "$@" 2>"$TESTDIR/err" || rc=$?
	[ "$rc" = 1 ] || [ "$rc" = 2 ] || fail "isocache-nbd $* gave $rc: $(cat "$TESTDIR/err")"
	grep -q -- "$pattern" "$TESTDIR/err" || fail "isocache-nbd $*: no '$pattern' in $(cat "$TESTDIR/err")"
}
refused "refusing to listen on 0.0.0.0 without TLS" -r -b 0.0.0.0 -p 0 vm1
refused "refusing to listen on 0.0.0.0 without TLS" -r -b 0.0.0.0 -p 0 --tls=on \
	--tls-psk "$TESTDIR/psk/keys.psk" vm1
refused "needs --tls-certificates" --tls=require -r -p 0 vm1
refused "tls-verify-peer checks x509" --tls-psk "$TESTDIR/psk/keys.psk" --tls-verify-peer -r -p 0 vm1
mkdir -p "$TESTDIR/noca" && cp "$pki/server-cert.pem" "$pki/server-key.pem" "$TESTDIR/noca/"
refused "tls-verify-peer needs" --tls-certificates "$TESTDIR/noca" --tls-verify-peer -r -p 0 vm1
refused "cannot read the PSK file" --tls-psk "$TESTDIR/nope" -r -p 0 vm1
refused "cannot load server-cert.pem" --tls-certificates "$TESTDIR/psk" -r -p 0 vm1
# With --insecure, or TLS required, it listens.
start_bg "$TESTDIR/any.pid" "$NBD" --store "$ISOCACHE_STORE" -t -r -b 0.0.0.0 -p 0 --insecure \
	--pid-file "$TESTDIR/any.pid" vm1 2>"$TESTDIR/any.log"
grep -q 'listening on 0.0.0.0:' "$TESTDIR/any.log" || fail "--insecure: $(cat "$TESTDIR/any.log")"
tcp_stop any
grep -q -- '--tls-psk=FILE' <<<"$("$NBD" --help)" || fail "--help lacks TLS"
echo PASS
