#!/usr/bin/env bash
# An idle VM keeps its disk (issue 12, item 6): a client connected to
# isocache-nbd and quiet for longer than the old when-idle window (5 s)
# still uses the vdisk. rm, resize, flatten and a FUSE write-open are
# refused, naming the owner; with --force, resize and rm go ahead and the
# client gets a clear error; the server claims the vdisk back for its next
# client once it is free, instead of refusing until restarted.
source "$(dirname "$0")/owner-functions.bash"
source "$(dirname "$0")/fuse-functions.bash"
fuse_requires python3

owner_vdisk 64M vm1
nbd_start a vm1
apid=$(cat "$TESTDIR/a.pid")
owner_client c "$(nbd_uri a)"
[ "$(owner_client_do c 0x11)" = ok ] || fail "first write failed"
# The condition under test, not a wait for an event: the client stays
# quiet past the old when-idle window.
sleep 6

for cmd in "rm vm1" "resize vm1 --size 128M" "flatten vm1"; do
	rc=0
	# shellcheck disable=SC2086
	"$ADMIN" $cmd 2>"$TESTDIR/err" || rc=$?
	cat "$TESTDIR/err"
	[ "$rc" = 1 ] || fail "$cmd took vm1 from a server with a connected client"
	grep -q "vm1 is in use: owned by isocache-nbd pid $apid (open vm1) since .*; use --force" \
		"$TESTDIR/err" || fail "$cmd: the refusal does not name the owner"
done
fuse_mount "$TESTDIR/mnt"
[ "$(fuse_errno "$TESTDIR/mnt/vm1" O_RDWR)" = EBUSY ] || fail "a FUSE write-open took vm1"
grep -q "vm1 is owned by isocache-nbd pid $apid (open vm1) since .*; it denied the release: 1 client is using it" \
	"$TESTDIR/fuse.log" || fail "the FUSE refusal does not name the owner: $(cat "$TESTDIR/fuse.log")"
[ "$(fuse_errno "$TESTDIR/mnt/vm1" O_RDONLY)" = OK ] || fail "reading through FUSE was refused"
fuse_umount "$TESTDIR/mnt"
[ "$(owner_client_do c 0x12)" = ok ] || fail "the client lost its disk to a refused command"

# --force: resize takes vm1; the client's next write fails clearly.
"$ADMIN" resize vm1 --size 128M --force
said=$(owner_client_do c 0x13)
echo "after resize --force: $said"
case $said in
error*EPERM* | error*ENOTCONN*) ;;
*) fail "the client did not get a clear error after resize --force: $said" ;;
esac
owner_client_end c

# vm1 is free: the server claims it again for its next client.
qemu-io -f raw -c "write -P 0x14 0 4k" -c "read -P 0x14 0 4k" "$(nbd_uri a)" >/dev/null ||
	fail "the server did not serve vm1 again"
[ "$(owner_pid vm1)" = "$apid" ] || fail "the server did not claim vm1 again"

# rm --force under a connected client: gone, and the client is told.
owner_client c2 "$(nbd_uri a)"
[ "$(owner_client_do c2 0x15)" = ok ] || fail "write before rm --force failed"
"$ADMIN" rm vm1 --force
said=$(owner_client_do c2 0x16)
echo "after rm --force: $said"
case $said in error*) ;; *) fail "the client wrote to a removed vdisk: $said" ;; esac
owner_client_end c2
! "$ADMIN" info vm1 2>/dev/null || fail "vm1 survived rm --force"
nbd_stop a
echo PASS
