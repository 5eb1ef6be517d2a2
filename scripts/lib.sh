# Shared by scripts/demo and scripts/test: find the tree, install Debian
# packages that are missing, build. Sourced, not run.
set -euo pipefail
IC_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IC_JOBS=${IC_JOBS:-$(nproc)}

# Packages every build needs; the test and demo scripts add theirs.
IC_BUILD_PACKAGES=(build-essential cmake pkg-config liburing-dev libfuse3-dev liblmdb-dev
	libxxhash-dev libcmocka-dev libgnutls28-dev fuse3 attr)

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
