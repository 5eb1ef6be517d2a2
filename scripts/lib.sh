# Shared by scripts/demo and scripts/test: find the tree, install Debian
# packages that are missing, build. Sourced, not run.
set -euo pipefail
IC_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IC_JOBS=${IC_JOBS:-$(nproc)}

# Packages every build needs; the test and demo scripts add theirs.
IC_BUILD_PACKAGES=(build-essential cmake pkg-config liburing-dev libfuse3-dev liblmdb-dev
	libxxhash-dev libcmocka-dev libgnutls28-dev libjson-c-dev libmicrohttpd-dev fuse3 attr scdoc
	libcurl4-openssl-dev)

ic_install() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "== installing ${missing[*]}"
	local sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -q || true
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ic_build DIR [cmake options...]: configure once, then build incrementally.
ic_build() {
	local dir=$1
	shift
	cmake -S "$IC_TOP" -B "$dir" "$@" >/dev/null
	cmake --build "$dir" -j "$IC_JOBS"
}

# ic_skip_allowed NAME: is NAME matched by a pattern (an extended regex
# over the whole name) in tests/skips.txt?
ic_skip_allowed() {
	local pat reason
	while read -r pat reason; do
		[[ -z $pat || $pat == \#* ]] && continue
		[[ $1 =~ ^($pat)$ ]] && return 0
	done <"$IC_TOP/tests/skips.txt"
	return 1
}

# ic_ctest ARGS...: ctest in the current build directory; then fail if any
# test was skipped (exit 77, or cmocka's skip()) that tests/skips.txt does
# not list with its reason: a skip must never hide a test that stopped running.
ic_ctest() {
	local log rc=0 name
	log=$(mktemp)
	ctest "$@" 2>&1 | tee "$log" || rc=$?
	while read -r name; do
		if ! ic_skip_allowed "$name"; then
			echo "FAIL: $name was skipped and tests/skips.txt does not list it" >&2
			rc=1
		fi
	done < <(sed -n 's/^[[:space:]]*[0-9]* - \(.*\) (Skipped)$/\1/p' "$log")
	rm -f "$log"
	return $rc
}
