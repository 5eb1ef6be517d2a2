#!/usr/bin/env bash
# Sessions that send garbage, huge or malformed messages, or register bad
# fds (a directory, a writable fd, a file that is no layer, a pipe) are
# refused or ended, while another session keeps reading correct data.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/cached-functions.bash"
trace_on
requires setfattr


cached_layer "$TESTDIR/base" 8M
cached_start --memory 4M --log-level warn

# A well-behaved reader, reading through a cache too small to hold the
# layer, all the time the abuse goes on.
(
	for i in $(seq 20); do
		"$CTL" cat "$TESTDIR/base" 2>/dev/null | cmp - "$TESTDIR/base" || exit 1
	done
) &
reader=$!
cleanup_fn kill "$reader"

for kind in garbage huge badlen nohello twohello extrafd unsealed; do
	"$CTL" abuse "$kind" || fail "abuse $kind: the session was not ended or refused"
done

mkdir "$TESTDIR/dir"
echo "not a layer" >"$TESTDIR/plain" && chmod 0444 "$TESTDIR/plain"
cp "$TESTDIR/base" "$TESTDIR/writable" && chmod 0644 "$TESTDIR/writable"
expect_refused() {
	local want=$1 out
	shift
	if out=$("$@" 2>&1); then fail "registered: $*"; fi
	[[ $out == *"$want"* ]] || fail "$*: expected '$want', got '$out'"
}
expect_refused "Bad file descriptor" "$CTL" register "$TESTDIR/dir"
expect_refused "Bad file descriptor" "$CTL" register-fd 0 < <(echo pipe)
cached_layer "$TESTDIR/thawed" 64K
chattr -i "$TESTDIR/thawed" 2>/dev/null || true
expect_refused "Permission denied" "$CTL" register-fd 3 3<>"$TESTDIR/thawed"
if [ "$(id -u)" = 0 ]; then # root's layers must be immutable too
	expect_refused "Operation not permitted" "$CTL" register "$TESTDIR/thawed"
fi
expect_refused "No data available" "$CTL" register "$TESTDIR/plain"
expect_refused "Operation not permitted" "$CTL" register "$TESTDIR/writable"
expect_refused "Connection reset" "$CTL" read-handle 0 0 1

wait "$reader" || fail "the good session read wrong data or failed"
kill -0 "$(cat "$TESTDIR/cached.pid")" || fail "isocached died"
"$CTL" cat "$TESTDIR/base" | cmp - "$TESTDIR/base"
echo PASS
