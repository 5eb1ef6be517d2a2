#!/usr/bin/env bash
# Handoff between two isocache-nbd processes while a client writes through
# the first: the second serves every flushed byte, and the first refuses
# further writes (EPERM) once it released. (b runs --release=never: with
# the default policy an unused b would hand vm back to a for a's new
# client, which owner-quiet-client.sh tests.)
source "$(dirname "$0")/owner-functions.bash"

owner_vdisk 256M vm
nbd_start a --release=always vm
apid=$(cat "$TESTDIR/a.pid")
[ "$(owner_pid vm)" = "$apid" ] || fail "a does not own vm"

touch "$TESTDIR/w.log"
owner_writer "$(nbd_uri a)" 0 2000 "$TESTDIR/w.log" &
writer=$!
cleanup_fn kill "$writer"
wait_until 60 lines_at_least 20 "$TESTDIR/w.log" || fail "the writer did not start"

# b asks a to let go (a's policy is always) and serves vm.
nbd_start b --release=never vm 2>"$TESTDIR/b.err"
bpid=$(cat "$TESTDIR/b.pid")
[ "$(owner_pid vm)" = "$bpid" ] || fail "b does not own vm after the handoff"
wait "$writer" || true
cat "$TESTDIR/w.log" | tail -3
grep -q '^error ' "$TESTDIR/w.log" || fail "a kept accepting writes after releasing"
flushed=$(grep -c '^flushed ' "$TESTDIR/w.log")
[ "$flushed" -ge 20 ] || fail "too few writes before the handoff ($flushed)"

# Every flushed block reads back through b; a refuses new writes.
owner_check_blocks "$(nbd_uri b)" 0 "$flushed"
! qemu-io -f raw -c "write -P 0x55 0 4k" "$(nbd_uri a)" >"$TESTDIR/a.err" 2>&1 || fail "a accepted a write"
# a refuses the write (EPERM), or the connection itself (at NBD_OPT_GO).
grep -qiE 'not permitted|denied by server' "$TESTDIR/a.err" || fail "a refused with: $(cat "$TESTDIR/a.err")"
qemu-io -f raw -c "write -P 0x66 0 4k" -c "read -P 0x66 0 4k" "$(nbd_uri b)" >/dev/null
nbd_stop b
nbd_stop a
echo PASS
