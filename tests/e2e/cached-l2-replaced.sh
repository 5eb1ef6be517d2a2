#!/usr/bin/env bash
# L2 entries belong to one generation of one file: the layer uuid, device,
# inode, size, mtime and ctime. A layer file rewritten in place, or replaced
# by another file carrying the same xattr (same uuid), while the daemon is
# stopped must not be served the old file's blocks.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
source "$(dirname "$0")/cached-l2-functions.bash"
trace_on

cached_l2_filled "$TESTDIR/base" 4M
xattr=$(getfattr --only-values -n user.isocache.layer "$TESTDIR/base")

# Rewritten in place: same inode, same size, same uuid, new bytes.
ino=$(stat -c %i "$TESTDIR/base")
[ "$(id -u)" = 0 ] && chattr -i "$TESTDIR/base"
chmod 0644 "$TESTDIR/base"
head -c 4M /dev/urandom | dd of="$TESTDIR/base" conv=notrunc status=none
chmod 0444 "$TESTDIR/base"
[ "$(id -u)" = 0 ] && chattr +i "$TESTDIR/base"
[ "$(stat -c %i "$TESTDIR/base")" = "$ino" ] || fail "not rewritten in place"
cached_l2_start
cached_l2_cat "$TESTDIR/base"
[ "$(cached_stat "$TESTDIR/base" l2_hits)" = 0 ] || fail "old L2 entries served for a rewritten file"
[ "$(cached_stat "$TESTDIR/base" backing_bytes)" = $((4 << 20)) ] || fail "backing bytes (in place)"
cached_l2_stop

# Replaced by another file with the same xattr.
head -c 4M /dev/urandom >"$TESTDIR/other"
setfattr -n user.isocache.layer -v "$xattr" "$TESTDIR/other"
chmod 0444 "$TESTDIR/other"
[ "$(id -u)" = 0 ] && chattr -i "$TESTDIR/base"
mv -f "$TESTDIR/other" "$TESTDIR/base"
[ "$(id -u)" = 0 ] && chattr +i "$TESTDIR/base"
cached_l2_start
cached_l2_cat "$TESTDIR/base"
[ "$(cached_stat "$TESTDIR/base" l2_hits)" = 0 ] || fail "old L2 entries served for a replaced file"
[ "$(cached_stat "$TESTDIR/base" backing_bytes)" = $((4 << 20)) ] || fail "backing bytes (replaced)"
echo PASS
