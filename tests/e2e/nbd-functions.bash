# Helpers for the tests/e2e/nbd-*.sh scripts (sourced after
# tests/functions.sh; not a test itself, hence not *.sh).

[ -x "$NBD" ] || { echo "SKIP: $NBD is not built" >&2; exit 77; }
[ -x "$ADMIN" ] || { echo "SKIP: $ADMIN is not built" >&2; exit 77; }

# nbdsh runs "python3 -m nbd": use the system python, which has the
# module, even when another python3 comes first in PATH.
nbdsh() { PATH=/usr/bin:$PATH command nbdsh "$@"; }

# nbd_store [CLUSTER]: an empty store at $ISOCACHE_STORE. Frozen layers
# are made immutable when run as root: clear that before the temp dir goes.
nbd_store() {
	cleanup_fn chattr -R -i "$ISOCACHE_STORE"
	if [ -n "${1:-}" ]; then
		"$ADMIN" --store "$ISOCACHE_STORE" init --cluster-size "$1"
	else
		"$ADMIN" --store "$ISOCACHE_STORE" init
	fi
}

# nbd_start NAME ARGS...: serve on $TESTDIR/NAME.sock (persistent) and wait
# until ready; the server is killed by PID at exit.
nbd_start() {
	local name=$1
	shift
	start_bg "$TESTDIR/$name.pid" "$NBD" --store "$ISOCACHE_STORE" -t \
		-k "$TESTDIR/$name.sock" --pid-file "$TESTDIR/$name.pid" "$@"
}

# nbd_uri NAME [EXPORT]
nbd_uri() { echo "nbd+unix:///${2:-}?socket=$TESTDIR/$1.sock"; }

# nbd_stop NAME: SIGTERM, and expect exit status 0 (the server is a child
# of this shell, so wait collects its status).
nbd_stop() {
	local pid rc=0
	pid=$(cat "$TESTDIR/$1.pid")
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	[ "$rc" = 0 ] || fail "server $1 exited with $rc after SIGTERM"
	[ ! -e "$TESTDIR/$1.sock" ] || fail "server $1 left its socket behind"
}

# nbd_metric SOCK EXPORT NAME [LABELS]: the sample of NAME for EXPORT now,
# from the --metrics listener on the Unix socket SOCK (LABELS: ',op="read"').
nbd_metric() {
	curl -sf --max-time 10 --unix-socket "$1" http://localhost/metrics |
		awk -v m="$3{export=\"$2\"${4:-}}" '$1 == m { print $2 }'
}

# qemu_io_done LOG N: qemu-io's output in LOG shows N requests done in full
# ("wrote|read X/X bytes") and no failed verification. qemu-io can exit 0
# after failing to open its image; its output then shows no request at all.
qemu_io_done() {
	local done
	! grep -q 'verification failed' "$1" || fail "qemu-io read other data: $(cat "$1")"
	done=$(grep -cE '^(wrote|read) ([0-9]+)/\2 bytes' "$1" || true)
	[ "$done" = "$2" ] || fail "qemu-io did $done of $2 requests: $(cat "$1")"
}

# wait_line FILE LINE: until FILE has LINE (60 s), else fail.
wait_line() {
	wait_until 60 grep -qx "$2" "$1" 2>/dev/null && return 0
	fail "$1 never said $2: $(cat "$1" 2>/dev/null)"
}

# The libnbd clients of tests/e2e/nbd-batch-client.py; skip the test when
# the system python has no libnbd module.
nbd_need_python() {
	/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: no python3-libnbd" >&2; exit 77; }
}
nbd_client() { /usr/bin/python3 "$IC_SRC/tests/e2e/nbd-batch-client.py" "$@"; }

# nbd_random_gold MIB: a fresh store holding base@gold, a snapshot of MIB
# MiB of random data without holes, kept in $TESTDIR/base.raw.
nbd_random_gold() {
	nbd_store
	head -c "$1M" /dev/urandom >"$TESTDIR/base.raw"
	"$ADMIN" import "$TESTDIR/base.raw" base
	"$ADMIN" snap base@gold
}
