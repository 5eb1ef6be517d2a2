# Helpers for the tests/e2e/hosts-*.sh scripts (not a test itself): the
# owner tests' helpers (NBD writer and checker), the etcd cluster and the
# two hosts (tests/hosts.sh), and isocache-nbd run on a host.
source "$(dirname "${BASH_SOURCE[0]}")/owner-functions.bash"
source "$IC_SRC/tests/etcd.sh"
source "$IC_SRC/tests/hosts.sh"
OWNERTOOL=$IC_BUILD/tests/tools/isocache-ownertool

# now_ms: the monotonic clock in ms, as owner_writer and stamp_lines read it.
now_ms() { /usr/bin/python3 -c 'import time; print(int(time.monotonic() * 1000))'; }

# stamp_lines: copy stdin to stdout, each line prefixed with the monotonic
# ms it arrived at.
stamp_lines() {
	/usr/bin/python3 -u -c '
import sys, time
for line in sys.stdin:
    sys.stdout.write("%d %s" % (time.monotonic() * 1000, line))'
}

# host_nbd H NAME ARGS...: isocache-nbd on host H, serving on
# $TESTDIR/NAME.sock (reached from every namespace: a Unix socket is a
# file), pid in $TESTDIR/NAME.pid, its log stamped in $TESTDIR/NAME.log.
host_nbd() {
	local name=$2
	start_bg "$TESTDIR/$name.pid" _host_nbd_run "$@"
}
_host_nbd_run() {
	local h=$1 name=$2
	shift 2
	on_host "$h" "$NBD" --store "$(host_store "$h")" -t -k "$TESTDIR/$name.sock" \
		--pid-file "$TESTDIR/$name.pid" "$@" 2> >(stamp_lines >"$TESTDIR/$name.log")
}

# host_nbd_stop NAME: SIGTERM, and wait (30 s) until it is gone.
host_nbd_stop() {
	local pid
	pid=$(cat "$TESTDIR/$1.pid")
	kill -TERM "$pid"
	wait_until 30 gone "$pid" || fail "server $1 did not exit after SIGTERM"
}

# admin_on_b ARGS...: isocache-admin on host b, which (as a real other host)
# cannot reach host a's control sockets: a tmpfs hides the run directory
# in b's mount namespace, so only etcd carries a request to a.
admin_on_b() {
	on_host b sh -c 'mount -t tmpfs tmpfs "$ISOCACHE_RUN_DIR" && exec "$@"' sh \
		"$ADMIN" --store "$(host_store b)" "$@"
}

# hosts_serving ARGS...: the scene of every two-host NBD test: the hosts
# and the cluster, a store (hosts_store: local, or with HOST_STORE=etcd its
# metadata in the cluster) with the vdisk vm ($HOST_VM_SIZE, by default
# 256 MiB), and host a's isocache-nbd serving it (with ARGS).
hosts_serving() {
	hosts_start
	hosts_store
	"$ADMIN" create --size "${HOST_VM_SIZE:-256M}" vm
	host_nbd a a "$@" vm
}

# hosts_writing COUNT ARGS...: hosts_serving ARGS, and owner_writer writing
# COUNT blocks through a in the background ($writer its pid, $TESTDIR/w.log
# its log), under way: 20 blocks flushed.
hosts_writing() {
	local count=$1
	shift
	hosts_serving "$@"
	touch "$TESTDIR/w.log"
	owner_writer "$(nbd_uri a)" 0 "$count" "$TESTDIR/w.log" &
	writer=$!
	cleanup_fn kill_job "$writer"
	wait_until 60 _hosts_flushed 20 ||
		fail "the writer did not get going: $(tail -3 "$TESTDIR/w.log")"
}
# hosts_writer_stop: end hosts_writing's writer ($writer is the subshell
# that runs its python) and wait for it.
hosts_writer_stop() {
	pkill -TERM -P "$writer" || true
	wait "$writer" || true
}
_hosts_flushed() { [ "$(grep -c '^flushed ' "$TESTDIR/w.log")" -ge "$1" ]; }

# b_asks_a WHY: a claimant on host b (isocache-ownertool, waiting up to
# 120 s) asks a for vm through etcd; a must release it, and b hold it,
# within 30 s of asking. WHY is said with the time it took.
b_asks_a() {
	local asked out held
	asked=$(now_ms)
	out=$(on_host b env ISOCACHE_OWNER_ETCD="$HOST_OWNER_URL" "$OWNERTOOL" "$(host_store b)" \
		hold vm 1 2>"$TESTDIR/b.err") || fail "b did not get vm: $out $(cat "$TESTDIR/b.err")"
	held=$(awk '$1 == "held" { print $3 }' <<<"$out")
	[ -n "$held" ] || fail "b's claim printed: $out"
	echo "b held vm $((held - asked)) ms after asking, $1"
	((held - asked < 30000)) || fail "a answered b's request only after $((held - asked)) ms"
	grep -E 'released (through etcd )?to' "$TESTDIR/a.log" ||
		fail "a did not release: $(cat "$TESTDIR/a.log")"
}

# log_ms FILE PATTERN: the stamp of FILE's first line matching PATTERN.
log_ms() {
	local t
	t=$(grep -m1 -E -e "$2" "$1" | cut -d' ' -f1)
	[ -n "$t" ] || fail "$1 never said /$2/: $(cat "$1")"
	echo "$t"
}
