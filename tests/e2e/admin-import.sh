#!/usr/bin/env bash
# import refuses what would make a wrong disk: a damaged qcow2 (qemu-img
# check's findings are shown, nothing is made) and a raw file that is not
# whole 512-byte sectors; a good image imports and says what was made, as
# snap and clone do.
source "$(dirname "$0")/../functions.sh"
requires qemu-img qemu-io
cd "$TESTDIR"

$ADMIN init
qemu-img create -q -f qcow2 good.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0xab 0 8M' good.qcow2 >/dev/null

# A truncated qcow2: qemu-img check finds errors; import refuses, naming them.
head -c 600000 good.qcow2 >truncated.qcow2
if qemu-img check -q truncated.qcow2 >/dev/null 2>&1; then fail "the truncated image checks clean"; fi
expect_fail "a damaged qcow2 image: not imported" $ADMIN import truncated.qcow2 broken
grep -q "errors were found on the image" "$TESTDIR/expect_fail.err" ||
	fail "qemu-img check's findings were not shown"
[ -z "$($ADMIN ls --json | python3 -c 'import json,sys; print(*[i["name"] for i in json.load(sys.stdin)])')" ] ||
	fail "a refused import left an image"

# 1000 bytes is not whole sectors: refused, with the size to pad to.
head -c 1000 /dev/urandom >odd.raw
expect_fail "1000 bytes, not a multiple of 512.*truncate -s 1024" $ADMIN import odd.raw odd
truncate -s 1024 odd.raw
$ADMIN import odd.raw odd >made.out
grep -q "^imported odd.raw (raw) as vdisk odd: 1 KiB, 1 KiB in its own layer$" made.out || fail "import said: $(cat made.out)"

# A good qcow2 imports, and import, snap and clone say what they made.
$ADMIN import good.qcow2 golden >made.out
grep -q "^imported good.qcow2 (qcow2) as vdisk golden: 64 MiB, 8 MiB in its own layer$" made.out ||
	fail "import said: $(cat made.out)"
$ADMIN snap golden@v1 >made.out
grep -q "^made snapshot golden@v1: 64 MiB, 8 MiB in its own layer$" made.out || fail "snap said: $(cat made.out)"
$ADMIN clone golden@v1 vm1 >made.out
grep -q "^made vdisk vm1: 64 MiB, 0 B in its own layer, on top of golden@v1$" made.out ||
	fail "clone said: $(cat made.out)"
qemu-img convert -O raw good.qcow2 good.raw
$ADMIN export vm1 vm1.raw
cmp good.raw vm1.raw || fail "the imported qcow2 reads differently"
echo "admin-import: ok"
