#!/usr/bin/env bash
# Denial by policy: never always denies, when-idle denies right after a
# write; each denial names the owner and its reason, and the owner keeps
# serving. always releases at once.
source "$(dirname "$0")/owner-functions.bash"

owner_vdisk 16M vm vm2
nbd_start a --release=never vm
apid=$(cat "$TESTDIR/a.pid")
rc=0
"$ADMIN" owner release vm 2>"$TESTDIR/err" || rc=$?
cat "$TESTDIR/err"
[ "$rc" = 1 ] || fail "policy never did not deny"
grep -q "vm is owned by isocache-nbd pid $apid (open vm) since .*; it denied the release: its release policy is never" \
	"$TESTDIR/err" || fail "unclear denial"
[ "$("$ADMIN" owner show vm --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["policy"])')" = never ] ||
	fail "owner show does not report the policy"
qemu-io -f raw -c "write -P 0x12 0 64k" -c "read -P 0x12 0 64k" "$(nbd_uri a)" >/dev/null

nbd_start c --release=when-idle vm2
qemu-io -f raw -c "write -P 0x13 0 64k" "$(nbd_uri c)" >/dev/null
rc=0
"$ADMIN" owner release vm2 2>"$TESTDIR/err2" || rc=$?
[ "$rc" = 1 ] || fail "when-idle released right after a write"
grep -q "it was written .* ms ago (release policy when-idle" "$TESTDIR/err2" || fail "unclear: $(cat "$TESTDIR/err2")"
qemu-io -f raw -c "read -P 0x13 0 64k" "$(nbd_uri c)" >/dev/null
nbd_stop c
nbd_stop a

nbd_start d --release=always vm
"$ADMIN" owner release vm | grep -q 'released after' || fail "always did not release"
[ "$(owner_pid vm)" = 0 ] || fail "vm is still owned after release"
nbd_stop d
echo PASS
