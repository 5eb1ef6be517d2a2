#!/usr/bin/env bash
# Messages name what was wrong: the option (not the command) in a bad
# option word, isocached's --memory range, and ls's columns hold for a
# 128-character name.
source "$(dirname "$0")/../functions.sh"
cd "$TESTDIR"
$ADMIN init >/dev/null

expect_fail "create: unknown option '-o'" $ADMIN create -foo --size 1M
expect_fail "create: unknown option '--bogus'" $ADMIN create x --bogus
expect_fail "create: option '--size' needs a value" $ADMIN create x --size
expect_fail "owner: unknown option '-z'" $ADMIN owner ls -z

for m in 0 1 100T; do
	expect_fail "--memory .*: out of range: at least 256 KiB and below 8 TiB" \
		"$CACHED" --foreground --socket "$TESTDIR/c.sock" --memory "$m"
done

# ls: columns as wide as their content.
long=$(printf 'n%.0s' {1..128})
$ADMIN create "$long" --size 1M >/dev/null
$ADMIN create b --size 2M >/dev/null
$ADMIN snap b@s1 >/dev/null
$ADMIN ls | tee ls.txt
# Every row has its TYPE at the same column as the header's.
/usr/bin/python3 - ls.txt <<'PY'
import sys
rows = open(sys.argv[1]).read().splitlines()
col = rows[0].index("TYPE")
for r in rows[1:]:
    assert r[col:].split()[0] in ("vdisk", "snapshot"), (col, r)
    assert r[:col].rstrip() == r.split()[0], r
print("ls columns ok at", col)
PY
echo PASS
