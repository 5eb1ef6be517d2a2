# A 3-member etcd cluster on loopback for the end-to-end tests, sourced
# after tests/functions.sh (whose TESTDIR, cleanup_fn and wait_until it
# uses). Ports are free ones chosen at run time; each member has its own
# data directory under $TESTDIR; everything started is killed by PID at
# exit.
#
#   etcd_cluster_start          start m1..m3, wait (30 s) until all are healthy
#   et ARGS...                  isocache-etcdtool -t $ETCD_TIMEOUT_MS $ETCD_URL ARGS...
#   etcd_store_init             init $ISOCACHE_STORE with its metadata in the
#                               cluster (prefix "store")
#   ETCDTOOL                    the tool's path (tests/tools/etcdtool.c)
#   ETCD_ENDPOINTS              "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"
#   ETCD_URL                    etcd://$ETCD_ENDPOINTS/test
#   etcd_member_endpoint I      "127.0.0.1:PI"
#   etcd_member_kill I [SIG]    kill member I (default KILL), wait until it is gone
#   etcd_member_start I         start member I again (its data kept), wait until healthy
#   etcd_member_freeze I        SIGSTOP member I, moving etcd's leadership off it
#                               first; etcd_member_thaw I: SIGCONT
#   etcd_lead_move I [J]        member I, leading, hands leadership to J (a follower)
#   etcd_leader                 the number I of the member leading now
#   etcd_follower [NOT]         the number of a running member that does not
#                               lead (nor is member NOT)
#   etcd_healthy ENDPOINTS      are these members healthy (for wait_until)?
#   ETCD_LISTEN_EXTRA           addresses (space-separated) members also serve
#                               clients on, besides 127.0.0.1, at the same
#                               ports (tests/hosts.sh: the root side of each
#                               host's veth pair); set before etcd_cluster_start
#   ETCD_TLS=1                  (set after sourcing this file, before
#                               etcd_cluster_start) members serve
#                               clients over TLS only and ask for a client
#                               certificate (--client-cert-auth), from a PKI
#                               in $ETCD_PKI (tests/pki.sh); ETCD_URL is then
#                               etcds://..., and ISOCACHE_ETCD_CA, _CERT and
#                               _KEY are exported for every isocache client
#
# Timings are shortened for tests (heartbeat 50 ms, election 500 ms), so a
# lost leader is replaced in about a second.

ETCD_MEMBERS=3
ETCDTOOL=$IC_BUILD/tests/tools/isocache-etcdtool
ETCD_TIMEOUT_MS=${ETCD_TIMEOUT_MS:-3000}
ETCD_PIDS=()
ETCD_IDS=()
ETCD_CLIENT_PORTS=()
ETCD_PEER_PORTS=()
ETCD_INITIAL_CLUSTER=
ETCD_LISTEN_EXTRA=${ETCD_LISTEN_EXTRA:-}
ETCD_TLS= # not from the environment: only etcd-tls.sh speaks TLS to its members
ETCD_PKI=$TESTDIR/etcd/pki
source "$(dirname "${BASH_SOURCE[0]}")/pki.sh"

# _etcd_free_ports N: N distinct TCP ports free on 127.0.0.1 now (the
# kernel's choice; held together while chosen, so they differ).
_etcd_free_ports() {
	python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
}

etcd_member_endpoint() { echo "127.0.0.1:${ETCD_CLIENT_PORTS[$1 - 1]}"; }

# _etcdctl ENDPOINTS ARGS...: etcdctl (v3, short timeouts) at ENDPOINTS,
# with the client certificate when the members want TLS.
_etcdctl() {
	local eps=$1 tls=()
	shift
	[ -z "$ETCD_TLS" ] || tls=(--cacert "$ETCD_PKI/ca-cert.pem" --cert "$ETCD_PKI/client-cert.pem"
		--key "$ETCD_PKI/client-key.pem")
	ETCDCTL_API=3 etcdctl --endpoints="$eps" "${tls[@]}" --dial-timeout=1s --command-timeout=2s "$@"
}

etcd_healthy() { _etcdctl "$1" endpoint health >/dev/null 2>&1; }

# _etcd_call I PATH JSON: POST JSON to member I's gateway at /v3/PATH (2 s
# at most); its answer on stdout. curl, not etcdctl: the leadership moves
# of the tests call this often, under load, where each etcdctl (and python3
# to read its JSON) took most of a second to start.
_etcd_call() {
	local scheme=http tls=()
	[ -z "$ETCD_TLS" ] || { scheme=https; tls=(--cacert "$ETCD_PKI/ca-cert.pem"
		--cert "$ETCD_PKI/client-cert.pem" --key "$ETCD_PKI/client-key.pem"); }
	curl -sf --max-time 2 "${tls[@]}" -X POST -d "$3" \
		"$scheme://$(etcd_member_endpoint "$1")/v3/$2"
}

