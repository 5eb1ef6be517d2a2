#!/usr/bin/env bash
# A store whose metadata is in etcd (docs/MULTI-HOST.md), on a real 3-member
# cluster, used as a user would: init --meta, import, snapshot, clone, ls,
# check; isocache-nbd serves a clone, qemu-io writes and reads a pattern,
# and a second server (after the first exited) reads what was flushed. Two
# writers at once: losers fail clearly and nothing is lost. One member
# killed: no effect. Quorum lost: a create fails within the timeout naming
# etcd, while a frozen layer already served still reads. Bad URLs,
# unreachable etcd, a prefix that is no store, a prefix taken, a symbolic
# link as meta.etcd, a store of both kinds: refused with clear errors.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/../etcd.sh"
requires qemu-io qemu-img
etcd_cluster_start
URL=etcd://$ETCD_ENDPOINTS/store1
S=$ISOCACHE_STORE
cleanup_fn chattr -R -i "$S"

"$ADMIN" init --meta "$URL" | tee "$TESTDIR/init.out"
grep -q "metadata in $URL" "$TESTDIR/init.out" || fail "init does not say where the metadata is"
[ -f "$S/meta.etcd" ] && [ ! -e "$S/meta.mdb" ] || fail "not an etcd store: $(ls -la "$S")"
[ "$(cat "$S/meta.etcd")" = "$URL" ] || fail "meta.etcd holds $(cat "$S/meta.etcd")"
[ "$(stat -c %a "$S/meta.etcd")" = 600 ] || fail "meta.etcd is not private"
"$ETCDTOOL" "etcd://$ETCD_ENDPOINTS/x" list /isocache/store1/info/ | grep -q next_disk_id ||
	fail "no info records under /isocache/store1/"

# A prefix taken, a directory with a store: refused.
expect_fail 'store exists already under this prefix' \
	"$ADMIN" --store "$TESTDIR/other" init --meta "$URL"
expect_fail 'exists here already' "$ADMIN" init --meta "etcd://$ETCD_ENDPOINTS/store2"
expect_fail 'exists here already' "$ADMIN" init

random_image "$TESTDIR/base.raw" 8
"$ADMIN" import "$TESTDIR/base.raw" base
"$ADMIN" snap base@gold
"$ADMIN" clone base@gold vm1
"$ADMIN" ls | tee "$TESTDIR/ls"
grep -q '^vm1 ' "$TESTDIR/ls" && grep -q '^base@gold ' "$TESTDIR/ls" || fail "ls misses images"
"$ADMIN" check
"$ADMIN" export vm1 "$TESTDIR/vm1.raw"
cmp "$TESTDIR/base.raw" "$TESTDIR/vm1.raw" || fail "the clone differs from its image"

# Served: write a pattern, flush, read it back; a second server after the
# first exited reads it too.
nbd_start s1 vm1
qemu-io -f raw -c "write -P 0xab 1M 1M" -c flush -c "read -P 0xab 1M 1M" "$(nbd_uri s1 vm1)" \
	>"$TESTDIR/io1"
qemu_io_done "$TESTDIR/io1" 2
nbd_stop s1
nbd_start s2 vm1
qemu-io -f raw -r -c "read -P 0xab 1M 1M" "$(nbd_uri s2 vm1)" >"$TESTDIR/io2"
qemu_io_done "$TESTDIR/io2" 1
# The rest is the golden image's.
dd if="$TESTDIR/base.raw" of="$TESTDIR/expect.raw" bs=1M count=8 status=none
qemu-io -f raw -c "write -P 0xab 1M 1M" "$TESTDIR/expect.raw" >/dev/null
qemu-img compare -f raw -F raw "$TESTDIR/expect.raw" "$(nbd_uri s2 vm1)"
nbd_stop s2
"$ADMIN" owner ls

# Two writers at once, ten times: every create that reports success is in
# the store, every failure says why, and a rerun of the losers completes the set.
pids=()
for i in $(seq 10); do
	"$ADMIN" create "a$i" --size 1M 2>"$TESTDIR/a$i.err" &
	pids+=($!)
	"$ADMIN" create "b$i" --size 1M 2>"$TESTDIR/b$i.err" &
	pids+=($!)
done
lost=0
for p in "${pids[@]}"; do wait "$p" || lost=$((lost + 1)); done
echo "$lost of 20 concurrent creates lost a race"
for f in "$TESTDIR"/[ab]*.err; do
	n=$(basename "$f" .err)
	if "$ADMIN" info "$n" >/dev/null 2>&1; then continue; fi
	# A lost race, or (on a loaded machine) an etcd call that timed out.
	grep -Eq 'what this transaction read changed|etcd 127\.0\.0\.1' "$f" ||
		fail "$n failed unclearly: $(cat "$f")"
	"$ADMIN" create "$n" --size 1M
