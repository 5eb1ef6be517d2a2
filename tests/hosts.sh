# Two "hosts" on this machine for the multi-host end-to-end tests, sourced
# after tests/functions.sh and tests/etcd.sh. Each host is a network
# namespace joined to the root namespace by a veth pair with its own /30
# subnet and a default route through it; the 3-member etcd cluster of
# etcd.sh also listens on a service address of the root namespace (a /32
# on its loopback device), which both hosts and the root namespace reach, and a
# host whose link is down reaches nothing. Both hosts share one store
# directory ($ISOCACHE_STORE, the stand-in for shared storage). Its vdisks
# are owned through etcd: with HOST_STORE=etcd (hosts_store) the store's
# metadata is in the cluster, else it is local and ISOCACHE_OWNER_ETCD
# names the cluster on each host. Everything is removed at exit: processes
# by PID, then the namespaces (which take their veth pairs with them) and
# the service address.
#
#   hosts_start               make hosts a and b, start the etcd cluster
#   on_host H CMD...          run CMD on host H (a or b), with its etcd URL
#   on_host_exec H CMD...     the same in place of this shell: run in the
#                             background, $! is then CMD's own pid
#   HOST_URL                  the cluster (etcd://SERVICE:P1,...,P3/test), the
#                             same from every namespace
#   HOST_OWNER_URL            where the store's vdisks are owned: HOST_URL, or
#                             the store's own prefix for HOST_STORE=etcd (for
#                             a tool that opens no store: ISOCACHE_OWNER_ETCD)
#   hosts_store               make $ISOCACHE_STORE: metadata in the cluster
#                             (HOST_STORE=etcd, prefix "store"), else local;
#                             with HOST_FS=sshfs the hosts reach it over a
#                             network filesystem (hosts_sshfs)
#   host_store H              the store directory as host H names it
#   host_link_down H          cut host H off (its veth down inside its namespace)
#   host_link_up H            and back
#   HOST_TTL                  the lease TTL of every host, seconds (ISOCACHE_LEASE_TTL)
#
# Names and subnets carry a number from this shell's pid, so two tests
# may run at once; the subnets are 10.X.Y.0/30 with X in 100..227.

HOST_TTL=${HOST_TTL:-2}
HOST_STORE=${HOST_STORE:-local}
HOST_FS=${HOST_FS:-}
# A test stopped by a signal (ctest's timeout) still cleans up: namespaces
# outlive every process.
trap 'exit 143' TERM INT
_HOST_NS=()
declare -A _HOST_PEER _HOST_IF _HOST_STORE
_HOST_SERVICE=

_HOST_ID=$(($$ % 32768))
_host_id() { echo "$_HOST_ID"; }
# _host_service ID: the cluster's service address of the hosts of ID.
_host_service() { echo "10.$((100 + $1 % 128)).$((($1 / 128) % 64 * 4 + 3)).1"; }
# _host_taken ID: another test holds ID's names or service address (it
# runs, or it was killed before its cleanup: namespaces and addresses
# outlive processes). Pids 8192 apart share the subnets.
_host_taken() {
	[ -e "/run/netns/ic${1}a" ] || ip -o addr show dev lo | grep -qF " $(_host_service "$1")/"
}

# _host_make H N: namespace ic<id><H>, veth ic<id><H>r (root side, .1) and
# ic<id><H>h (inside, .2), subnet 10.X.Y.0/30.
_host_make() {
	local h=$1 n=$2 id ns x y
	id=$(_host_id)
	ns=ic$id$h
	x=$((100 + id % 128))
	y=$(((id / 128) % 64 * 4 + n))
	ip netns add "$ns" || fail "cannot make network namespace $ns (root needed)"
	_HOST_NS+=("$ns")
	ip link add "${ns}r" type veth peer name "${ns}h"
	ip link set "${ns}h" netns "$ns"
	ip addr add "10.$x.$y.1/30" dev "${ns}r"
	ip link set "${ns}r" up
	ip -n "$ns" addr add "10.$x.$y.2/30" dev "${ns}h"
	ip -n "$ns" link set "${ns}h" up
	ip -n "$ns" link set lo up
	ip -n "$ns" route add default via "10.$x.$y.1"
	_HOST_PEER[$h]=10.$x.$y.2
	_HOST_IF[$h]=${ns}h
	_HOST_SERVICE=$(_host_service "$id")
}

_hosts_remove() {
	local ns
	for ns in "${_HOST_NS[@]}"; do
		ip netns del "$ns" 2>/dev/null || true
	done
	[ -z "${_HOST_SERVICE_ADDED:-}" ] || ip addr del "$_HOST_SERVICE/32" dev lo 2>/dev/null || true
}

