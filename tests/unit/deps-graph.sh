#!/bin/bash
# The dependency rules of docs/ARCHITECTURE.md §3, checked on the built tree:
#   1. the project's quoted includes (#include "dir/file.h") form no cycle;
#   2. owner/ includes nothing from vdisk/, and its objects use no function
#      defined in vdisk/ (it reaches a vdisk only through struct ic_owner_ops);
#   3. within each folder given, no two files use one another in a circle.
#
# Rule 3 looks at what a file uses, not at the headers it includes: a
# folder's private header (vdisk/internal.h) declares the functions of many
# files, so the include graph alone cannot see two files calling each other.
# The objects can: an edge a.c -> b.c is a symbol a.c.o leaves undefined
# that b.c.o defines (nm), and tsort names the files of any cycle.
#
# usage: deps-graph.sh SOURCE_DIR BUILD_DIR FOLDER...
set -euo pipefail
export LC_ALL=C # one collation for sort and join

src=$1 build=$2
shift 2
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# tsort on "a b" pairs; prints the loop and returns 1 when there is one.
acyclic() {
	local what=$1 edges=$2
	if ! tsort "$edges" >/dev/null 2>"$tmp/loop"; then
		echo "FAIL: $what form a cycle:" >&2
		# tsort names each loop's files one a line after "input contains a loop:".
		awk '/input contains a loop/ { if (l) print "  " l; l = ""; next }
		     { sub(/^tsort: /, ""); l = l ? l " -> " $0 : $0 }
		     END { if (l) print "  " l }' "$tmp/loop" >&2
		return 1
	fi
}

# 1. Quoted includes of the project's sources and headers.
cd "$src"
find . \( -path './build*' -o -path './.git' \) -prune -o -name '*.[ch]' -print |
	sed 's|^\./||' | sort >"$tmp/files"
# "file:#include "x/y.h"" -> "file x/y.h" or "file include/x/y.h", whichever exists.
{ xargs grep -H '^#include "' <"$tmp/files" || true; } |
	sed 's/^\([^:]*\):#include "\([^"]*\)".*/\1 \2/' |
	awk 'NR == FNR { have[$1] = 1; next }
	     have[$2] { print $1, $2; next }
	     have["include/" $2] { print $1, "include/" $2 }' "$tmp/files" - >"$tmp/includes"
acyclic "the project's quoted includes" "$tmp/includes" || fail=1

# 2. owner/ sees nothing of vdisk/.
if awk '$1 ~ /^owner\// && $2 ~ /^vdisk\// { print "  " $1 " includes " $2; bad = 1 }
	 END { exit !bad }' "$tmp/includes" >&2; then
	echo "FAIL: owner/ includes from vdisk/ (above); use struct ic_owner_ops" >&2
	fail=1
fi

# What the files of a folder's static libraries define (def) and use (use),
# as "symbol folder/file.c" lines. The archives, not the object
# directories: those keep objects of files since moved or deleted.
archives() {
	find "$build/$1" -maxdepth 1 -name 'lib*.a' 2>/dev/null | sort
}
symbols() {
	local folder=$1 a
	: >"$tmp/$folder.def"
	: >"$tmp/$folder.use"
	for a in $(archives "$folder"); do
		# nm -A: "lib.a:member.o:ADDRESS TYPE SYMBOL", or "lib.a:member.o: U SYMBOL"
		nm -A --defined-only -g "$a" | awk -v d="$folder" '{
			split($1, p, ":"); sub(/\.o$/, "", p[2]); print $NF, d "/" p[2] }' >>"$tmp/$folder.def"
		nm -A -u "$a" | awk -v d="$folder" '{
			split($1, p, ":"); sub(/\.o$/, "", p[2]); print $NF, d "/" p[2] }' >>"$tmp/$folder.use"
	done
	sort -u -o "$tmp/$folder.def" "$tmp/$folder.def"
	sort -u -o "$tmp/$folder.use" "$tmp/$folder.use"
	if [ ! -s "$tmp/$folder.def" ]; then
		echo "FAIL: read no symbols from the libraries of $folder/" >&2
		fail=1
	fi
}

if [ -d owner ]; then
	symbols owner
	symbols vdisk
	join "$tmp/owner.use" "$tmp/vdisk.def" >"$tmp/owner-vdisk"
	if [ -s "$tmp/owner-vdisk" ]; then
		echo "FAIL: owner/ calls into vdisk/ (symbol, user, definer):" >&2
		sed 's/^/  /' "$tmp/owner-vdisk" >&2
		fail=1
	fi
fi

# 3. No cycle between the files of a folder.
for folder in "$@"; do
	if [ -z "$(archives "$folder")" ]; then
		echo "FAIL: no library of $folder/ under $build (build first)" >&2
		fail=1
		continue
	fi
	symbols "$folder"
	join "$tmp/$folder.use" "$tmp/$folder.def" | awk '$2 != $3 { print $2, $3 }' | sort -u >"$tmp/$folder.edges"
	acyclic "the files of $folder/ (by the functions they use)" "$tmp/$folder.edges" || fail=1
done
[ "$fail" = 0 ] && echo "ok: no include cycle; owner/ blind to vdisk/; no cycle in: $*"
exit $fail
