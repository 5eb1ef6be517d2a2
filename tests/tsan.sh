#!/usr/bin/env bash
# tests/tsan.sh TEST.sh: run an end-to-end test of a ThreadSanitizer build
# (IC_TSAN) with every process it starts reporting to a private directory,
# and fail it when any of them reported, printing the reports. Processes
# that reported also exit 66, which the test may already catch.
set -euo pipefail

logs=$(mktemp -d "${TMPDIR:-/tmp}/isocache-tsan.XXXXXX")
trap 'rm -rf "$logs"' EXIT
export TSAN_OPTIONS="log_path=$logs/tsan halt_on_error=0 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
rc=0
bash "$1" || rc=$?
for f in "$logs"/tsan.*; do
	[ -s "$f" ] || continue
	echo "FAIL: ThreadSanitizer reported, $f:" >&2
	cat "$f" >&2
	[ "$rc" = 77 ] || [ "$rc" = 0 ] && rc=1
done
exit $rc
