#!/usr/bin/env bash
# export never overwrites by accident: an existing file, or a block device,
# is written only with --force (-f); what --force writes reads back as the
# image, with no old data showing through holes or zero ranges.
source "$(dirname "$0")/../functions.sh"
requires losetup cmp
cd "$TESTDIR"

$ADMIN init
random_image img.raw 4
$ADMIN import img.raw a

# An existing text file is refused and left as it was.
echo "precious notes" >notes.txt
expect_fail "exists; give --force" $ADMIN export a notes.txt
[ "$(cat notes.txt)" = "precious notes" ] || fail "export changed notes.txt"

# With -f (and --force) it is replaced; old bytes do not show through holes.
head -c 5M /dev/urandom >old.bin
$ADMIN export -f a old.bin
cmp img.raw old.bin || fail "export -f left old data"
$ADMIN export a fresh.raw
cmp img.raw fresh.raw || fail "export to a new file differs"
$ADMIN export --force a fresh.raw
cmp img.raw fresh.raw || fail "export --force over a file differs"

# A block device is refused without --force, and written whole with it.
head -c 6M /dev/urandom >dev.bin
dev=$(losetup -f --show dev.bin)
cleanup_fn losetup -d "$dev"
before=$(md5sum <"$dev")
expect_fail "a block device exists; give --force" $ADMIN export a "$dev"
[ "$(md5sum <"$dev")" = "$before" ] || fail "export without --force wrote to $dev"
$ADMIN export --force a "$dev"
cmp -n 4194304 img.raw "$dev" || fail "export --force to $dev differs from the image"

# A device smaller than the image is refused, naming both sizes.
head -c 1M /dev/zero >small.bin
small=$(losetup -f --show small.bin)
cleanup_fn losetup -d "$small"
expect_fail "the device holds 1048576 bytes, the image 4194304" $ADMIN export -f a "$small"
echo "admin-export: ok"