# _etcd_launch I STATE: start member I in the background (initial cluster
# state new or existing), its log in $TESTDIR/etcd/mI.log.
_etcd_launch() {
	local i=$1 state=$2 name=m$1
	local client=${ETCD_CLIENT_PORTS[i - 1]} peer=${ETCD_PEER_PORTS[i - 1]} listen addr
	local scheme=http tls=()
	if [ -n "$ETCD_TLS" ]; then
		scheme=https
		tls=(--cert-file "$ETCD_PKI/server-cert.pem" --key-file "$ETCD_PKI/server-key.pem"
			--trusted-ca-file "$ETCD_PKI/ca-cert.pem" --client-cert-auth)
	fi
	listen=$scheme://127.0.0.1:$client
	for addr in $ETCD_LISTEN_EXTRA; do listen+=",$scheme://$addr:$client"; done
	etcd --name "$name" --data-dir "$TESTDIR/etcd/$name" "${tls[@]}" \
		--listen-client-urls "$listen" \
		--advertise-client-urls "$scheme://127.0.0.1:$client" \
		--listen-peer-urls "http://127.0.0.1:$peer" \
		--initial-advertise-peer-urls "http://127.0.0.1:$peer" \
		--initial-cluster "$ETCD_INITIAL_CLUSTER" --initial-cluster-state "$state" \
		--initial-cluster-token "isocache-test-$$" \
		--heartbeat-interval 50 --election-timeout 500 \
		>>"$TESTDIR/etcd/$name.log" 2>&1 &
	ETCD_PIDS[i - 1]=$!
}

