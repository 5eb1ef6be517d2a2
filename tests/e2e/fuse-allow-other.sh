#!/usr/bin/env bash
# -o allow_other implies default_permissions: another user (nobody, via
# setpriv) cannot open root's vdisk for writing through the mount, nor
# write it, while root still can; the files' modes are enforced, and they
# are the store's: a private store's disks are not readable by others
# through the mount either.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/fuse-functions.bash"
fuse_requires setpriv python3
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to switch to another user" >&2; exit 77; }
trace_on

NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
chmod 0711 "$TESTDIR" # nobody may reach the mountpoint, nothing more
fuse_store
"$ADMIN" create vm --size 4M
mnt=$TESTDIR/mnt
fuse_mount "$mnt" -o allow_other

[ "$(stat -c '%a %U' "$mnt/vm")" = "600 root" ] || fail "vm: $(stat -c '%a %U' "$mnt/vm")"
[ "$("${NOBODY[@]}" bash -c "$(declare -f fuse_errno); fuse_errno $mnt/vm O_RDONLY")" = EACCES ] ||
	fail "nobody read root's private vdisk through the mount"
[ "$("${NOBODY[@]}" bash -c "$(declare -f fuse_errno); fuse_errno $mnt/vm O_WRONLY")" = EACCES ] ||
	fail "nobody opened root's vdisk for writing"
[ "$("${NOBODY[@]}" bash -c "$(declare -f fuse_errno); fuse_errno $mnt/vm O_RDWR")" = EACCES ] ||
	fail "nobody opened root's vdisk read-write"
rc=0
"${NOBODY[@]}" dd if=/dev/zero of="$mnt/vm" bs=4k count=1 conv=notrunc status=none \
	2>"$TESTDIR/err" || rc=$?
[ "$rc" != 0 ] && grep -q 'Permission denied' "$TESTDIR/err" || fail "nobody wrote root's vdisk"
# Root still writes, and what nobody tried did not land.
printf 'root' | dd of="$mnt/vm" conv=notrunc,fsync status=none
[ "$(head -c 4 "$mnt/vm")" = root ] || fail "root's write lost"
grep -q 'implies default_permissions' <<<"$("$FUSE" --help)" || fail "--help does not say it"
echo PASS