hosts_start() {
	requires ip
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP: network namespaces need root" >&2
		exit 77
	fi
	cleanup_fn _hosts_remove
	while _host_taken "$_HOST_ID"; do
		_HOST_ID=$(((_HOST_ID + 1) % 32768))
	done
	_host_make a 0
	_host_make b 1
	ip addr add "$_HOST_SERVICE/32" dev lo
	_HOST_SERVICE_ADDED=1
	ETCD_LISTEN_EXTRA=$_HOST_SERVICE
	etcd_cluster_start
	HOST_URL=etcd://${ETCD_ENDPOINTS//127.0.0.1/$_HOST_SERVICE}/test
	HOST_OWNER_URL=$HOST_URL
	[ "$HOST_STORE" != etcd ] || HOST_OWNER_URL=${HOST_URL%/test}/store
	local h
	for h in a b; do
		wait_until 10 on_host "$h" "$ETCDTOOL" -t 1000 "$HOST_URL" put /probe "$h" \
			>/dev/null || fail "host $h cannot reach the etcd cluster"
	done
	echo "hosts up: a (${_HOST_PEER[a]}) and b (${_HOST_PEER[b]}), TTL $HOST_TTL s"
}

hosts_store() {
	cleanup_fn chattr -R -i "$ISOCACHE_STORE"
	if [ "$HOST_STORE" = etcd ]; then
		"$ADMIN" --store "$ISOCACHE_STORE" init --meta "${HOST_URL%/test}/store"
	else
		"$ADMIN" --store "$ISOCACHE_STORE" init
	fi
	[ "$HOST_FS" != sshfs ] || hosts_sshfs
}

# _hosts_sshd_stop PIDFILE: sshd and the processes of its connections (a
# connection from a host cut off outlives the master, half open).
_hosts_sshd_stop() {
	local master kids k
	master=$(cat "$1" 2>/dev/null) || return 0
	kids=$(pgrep -P "$master" | tr '\n' ' ')
	for k in $kids; do kids+=" $(pgrep -P "$k" | tr '\n' ' ')"; done
	# shellcheck disable=SC2086
	kill $kids "$master" 2>/dev/null || true
}

host_store() { echo "${_HOST_STORE[$1]:-$ISOCACHE_STORE}"; }

# hosts_sshfs: the store on a network filesystem. An sshd on the service
# address (the storage server) serves $ISOCACHE_STORE over SFTP, and each
# host H mounts it with sshfs at $TESTDIR/H-store, its ssh connection in
# H's network namespace, so that cutting H's link cuts its storage too.
# The mounts are in the root mount namespace, and ns-drop-mounts leaves
# them in the hosts' (IC_TEST_KEEP_MOUNTS). A local store's LMDB file may
# not live on a network filesystem (LMDB forbids it): use HOST_STORE=etcd.
hosts_sshfs() {
	requires sshfs nsenter /usr/sbin/sshd ssh-keygen
	local k=$TESTDIR/ssh h port
	mkdir -p "$k" /run/sshd # sshd's privilege separation directory
	ssh-keygen -q -t ed25519 -N '' -f "$k/host"
	ssh-keygen -q -t ed25519 -N '' -f "$k/user"
	port=$(_etcd_free_ports 1)
	cat >"$k/sshd_config" <<-EOF
		ListenAddress $_HOST_SERVICE:$port
		HostKey $k/host
		PidFile $k/sshd.pid
		AuthorizedKeysFile $k/user.pub
		PermitRootLogin prohibit-password
		PasswordAuthentication no
		StrictModes no
		UsePAM no
		Subsystem sftp internal-sftp
	EOF
	/usr/sbin/sshd -f "$k/sshd_config" -E "$k/sshd.log" || fail "sshd did not start: $(cat "$k/sshd.log")"
	wait_until 10 test -s "$k/sshd.pid" || fail "sshd wrote no pid file: $(cat "$k/sshd.log")"
	cleanup_fn _hosts_sshd_stop "$k/sshd.pid"
	for h in a b; do
		mkdir "$TESTDIR/$h-store"
		nsenter --net="/run/netns/ic$(_host_id)$h" sshfs -o "IdentityFile=$k/user,port=$port" \
			-o StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,LogLevel=ERROR \
			"root@$_HOST_SERVICE:$ISOCACHE_STORE" "$TESTDIR/$h-store" ||
			fail "host $h could not mount the store with sshfs"
		cleanup_fn umount -l "$TESTDIR/$h-store"
		_HOST_STORE[$h]=$TESTDIR/$h-store
		IC_TEST_KEEP_MOUNTS+="${IC_TEST_KEEP_MOUNTS:+:}$TESTDIR/$h-store"
	done
	export IC_TEST_KEEP_MOUNTS
	echo "the hosts reach the store over sshfs: ${_HOST_STORE[a]} and ${_HOST_STORE[b]}"
}

on_host() { (on_host_exec "$@"); }

on_host_exec() {
	local h=$1 owner=
	shift
	[ "$HOST_STORE" = etcd ] || owner=$HOST_URL
	exec ip netns exec "ic$(_host_id)$h" "$NS_DROP_MOUNTS" env ISOCACHE_OWNER_ETCD="$owner" \
		ISOCACHE_LEASE_TTL="$HOST_TTL" "$@"
}

host_link_down() { ip -n "ic$(_host_id)$1" link set "${_HOST_IF[$1]}" down; }
host_link_up() { ip -n "ic$(_host_id)$1" link set "${_HOST_IF[$1]}" up; }
