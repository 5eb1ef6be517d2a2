# Sourced by tests/e2e/cached-*.sh after ../functions.sh.
CTL=$IC_BUILD/tests/tools/isocache-cachectl

# cached_layer FILE SIZE: a frozen layer file of SIZE random bytes (see
# cached_freeze).
cached_layer() {
	head -c "$2" /dev/urandom >"$1"
	cached_freeze "$1"
}

# cached_freeze FILE: make FILE a frozen layer by hand as the vdisk core
# would: the layer xattr, mode 0444, and for root the immutable attribute
# (tests/functions.sh clears it at exit).
cached_freeze() {
	setfattr -n user.isocache.layer -v "isocache-layer v1 store=$(cat /proc/sys/kernel/random/uuid) layer=$(cat /proc/sys/kernel/random/uuid) frozen" "$1"
	chmod 0444 "$1" # after the xattr: setting one needs write access
	if [ "$(id -u)" = 0 ]; then
		chattr +i "$1"
		cleanup_fn chattr -i "$1"
	fi
}

# cached_as_nobody: skip unless root, who can run clients and layers as
# nobody through "${NOBODY[@]}" CMD...; then make $TESTDIR reachable
# (0711) for nobody, and give it nobody_layer NAME SIZE: a frozen layer
# of nobody's at $TESTDIR/shared/NAME (the directory is world-writable).
cached_as_nobody() {
	requires setfattr setpriv
	[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to run clients as nobody" >&2; exit 77; }
	NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	"${NOBODY[@]}" test -x "$CTL" || { echo "SKIP: nobody cannot run $CTL" >&2; exit 77; }
	chmod 0711 "$TESTDIR"
	mkdir -p -m 0777 "$TESTDIR/shared"
}
nobody_layer() {
	"${NOBODY[@]}" bash -c "$(declare -f cached_layer cached_freeze); cached_layer '$TESTDIR/shared/$1' $2"
}

# cached_start ARGS...: isocached on $ISOCACHE_SOCKET, killed at exit;
# with --no-shared when IC_CACHED_NO_SHARED is set (the e2e-noshared runs).
cached_start() {
	rm -f "$TESTDIR/cached.pid"
	start_bg "$TESTDIR/cached.pid" "$CACHED" --foreground --pid-file "$TESTDIR/cached.pid" \
		${IC_CACHED_NO_SHARED:+--no-shared} "$@"
}

# cached_stat FILE|all NAME [CMD-PREFIX...]: one counter from STATS.
cached_stat() {
	local file=$1 name=$2
	shift 2
	"$@" "$CTL" stats "$file" | awk -v n="$name" '$1 == n { print $2 }'
}

# expect_spliced N WHAT: N reads of a 32 MiB copy were spliced from the
# arena (cached-splice*.sh): at least 8 (the rest cross holes), or none in
# the e2e-noshared runs, which have no arena.
expect_spliced() {
	echo "$2: $1 reads spliced"
	if [ -n "${IC_CACHED_NO_SHARED:-}" ]; then
		[ "$1" = 0 ] || fail "$2: no arenas, yet $1 reads were spliced"
	else
		(($1 >= 8)) || fail "$2: only $1 reads were spliced"
	fi
}

# copy_is_image FILE WHAT: $TESTDIR/FILE holds what $TESTDIR/base.raw does.
copy_is_image() { cmp "$TESTDIR/$1" "$TESTDIR/base.raw" || fail "$2: the copy is not the image"; }

# copy_rounds: three rounds of the clones vm1, vm2 and vm3 copied at once
# with the caller's copy CLONE FILE, each copy compared with the image.
copy_rounds() {
	local round c p pids
	for round in 1 2 3; do
		pids=()
		for c in vm1 vm2 vm3; do
			copy "$c" "$c.raw" &
			pids+=($!)
		done
		for p in "${pids[@]}"; do wait "$p" || fail "round $round: a copy failed"; done
		for c in vm1 vm2 vm3; do copy_is_image "$c.raw" "round $round, $c"; done
	done
}

# evicted_under_copies: the daemon evicted blocks, and each clone's reads
# were spliced all the same (the caller's spliced CLONE).
evicted_under_copies() {
	local evictions c
	evictions=$("$CTL" stats all | awk '$1 == "evictions" { print $2 }')
	echo "evicting: $evictions evictions"
	((evictions > 0)) || fail "the daemon evicted nothing under three readers"
	for c in vm1 vm2 vm3; do expect_spliced "$(spliced "$c")" "evicting, $c"; done
}

# cached_golden MIB CLONE...: a store whose vdisk "base" was imported from
# $TESTDIR/base.raw (MIB MiB of random data with holes) and frozen as
# base@gold, and a linked clone of it for each CLONE name. Needs
# nbd-functions.bash sourced first.
cached_golden() {
	local c
	nbd_store
	# Runs after the servers are killed: sockets a killed server leaves
	# behind would fail the exit hook's chattr -R.
	cleanup_fn find "$TESTDIR" -type s -delete
	random_image "$TESTDIR/base.raw" "$1"
	shift
	"$ADMIN" import "$TESTDIR/base.raw" base
	"$ADMIN" snap base@gold
	for c in "$@"; do "$ADMIN" clone base@gold "$c"; done
}
