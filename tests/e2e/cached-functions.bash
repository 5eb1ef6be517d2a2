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
