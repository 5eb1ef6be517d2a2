#!/usr/bin/env bash
# Bash completion for isocache-admin, as cmake --install puts it: driven
# through its completion function in a bash, it offers the commands, a
# command's verbs and options, and the image names of the store that
# --store (or $ISOCACHE_STORE) names.
source "$(dirname "$0")/../functions.sh"
trace_on

prefix=$TESTDIR/prefix
cmake --install "$IC_BUILD" --prefix "$prefix" >/dev/null
completion=$prefix/share/bash-completion/completions/isocache-admin
[ -s "$completion" ] || fail "the completion is not installed"

"$ADMIN" init
"$ADMIN" create vm1 --size 1M
"$ADMIN" snap vm1@gold
"$ADMIN" clone vm1@gold vm2
other=$TESTDIR/other
"$ADMIN" --store "$other" init
"$ADMIN" --store "$other" create elsewhere --size 1M

# complete WORD...: what the completion offers for the last (maybe empty)
# word, sorted, one line.
complete_words() {
	PATH=$prefix/bin:$PATH bash --norc -c '
		source "$0"
		complete -p isocache-admin >/dev/null || exit 3
		COMP_WORDS=(isocache-admin "$@")
		COMP_CWORD=$#
		_isocache_admin
		printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' "$completion" "$@"
}
expect() {
	local want=$1 got
	shift
	got=$(complete_words "$@")
	[ "$got" = "$want" ] || fail "completing [isocache-admin $*]: expected \"$want\", got \"$got\""
}

# Commands: all of them from nothing, one from a prefix.
got=$(complete_words "")
for c in init create import export snap clone ls info tree rm resize flatten check owner stats filter cache; do
	[[ " $got" == *" $c "* ]] || fail "command $c is not offered: $got"
done
expect "filter flatten " f
# Names from the store: vdisks and snapshots.
expect "vm1 vm1@gold vm2 " info ""
expect "vm1 vm1@gold " info vm1
# A command's verbs, with the names.
expect "add ls rm vm1 vm1@gold vm2 " filter ""
expect "drop stats trace vm1 vm1@gold vm2 warm " cache ""
# Options: the global ones, and a command's.
expect "--json " ls --js
# -p/--progress where long work takes it (their --help names it), not elsewhere.
for c in import export flatten rm resize; do
	expect "--progress " $c --pro
	expect "-p " $c -p
done
expect "--progress " cache warm base@gold --pro
expect " " ls --pro
expect "--store " --st
# --store DIR selects the store the names come from.
expect "elsewhere " --store "$other" info ""
