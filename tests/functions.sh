# Sourced by every tests/e2e/*.sh: strict mode, a private temp dir, cleanup
# hooks, "requires" to skip (exit 77) when a client is missing, and the
# paths of the built binaries. Environment from ctest: IC_BUILD, IC_SRC.
set -euo pipefail

IC_SRC=${IC_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
IC_BUILD=${IC_BUILD:-$IC_SRC/build}
ADMIN=$IC_BUILD/admin/isocache-admin
NBD=$IC_BUILD/nbd/isocache-nbd
FUSE=$IC_BUILD/fuse/isocache-fuse
CACHED=$IC_BUILD/cached/isocached

TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/isocache-test.XXXXXX")
export ISOCACHE_STORE=$TESTDIR/store
export ISOCACHE_SOCKET=$TESTDIR/cached.sock # never the host's daemon
export ISOCACHE_RUN_DIR=$TESTDIR/run        # control sockets
export ISOCACHE_TRACE_DIR=$TESTDIR/traces  # isocached's boot traces, never the host's
# A command a test runs in a mount namespace of its own starts with
# $NS_DROP_MOUNTS (see that script for why); it checks against this.
NS_DROP_MOUNTS=$IC_SRC/tests/ns-drop-mounts
IC_TEST_MNTNS=$(readlink /proc/self/ns/mnt)
export IC_TEST_MNTNS

# IC_VALGRIND=1: every isocache binary the test starts runs under valgrind
# memcheck (through a wrapper, so "$NBD" stays one word); a report of any
# process, definite leaks at exit included, fails the test at exit.
if [ -n "${IC_VALGRIND:-}" ]; then
	mkdir -p "$TESTDIR/vg-bin"
	for _v in ADMIN NBD FUSE CACHED; do
		_w=$TESTDIR/vg-bin/$(basename "${!_v}")
		printf '#!/bin/sh\nexec valgrind -q --leak-check=full --errors-for-leak-kinds=definite --show-possibly-lost=no --log-file=%s/valgrind.%%p.log %s "$@"\n' \
			"$TESTDIR" "${!_v}" >"$_w"
		chmod +x "$_w"
		printf -v "$_v" '%s' "$_w"
	done
fi

# _ic_valgrind_reports: print every non-empty valgrind log; false if any.
_ic_valgrind_reports() {
	local f bad=0
	for f in "$TESTDIR"/valgrind.*.log; do
		[ -s "$f" ] || continue
		echo "FAIL: valgrind reported, $f:" >&2
		cat "$f" >&2
		bad=1
	done
	return $bad
}

_ic_cleanups=()
# cleanup_fn CMD ARGS...: run at exit, last registered first.
cleanup_fn() { _ic_cleanups+=("$(printf '%q ' "$@")"); }
_ic_exit() {
	local rc=$? i
	{ set +x; } 2>/dev/null
	if ((rc != 0 && rc != 77)) && [ -s "$TESTDIR/xtrace" ]; then
		echo "the last 40 lines of the test's trace:" >&2
		tail -n 40 "$TESTDIR/xtrace" >&2
	fi
	for ((i = ${#_ic_cleanups[@]} - 1; i >= 0; i--)); do eval "${_ic_cleanups[i]}" || true; done
	if [ -n "${IC_VALGRIND:-}" ] && ! _ic_valgrind_reports; then
		rc=1
	fi
	chattr -R -i "$TESTDIR" 2>/dev/null || true # frozen layers are immutable when root
	rm -rf "$TESTDIR"
	exit $rc
}
trap _ic_exit EXIT

# trace_on: bash's xtrace, into $TESTDIR/xtrace rather than the test's
# output, of which a CI report shows the head: the failure, at the end,
# must stay in sight. A failed test prints the trace's last lines at exit.
trace_on() {
	exec {_ic_xtrace_fd}>>"$TESTDIR/xtrace"
	BASH_XTRACEFD=$_ic_xtrace_fd
	set -x
}

# requires CMD...: skip the test (exit 77) loudly when a client is missing.
requires() {
	local c
	for c in "$@"; do
		if ! command -v "$c" >/dev/null 2>&1; then
			echo "SKIP: $c is not installed (scripts/test installs it)" >&2
			exit 77
		fi
	done
}

# start_bg PIDFILE CMD...: start a server that writes PIDFILE when ready,
# wait up to 30 s for it, and register a kill by PID at exit.
start_bg() {
	local pidfile=$1
	shift
	"$@" &
	local launcher=$!
	if ! wait_until 30 _ic_ready "$pidfile" "$launcher"; then
		echo "FAIL: $pidfile did not appear within 30 s" >&2
		return 1
	fi
	if [ ! -s "$pidfile" ]; then
		wait "$launcher" || true
		echo "FAIL: $pidfile: the server exited before it was ready" >&2
		return 1
	fi
	cleanup_fn _ic_kill_pidfile "$pidfile"
}
# _ic_ready PIDFILE PID: PIDFILE is written, or PID (its launcher) has
# exited (start_bg then tells the two apart).
_ic_ready() { [ -s "$1" ] || gone "$2"; }
_ic_kill_pidfile() {
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || return 0
	wait_until 5 gone "$pid" && return 0
	echo "WARN: pid $pid ($1) ignored SIGTERM for 5 s; its threads:" >&2
	stacks "$pid"
	kill -9 "$pid" 2>/dev/null || true
}

# gdb_at FUNCTION SCRIPT CMD...: run CMD under gdb, its output in
# $TESTDIR/gdb.out and its stderr in $TESTDIR/gdb.err; when it first
# reaches FUNCTION, run the shell script SCRIPT there (a rival process to
# start at that point of CMD), then let CMD go on. Returns CMD's status.
# Non-stop mode: only the thread at the breakpoint waits, so CMD's other
# threads (a lease keeper) go on; with GDB_ALL_STOP=1 every thread waits,
# as in a process frozen whole. LeakSanitizer cannot run under gdb's
# ptrace: CMD runs without it in the sanitizer build.
gdb_at() {
	local fn=$1 script=$2 rc=0 nonstop=on
	shift 2
	[ "${GDB_ALL_STOP:-}" != 1 ] || nonstop=off
	cat >"$TESTDIR/gdb.cmd" <<-EOF
		set non-stop $nonstop
		set breakpoint pending on
		set confirm off
		set environment ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
		tbreak $fn
		commands
		shell $script
		continue
		end
		run
		quit \$_exitcode
	EOF
	gdb -q -nx -batch -x "$TESTDIR/gdb.cmd" --args "$@" >"$TESTDIR/gdb.out" \
		2>"$TESTDIR/gdb.err" || rc=$?
	return $rc
}

# stacks PID: print every thread's stack of PID to stderr (gdb's, else the
# kernel's wait channels), so that a process that hangs in a test says
# where.
stacks() {
	local pid=$1 t
	kill -0 "$pid" 2>/dev/null || return 0
	echo "--- threads of pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" >&2
	if command -v gdb >/dev/null; then
		timeout 60 gdb -p "$pid" -batch -nx -ex 'set pagination off' \
			-ex 'thread apply all bt' 2>&1 | grep -E '^(Thread|#)' >&2 && return 0
	fi
	for t in /proc/"$pid"/task/*; do
		echo "task ${t##*/}: $(cat "$t/comm" 2>/dev/null) in $(cat "$t/wchan" 2>/dev/null)" >&2
	done
}

# random_image FILE MIB: a raw image of random data with holes (every
# third MiB left unwritten).
random_image() {
	local file=$1 mib=$2 i
	truncate -s "${mib}M" "$file"
	for ((i = 0; i < mib; i++)); do
		((i % 3 == 1)) && continue
		head -c 1M /dev/urandom | dd of="$file" bs=1M seek=$i conv=notrunc status=none
	done
}

# wait_until SECONDS CMD...: run CMD until it succeeds; false if it has not
# within SECONDS. Tests wait on the event they need, with this deadline,
# never on a fixed sleep.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.05
	done
}

# lines_at_least N FILE: has FILE N lines or more (for wait_until)?
lines_at_least() { [ "$(wc -l <"$2")" -ge "$1" ]; }

# gone PID: has process PID exited (for wait_until)?
gone() { ! kill -0 "$1" 2>/dev/null; }

# kill_job PID: SIGTERM PID while it is a running background job of this
# shell, else nothing; for cleanup_fn, since the PID of a job that ended
# may be another process's by the time the test exits (pid_max is 32768
# on the test machines and wraps within minutes).
kill_job() { if jobs -rp | grep -qx "$1"; then kill "$1" 2>/dev/null || true; fi; }

# fail MESSAGE: print and exit 1.
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_fail PATTERN CMD...: CMD fails, and its stderr matches PATTERN.
expect_fail() {
	local pattern=$1
	shift
	if "$@" 2>"$TESTDIR/expect_fail.err"; then fail "succeeded: $*"; fi
	grep -qE -e "$pattern" "$TESTDIR/expect_fail.err" ||
		fail "unclear error for '$*': $(cat "$TESTDIR/expect_fail.err")"
	echo "ok: $* -> $(head -1 "$TESTDIR/expect_fail.err")"
}
