#!/usr/bin/env bash
# Each command takes only the options that do something there: any other
# (--force, --watch, --json, --timeout, --socket, --size, --position) is
# refused, naming the option and the command, before anything is done.
# The test tool isocache-cachectl answers --help with exit status 0.
source "$(dirname "$0")/../functions.sh"
cd "$TESTDIR"

$ADMIN init
$ADMIN create a --size 1M
$ADMIN snap a@s

# Options a whole command never takes.
expect_fail "^isocache-admin: ls: --force does not apply to ls" $ADMIN ls --force
expect_fail "^isocache-admin: ls: --force does not apply to ls" $ADMIN ls -f
expect_fail "--watch does not apply to info" $ADMIN info a --watch
expect_fail "--json does not apply to tree" $ADMIN tree --json
expect_fail "--json does not apply to check" $ADMIN check --json
expect_fail "--timeout does not apply to rm" $ADMIN rm a --timeout 1
expect_fail "--socket does not apply to create" $ADMIN create b --size 1M --socket /x
expect_fail "--cluster-size does not apply to clone" $ADMIN clone a@s b --cluster-size 1M
expect_fail "--position does not apply to owner" $ADMIN owner show a --position top
expect_fail "--force does not apply to stats" $ADMIN stats --force
expect_fail "--timeout does not apply to filter" $ADMIN filter ls a --timeout 2
expect_fail "--socket does not apply to cache" $ADMIN cache stats --socket /x

# Options one action of a command takes and another does not.
expect_fail "--timeout does not apply to owner show" $ADMIN owner show a --timeout 1
expect_fail "--force does not apply to owner ls" $ADMIN owner ls --force
expect_fail "--json does not apply to owner release" $ADMIN owner release a --json
expect_fail "--json does not apply to owner takeover" $ADMIN owner takeover a --force --json
expect_fail "--watch does not apply to stats NAME" $ADMIN stats a --watch
expect_fail "--watch does not apply to stats --socket" $ADMIN stats --socket /x --watch
expect_fail "--position does not apply to filter ls" $ADMIN filter ls a --position 1
expect_fail "--watch does not apply to cache warm" $ADMIN cache warm a@s --watch
expect_fail "--watch does not apply to cache drop" $ADMIN cache drop --watch
expect_fail "--force does not apply to snap NAME@SNAP" $ADMIN snap a@t --force

# Nothing refused above changed the store: no b, no a@t, a still there.
[ "$($ADMIN ls --json | /usr/bin/python3 -c 'import json,sys; print(sorted(i["name"] for i in json.load(sys.stdin)))')" = "['a', 'a@s']" ] ||
	fail "a refused command changed the store: $($ADMIN ls)"

# The options each takes still work where they apply.
$ADMIN owner show a --json | /usr/bin/python3 -c 'import json,sys; assert json.load(sys.stdin)["owned"] is False'
$ADMIN owner ls --json | /usr/bin/python3 -c 'import json,sys; assert json.load(sys.stdin)[0]["name"] == "a"'
$ADMIN owner release a --timeout 1 | grep -q "released" || fail "owner release --timeout"
$ADMIN resize a --size 2M --force
$ADMIN info a --json | /usr/bin/python3 -c 'import json,sys; assert json.load(sys.stdin)["size"] == 2 << 20'
$ADMIN snap rollback a@s --force

# The test tool's --help is help, not a usage error.
"$IC_BUILD/tests/tools/isocache-cachectl" --help >help.txt || fail "isocache-cachectl --help exited $?"
grep -q "^Usage: isocache-cachectl" help.txt || fail "isocache-cachectl --help: $(cat help.txt)"
