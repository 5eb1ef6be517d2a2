#!/usr/bin/env bash
# A store in etcd over TLS (docs/MULTI-HOST.md §7): members that serve
# clients only over https and ask for a client certificate
# (--client-cert-auth); init --meta etcds://...; isocache-nbd writes through
# its lease and commits, a second server reads it back, and the admin tool
# lists and checks, all with ISOCACHE_ETCD_CA, _CERT and _KEY. Without the
# client certificate, with another CA, with a certificate but no key, or
# with etcd:// (plain http) to these members: a clear error, nothing made.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/../etcd.sh"
ETCD_TLS=1
requires qemu-io
etcd_cluster_start
URL=etcds://$ETCD_ENDPOINTS/tls1
cleanup_fn chattr -R -i "$ISOCACHE_STORE"

"$ADMIN" init --meta "$URL"
"$ADMIN" create --size 16M vm
nbd_start a vm
qemu-io -f raw -c "write -P 0x5a 0 1M" -c flush "$(nbd_uri a)" >"$TESTDIR/w.io"
qemu_io_done "$TESTDIR/w.io" 1
nbd_stop a
nbd_start b -r vm
qemu-io -f raw -r -c "read -P 0x5a 0 1M" "$(nbd_uri b)" >"$TESTDIR/r.io"
qemu_io_done "$TESTDIR/r.io" 1
nbd_stop b
"$ADMIN" ls | grep -q '^vm ' || fail "ls over TLS"
"$ADMIN" check

# Refusals, each naming the cause.
expect_fail 'TLS: check .*ISOCACHE_ETCD_CERT' env -u ISOCACHE_ETCD_CERT -u ISOCACHE_ETCD_KEY "$ADMIN" ls
expect_fail 'ISOCACHE_ETCD_CERT and ISOCACHE_ETCD_KEY go together' \
	env -u ISOCACHE_ETCD_KEY "$ADMIN" ls
pki_make "$TESTDIR/other"
expect_fail 'certificate problem.*check ISOCACHE_ETCD_CA' env ISOCACHE_ETCD_CA="$TESTDIR/other/ca-cert.pem" "$ADMIN" ls
expect_fail 'speaks TLS.*use etcds://' "$ADMIN" --store "$TESTDIR/plain" init --meta "etcd://$ETCD_ENDPOINTS/plain"
[ ! -e "$TESTDIR/plain/meta.etcd" ] || fail "init over plain http left a store"
echo "etcd over TLS: OK"
