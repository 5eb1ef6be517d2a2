#!/usr/bin/env bash
# Export catalog: one export per vdisk and snapshot, the default export
# when there is one, -x renaming, read-only snapshots, unknown exports
# refused while the server carries on, and SIGTERM exiting 0.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires nbdinfo nbdsh
trace_on

nbd_store
"$ADMIN" create --size 8M vm1
"$ADMIN" snap vm1@s1
"$ADMIN" clone vm1@s1 vm2

# Every image of the store when none is named.
nbd_start all -r
list=$(nbdinfo --list --json "$(nbd_uri all)")
for e in vm1 vm1@s1 vm2; do
	grep -q "\"export-name\": \"$e\"" <<<"$list" || fail "export $e missing: $list"
done
nbdinfo "$(nbd_uri all vm1@s1)" | grep -q 'is_read_only: true' || fail "snapshot not read-only"
nbdinfo "$(nbd_uri all vm1@s1)" | grep -q 'description: isocache snapshot vm1@s1' ||
	fail "no description"
# Several exports: the empty name is not one of them.
! nbdinfo "$(nbd_uri all)" 2>"$TESTDIR/err" || fail "default export with several exports"
! nbdinfo "$(nbd_uri all nope)" 2>>"$TESTDIR/err" || fail "unknown export accepted"
nbdinfo --size "$(nbd_uri all vm2)" | grep -qx 8388608 || fail "server hurt by bad clients"
nbd_stop all

# One named image: it is also the default export, and -x renames it.
nbd_start one vm2
nbdinfo "$(nbd_uri one)" | grep -q 'is_read_only: false' || fail "vm2 not writable"
nbdinfo "$(nbd_uri one)" | grep -q 'can_multi_conn: true' || fail "multi-conn not offered"
nbd_stop one
nbd_start renamed -x disk vm1@s1
nbdinfo --size "$(nbd_uri renamed disk)" | grep -qx 8388608 || fail "-x name not served"
nbdsh --base-allocation -u "$(nbd_uri renamed disk)" -c '
assert h.is_read_only()
assert h.can_meta_context("base:allocation")
assert h.get_structured_replies_negotiated()
'
nbd_stop renamed

# Option parsing: bad options fail with status 2, --help documents them.
grep -q -- '--filter=SPEC' <<<"$("$NBD" --help)" || fail "--help incomplete"
rc=0; "$NBD" --cache bogus vm1 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "--cache bogus gave $rc"
rc=0; "$NBD" --store "$ISOCACHE_STORE" -k "$TESTDIR/x.sock" nosuch 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "unknown image gave $rc"
