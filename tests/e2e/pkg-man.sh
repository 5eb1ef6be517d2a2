#!/usr/bin/env bash
# The man pages: every page cmake --install puts under share/man, one per
# binary plus isocache-filter(3), is clean under mandoc's lint at the
# "error" level and under groff's warnings (man --warnings), and renders
# with its NAME and every option of the binary's --help.
#
# Not mandoc's "warning" level: scdoc starts every section with a .PP that
# mandoc reports as "skipping paragraph macro", a style remark with no
# effect on the output.
source "$(dirname "$0")/../functions.sh"
requires mandoc man
trace_on

prefix=$TESTDIR/prefix
cmake --install "$IC_BUILD" --prefix "$prefix" >/dev/null
for page in man8/isocache-admin.8 man8/isocache-nbd.8 man8/isocache-fuse.8 man8/isocached.8 \
	man3/isocache-filter.3; do
	f=$prefix/share/man/$page
	[ -s "$f" ] || fail "$page is not installed"
	mandoc -Tlint -W error "$f" || fail "mandoc finds errors in $page"
	warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$f" 2>&1 >"$TESTDIR/out")
	[ -z "$warnings" ] || fail "groff warns about $page: $warnings"
	name=$(basename "$page" | sed 's/\.[0-9]$//')
	grep -q "^NAME" "$TESTDIR/out" && grep -q "$name - " "$TESTDIR/out" ||
		fail "$page has no NAME line for $name"
done

# Each binary's long options are all in its page. With ARGS (an
# isocache-admin command), those of that command's usage line.
check_options() {
	local bin=$1 page=$2 lines=1000 opt
	shift 2
	[ $# = 0 ] || lines=1
	if [ "$page" != "${rendered:-}" ]; then
		MANWIDTH=200 man -l "$prefix/share/man/$page" >"$TESTDIR/text" 2>/dev/null
		rendered=$page
	fi
	for opt in $("$bin" "$@" --help | head -n $lines | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u); do
		grep -q -- "$opt" "$TESTDIR/text" || fail "$page does not document $opt of $(basename "$bin") $*"
	done
}
check_options "$prefix/bin/isocache-nbd" man8/isocache-nbd.8
check_options "$prefix/sbin/isocached" man8/isocached.8
[ ! -x "$prefix/bin/isocache-fuse" ] || check_options "$prefix/bin/isocache-fuse" man8/isocache-fuse.8
check_options "$prefix/bin/isocache-admin" man8/isocache-admin.8
# And isocache-admin's commands, each with its options.
for c in $("$prefix/bin/isocache-admin" --help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }'); do
	check_options "$prefix/bin/isocache-admin" man8/isocache-admin.8 "$c"
	grep -qE "^ +$c( |$)" "$TESTDIR/text" || fail "isocache-admin(8) does not document the command $c"
done