done
made=$("$ADMIN" ls --json | python3 -c 'import json, sys
print(sum(1 for i in json.load(sys.stdin) if i["name"][0] in "ab" and i["name"][1:].isdigit()))')
[ "$made" = 20 ] ||
	fail "creates were lost: $("$ADMIN" ls)"
"$ADMIN" check

# One member killed: no effect.
etcd_member_kill 1
"$ADMIN" create one-down --size 1M
"$ADMIN" clone base@gold vm2
"$ADMIN" ls >/dev/null

# A frozen layer served before quorum goes keeps reading after it. A leaf
# served meanwhile cannot commit its map: the client's write or flush fails
# (the vdisk fences itself: owner_check, in owner/, takes a failed read of
# the ownership record for a takeover), and what was flushed before is
# intact for the next server.
nbd_start s3 base@gold
nbd_start s4 vm2
qemu-io -f raw -c "write -P 0x11 0 64k" -c flush "$(nbd_uri s4 vm2)" >"$TESTDIR/io4"
qemu_io_done "$TESTDIR/io4" 1
etcd_member_kill 2
start=$SECONDS
expect_fail 'etcd 127\.0\.0\.1:[0-9]+: .*(no answer|unavailable|refused)' \
	env ISOCACHE_ETCD_TIMEOUT_MS=2000 "$ADMIN" create no-quorum --size 1M
cat "$TESTDIR/expect_fail.err"
((SECONDS - start <= 10)) || fail "create without quorum took $((SECONDS - start)) s"
qemu-img compare -f raw -F raw "$TESTDIR/base.raw" "$(nbd_uri s3 base@gold)" ||
	fail "a frozen layer served stopped reading without quorum"
qemu-io -f raw -c "write -P 0xcd 2M 64k" -c flush "$(nbd_uri s4 vm2)" >"$TESTDIR/io5" 2>&1 || true
cat "$TESTDIR/io5"
grep -Eq '(write|flush) failed' "$TESTDIR/io5" || fail "a flush without quorum did not fail"
etcd_member_start 2
etcd_member_start 1
"$ADMIN" create quorum-back --size 1M
# s4 took its lease for lost, but etcd still holds it (the new leader
# renewed it): stopping, s4 ends its claim there, so s5 claims at once
# instead of waiting out the lease.
nbd_stop s4
nbd_start s5 vm2 2>"$TESTDIR/s5.log"
cat "$TESTDIR/s5.log"
! grep -q 'asking it to release' "$TESTDIR/s5.log" ||
	fail "the record of a server that stopped after losing its lease was left in etcd"
qemu-io -f raw -r -c "read -P 0x11 0 64k" "$(nbd_uri s5 vm2)" >"$TESTDIR/io7"
qemu_io_done "$TESTDIR/io7" 1
nbd_stop s5

# Bad URLs, unreachable etcd, a prefix that is not a store, a symlink, both kinds.
expect_fail 'not an etcd\[s\]://' "$ADMIN" --store "$TESTDIR/b1" init --meta "http://$ETCD_ENDPOINTS/x"
expect_fail 'not HOST:PORT' "$ADMIN" --store "$TESTDIR/b2" init --meta "etcd://127.0.0.1:99999/x"
expect_fail 'not HOST:PORT' "$ADMIN" --store "$TESTDIR/b3" init --meta "etcd://127.0.0.1/x"
free_port=$(_etcd_free_ports 1)
expect_fail "etcd 127\.0\.0\.1:$free_port" \
	"$ADMIN" --store "$TESTDIR/b4" init --meta "etcd://127.0.0.1:$free_port/x"
mkdir -p "$TESTDIR/b5" && echo "etcd://$ETCD_ENDPOINTS/nothing-here" >"$TESTDIR/b5/meta.etcd"
expect_fail 'no isocache store under this prefix' "$ADMIN" --store "$TESTDIR/b5" ls
mkdir -p "$TESTDIR/b6" && ln -s "$S/meta.etcd" "$TESTDIR/b6/meta.etcd"
expect_fail 'symbolic link' "$ADMIN" --store "$TESTDIR/b6" ls
mkdir -p "$TESTDIR/b7" && echo "garbage" >"$TESTDIR/b7/meta.etcd"
expect_fail 'not one etcd\[s\]://' "$ADMIN" --store "$TESTDIR/b7" ls
"$ADMIN" --store "$TESTDIR/b8" init
cp "$S/meta.etcd" "$TESTDIR/b8/"
expect_fail 'never both' "$ADMIN" --store "$TESTDIR/b8" ls

# destroy removes the directory (meta.etcd included) and every record
# under the prefix, and nothing under a neighbouring prefix (store10); the
# prefix can be made a store again.
"$ADMIN" --store "$TESTDIR/s10" init --meta "${URL}0"
"$ADMIN" --store "$TESTDIR/s10" create --size 1M other
[ "$("$ETCDTOOL" "$URL" list /isocache/store1/ | grep -c =)" -gt 0 ] || fail "no records to destroy"
chattr -R -i "$S"
"$ADMIN" destroy "$S" --force
[ ! -e "$S" ] || fail "destroy left $(ls -la "$S")"
left=$("$ETCDTOOL" "$URL" list /isocache/store1/ | grep = || true)
[ -z "$left" ] || fail "destroy left records in etcd: $left"
"$ADMIN" --store "$TESTDIR/s10" ls | grep -q '^other ' || fail "destroy took store10's records"
"$ADMIN" init --meta "$URL"
echo "etcd store: OK"
