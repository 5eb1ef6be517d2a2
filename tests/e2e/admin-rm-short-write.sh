#!/usr/bin/env bash
# rm of a snapshot whose merge cannot write all it copies: a file size
# limit (ulimit -f, 1.5 MiB) cuts the merge's second 1 MiB write short, as
# a filesystem that fills mid-write does. rm must fail saying why, vm must
# read as before, and check must find nothing the merge left in vm's file.
# The old code took the short write for a failure with whatever errno held
# (or none): rm failed without a word, its copy left behind.
source "$(dirname "$0")/../functions.sh"
cd "$TESTDIR"
$ADMIN init >/dev/null
head -c 2M /dev/urandom >d.raw
truncate -s 8M d.raw
$ADMIN import d.raw vm
$ADMIN snap vm@s
rc=0
(ulimit -f 1536 && exec $ADMIN rm vm@s) 2>rm.err || rc=$?
cat rm.err
((rc != 0)) || fail "rm went on after a short write"
grep -q "vm: cannot copy vm@s's data into it: No space left on device" rm.err ||
	fail "rm does not say why it failed"
$ADMIN export vm out.raw
cmp d.raw out.raw || fail "vm changed"
$ADMIN check 2>&1 | tee check.out
! grep -Eq '^(problem|unreferenced)' check.out || fail "the failed merge left data behind"
echo PASS
