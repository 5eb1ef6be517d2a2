#!/usr/bin/env bash
# A dead owner (kill -9) is detected at once: the next server claims the
# vdisk without waiting for any timeout and says it reclaimed it.
source "$(dirname "$0")/owner-functions.bash"

owner_vdisk 16M vm
nbd_start a --release=never vm
qemu-io -f raw -c "write -P 0x3c 0 1M" -c flush "$(nbd_uri a)" >/dev/null
apid=$(cat "$TESTDIR/a.pid")
kill -9 "$apid"
wait "$apid" 2>/dev/null || true
[ "$("$ADMIN" owner show vm --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["alive"])')" = False ] ||
	fail "a dead owner shows as alive"

t0=$(date +%s%N)
nbd_start b vm 2>"$TESTDIR/b.err"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
cat "$TESTDIR/b.err"
grep -q "previous owner .*pid $apid.* is gone (its lock was free); reclaiming" "$TESTDIR/b.err" || fail "no reclaim logged"
[ "$ms" -lt 3000 ] || fail "reclaiming took $ms ms"
[ "$(owner_pid vm)" = "$(cat "$TESTDIR/b.pid")" ] || fail "b does not own vm"
qemu-io -f raw -c "read -P 0x3c 0 1M" "$(nbd_uri b)" >/dev/null
nbd_stop b
echo PASS
