#!/usr/bin/env bash
# A store in etcd with etcd's users and roles on (docs/MULTI-HOST.md §7,
# "etcd users"), over TLS: user hosta's role may read and write only
# /isocache/a/. With ISOCACHE_ETCD_USER and ISOCACHE_ETCD_PASSWORD_FILE the
# admin tool makes and lists the store, isocache-nbd claims, writes and
# commits through it. The prefix of another store is refused, naming the
# grant to make; no user, a wrong password, a password file others can
# read, a user without a file: each a clear error. The password rotated
# while a serves (the file written, then the password changed in etcd,
# which ends every token of hosta): a authenticates again, goes on
# committing and keeping its lease, and releases vm to b, which reads back
# what a flushed.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/../etcd.sh"
ETCD_TLS=1
requires qemu-io
etcd_cluster_start
export ISOCACHE_LEASE_TTL=2
cleanup_fn chattr -R -i "$ISOCACHE_STORE"

_etcdctl "$ETCD_ENDPOINTS" user add root:root-pw >/dev/null
_etcdctl "$ETCD_ENDPOINTS" user add hosta:first-pw >/dev/null
_etcdctl "$ETCD_ENDPOINTS" role add store-a >/dev/null
_etcdctl "$ETCD_ENDPOINTS" role grant-permission store-a readwrite --prefix=true /isocache/a/ >/dev/null
_etcdctl "$ETCD_ENDPOINTS" user grant-role hosta store-a >/dev/null
_etcdctl "$ETCD_ENDPOINTS" auth enable >/dev/null
echo "etcd authentication on: hosta may read and write /isocache/a/"
# Users on, etcd 3.4 refuses a gateway request whose client certificate
# has a common name (it would not be the user): hosts present one without.
pki_client_anonymous "$ETCD_PKI"
export ISOCACHE_ETCD_CERT=$ETCD_PKI/anon-cert.pem ISOCACHE_ETCD_KEY=$ETCD_PKI/anon-key.pem

(umask 077 && printf 'first-pw\n' >"$TESTDIR/hosta.pw")
export ISOCACHE_ETCD_USER=hosta ISOCACHE_ETCD_PASSWORD_FILE=$TESTDIR/hosta.pw
"$ADMIN" init --meta "etcds://$ETCD_ENDPOINTS/a"
"$ADMIN" create --size 16M vm
"$ADMIN" ls | grep -q '^vm ' || fail "ls as hosta"

# Refusals, each naming what to do.
expect_fail "permission denied \(etcd user hosta: grant its role readwrite on the prefix /isocache/b/\)" \
	"$ADMIN" --store "$TESTDIR/store-b" init --meta "etcds://$ETCD_ENDPOINTS/b"
expect_fail "user name is empty \(the cluster has authentication on: set ISOCACHE_ETCD_USER" \
	env -u ISOCACHE_ETCD_USER -u ISOCACHE_ETCD_PASSWORD_FILE "$ADMIN" ls
(umask 077 && printf 'wrong-pw\n' >"$TESTDIR/wrong.pw")
expect_fail "invalid user ID or password \(check ISOCACHE_ETCD_USER, hosta," \
	env ISOCACHE_ETCD_PASSWORD_FILE="$TESTDIR/wrong.pw" "$ADMIN" ls
cp "$TESTDIR/hosta.pw" "$TESTDIR/open.pw"
chmod 644 "$TESTDIR/open.pw"
expect_fail "password file .*/open.pw is open to group or others \(mode 0644\): chmod 600 it" \
	env ISOCACHE_ETCD_PASSWORD_FILE="$TESTDIR/open.pw" "$ADMIN" ls
expect_fail "ISOCACHE_ETCD_USER and ISOCACHE_ETCD_PASSWORD_FILE go together" \
	env -u ISOCACHE_ETCD_PASSWORD_FILE "$ADMIN" ls
expect_fail "CommonName of client .* \(with etcd's users on, the client certificate, ISOCACHE_ETCD_CERT, must have no common name\)" \
	env ISOCACHE_ETCD_CERT="$ETCD_PKI/client-cert.pem" ISOCACHE_ETCD_KEY="$ETCD_PKI/client-key.pem" "$ADMIN" ls

# a serves vm and commits as hosta.
nbd_start a --release=always vm 2>"$TESTDIR/a.log"
qemu-io -f raw -c "write -P 0x5a 0 1M" -c flush "$(nbd_uri a)" >"$TESTDIR/w.io"
qemu_io_done "$TESTDIR/w.io" 1

# The password rotated: every token of hosta ends at once.
(umask 077 && printf 'second-pw\n' >"$TESTDIR/hosta.pw")
_etcdctl "$ETCD_ENDPOINTS" --user root:root-pw user passwd hosta --interactive=false <<<second-pw >/dev/null
echo "hosta's password changed"
# a's lease keeper renews every TTL/3: it meets the ended token first.
wait_until 30 grep -q 'the token of hosta is no longer valid; authenticating again' "$TESTDIR/a.log" ||
	fail "a did not authenticate again: $(cat "$TESTDIR/a.log")"
qemu-io -f raw -c "write -P 0x6b 1M 1M" -c flush "$(nbd_uri a)" >"$TESTDIR/w2.io"
qemu_io_done "$TESTDIR/w2.io" 1
! grep -E 'fenced|lease [0-9]+ lost' "$TESTDIR/a.log" || fail "a lost its lease over the rotation"

# b claims vm: a, asked through etcd, releases it; b reads what a flushed.
nbd_start b -r vm 2>"$TESTDIR/b.log"
qemu-io -f raw -r -c "read -P 0x5a 0 1M" -c "read -P 0x6b 1M 1M" "$(nbd_uri b)" >"$TESTDIR/r.io"
qemu_io_done "$TESTDIR/r.io" 2
nbd_stop b
nbd_start c vm 2>"$TESTDIR/c.log"
qemu-io -f raw -c "read -P 0x6b 1M 1M" "$(nbd_uri c)" >"$TESTDIR/c.io"
qemu_io_done "$TESTDIR/c.io" 1
grep -E 'released (through etcd )?to' "$TESTDIR/a.log" || fail "a did not release vm to c: $(cat "$TESTDIR/a.log")"
nbd_stop c
nbd_stop a
"$ADMIN" check
echo PASS