_etcd_stop_all() {
	local pid
	for pid in "${ETCD_PIDS[@]}"; do
		[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
	done
	for pid in "${ETCD_PIDS[@]}"; do
		[ -n "$pid" ] && wait_until 10 gone "$pid" || true
	done
}

et() { "$ETCDTOOL" -t "$ETCD_TIMEOUT_MS" "$ETCD_URL" "$@"; }

# etcd_store_init: make $ISOCACHE_STORE a store whose metadata is in the
# cluster, under the prefix "store"; the immutable flags of its frozen
# layer files are lifted at exit, so the test directory can go.
etcd_store_init() {
	cleanup_fn chattr -R -i "$ISOCACHE_STORE"
	"$ADMIN" init --meta "etcd://$ETCD_ENDPOINTS/store"
}

etcd_cluster_start() {
	requires etcd etcdctl python3 curl
	[ -x "$ETCDTOOL" ] || fail "$ETCDTOOL is not built"
	local ports i
	mkdir -p "$TESTDIR/etcd"
	read -ra ports <<<"$(_etcd_free_ports $((2 * ETCD_MEMBERS)))"
	ETCD_INITIAL_CLUSTER=
	ETCD_ENDPOINTS=
	for ((i = 1; i <= ETCD_MEMBERS; i++)); do
		ETCD_CLIENT_PORTS[i - 1]=${ports[2 * i - 2]}
		ETCD_PEER_PORTS[i - 1]=${ports[2 * i - 1]}
		ETCD_INITIAL_CLUSTER+="${ETCD_INITIAL_CLUSTER:+,}m$i=http://127.0.0.1:${ETCD_PEER_PORTS[i - 1]}"
		ETCD_ENDPOINTS+="${ETCD_ENDPOINTS:+,}127.0.0.1:${ETCD_CLIENT_PORTS[i - 1]}"
	done
	ETCD_URL="etcd://$ETCD_ENDPOINTS/test"
	if [ -n "$ETCD_TLS" ]; then
		pki_make "$ETCD_PKI" $ETCD_LISTEN_EXTRA
		ETCD_URL="etcds://$ETCD_ENDPOINTS/test"
		export ISOCACHE_ETCD_CA=$ETCD_PKI/ca-cert.pem ISOCACHE_ETCD_CERT=$ETCD_PKI/client-cert.pem
		export ISOCACHE_ETCD_KEY=$ETCD_PKI/client-key.pem
	fi
	cleanup_fn _etcd_stop_all
	for ((i = 1; i <= ETCD_MEMBERS; i++)); do
		_etcd_launch "$i" new
	done
	if ! wait_until 30 etcd_healthy "$ETCD_ENDPOINTS"; then
		tail -n 20 "$TESTDIR"/etcd/m*.log >&2
		fail "the etcd cluster ($ETCD_ENDPOINTS) was not healthy within 30 s"
	fi
	echo "etcd cluster up: $ETCD_ENDPOINTS"
}

etcd_member_kill() {
	local i=$1 sig=${2:-KILL} pid=${ETCD_PIDS[$1 - 1]}
	kill "-$sig" "$pid"
	wait_until 10 gone "$pid" || fail "etcd member m$i (pid $pid) did not exit"
	ETCD_PIDS[i - 1]=
	echo "etcd member m$i stopped (SIG$sig)"
}

# etcd_member_freeze I, etcd_member_thaw I: SIGSTOP and SIGCONT member mI.
# A frozen member keeps its sockets: connections to it are made, and then
# nothing answers, as with a member that hangs. It is a follower by then:
# a leader frozen past a lease's TTL revokes that lease when it thaws,
# though the owner renewed it through the new leader meanwhile. etcd
# 3.4.23's lessor still takes itself for the primary, and its revocation
# is forwarded to the new leader and applied (etcd issues #12528, #15247;
# mitigated upstream by PR #16822, after Debian 12's 3.4.23). The tests
# mean a member that hangs, not that etcd bug (docs/MULTI-HOST.md §6), so
# leadership moves off member I first.
etcd_member_freeze() {
	local i=$1 lead
	lead=$(etcd_leader) || fail "no etcd leader to move off m$i"
	[ "$lead" != "$i" ] || etcd_lead_move "$i"
	kill -STOP "${ETCD_PIDS[i - 1]}" && echo "etcd member m$i frozen (SIGSTOP)"
}
# etcd_lead_move I [J]: member I, the leader, hands its leadership to
# member J, by default a follower (etcdctl move-leader, as a leader does
# when stopped by SIGTERM).
etcd_lead_move() {
	local i=$1 to=${2:-}
	[ -n "$to" ] || to=$(etcd_follower "$i") || fail "no etcd follower to lead instead of m$i"
	[ -n "${ETCD_IDS[to - 1]:-}" ] || _etcd_learn_ids
	_etcd_call "$i" maintenance/transfer-leadership "{\"targetID\":\"${ETCD_IDS[to - 1]}\"}" \
		>/dev/null || fail "cannot move etcd's leadership from m$i to m$to"
	wait_until 10 _etcd_not_leading "$i" || fail "m$i still leads after move-leader"
	echo "etcd leadership moved from m$i to m$to"
}
# _etcd_not_leading I: does a member other than I lead (for wait_until)?
_etcd_not_leading() {
	local lead
	lead=$(etcd_leader) && [ "$lead" != "$1" ]
}
# _etcd_learn_ids: ETCD_IDS[I - 1], member I's id, for every running
# member. Ids stay when a member restarts (its data directory is kept), so
# each is asked for once.
_etcd_learn_ids() {
	local i lead id
	while read -r i lead id; do
		ETCD_IDS[i - 1]=$id
	done < <(_etcd_status)
}
etcd_member_thaw() { kill -CONT "${ETCD_PIDS[$1 - 1]}" && echo "etcd member m$1 thawed (SIGCONT)"; }

etcd_member_start() {
	local i=$1
	_etcd_launch "$i" existing
	wait_until 30 etcd_healthy "$(etcd_member_endpoint "$i")" ||
		fail "etcd member m$i did not become healthy within 30 s"
	echo "etcd member m$i restarted"
}

# _etcd_status: one line "I LEADS ID" per running member that answers, by
# its own status: its number, 1 if it leads, and its id (decimal).
_etcd_status() {
	local i body id
	for ((i = 1; i <= ETCD_MEMBERS; i++)); do
		[ -n "${ETCD_PIDS[i - 1]:-}" ] || continue
		body=$(_etcd_call "$i" maintenance/status '{}') || continue
		[[ $body =~ \"member_id\":\"([0-9]+)\" ]] || continue
		id=${BASH_REMATCH[1]}
		[[ $body =~ \"leader\":\"([0-9]+)\" && ${BASH_REMATCH[1]} = "$id" ]] &&
			echo "$i 1 $id" || echo "$i 0 $id"
	done
}

# etcd_leader: the number of the member leading now; etcd_follower [NOT]:
# of a running member that does not lead (and is not member NOT). Both
# fail (for wait_until) when there is none.
etcd_leader() { _etcd_status | awk '$2 == 1 { print $1; found = 1; exit } END { exit !found }'; }
etcd_follower() {
	_etcd_status | awk -v not="${1:-0}" '$2 == 0 && $1 != not { print $1; found = 1; exit }
		END { exit !found }'
}
