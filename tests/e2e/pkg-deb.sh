#!/usr/bin/env bash
# The Debian packages: dpkg-buildpackage -us -uc -b builds isocache,
# libisocache0 and libisocache-dev with everything cmake --install puts in
# place; lintian finds no error in them (its full output is printed); and
# isocache-admin runs from a scratch root the packages are unpacked into.
#
# The cost is bounded by building in a copy of the tree kept under the
# build directory ($IC_BUILD/deb), mirrored with rsync (times kept) and
# built without a clean (-nc), so only what changed since the last run is
# compiled again; the first run builds everything once.
source "$(dirname "$0")/../functions.sh"
requires dpkg-buildpackage dh lintian rsync fakeroot
trace_on

work=$IC_BUILD/deb
src=$work/src
mkdir -p "$src"
rsync -a --delete --exclude='/build*' --exclude=/.git --exclude='/obj-*' \
	--exclude=/debian/.debhelper --exclude=/debian/debhelper-build-stamp \
	"$IC_SRC/" "$src/"
rm -f "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo
(cd "$src" && DEB_BUILD_OPTIONS="parallel=2 noautodbgsym" dpkg-buildpackage -us -uc -b -nc) \
	>"$TESTDIR/build.log" 2>&1 || { tail -50 "$TESTDIR/build.log"; fail "dpkg-buildpackage failed"; }
version=$(dpkg-parsechangelog -l "$IC_SRC/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
for p in isocache libisocache0 libisocache-dev; do
	[ -s "$work/${p}_${version}_$arch.deb" ] || fail "${p}_${version}_$arch.deb was not built"
done
deb=$work/isocache_${version}_$arch.deb

# What is in them.
contents() { dpkg-deb -c "$work/${1}_${version}_$arch.deb" | awk '{ print $6 }'; }
contents isocache >"$TESTDIR/isocache.list"
for f in ./usr/bin/isocache-admin ./usr/bin/isocache-nbd ./usr/bin/isocache-fuse \
	./usr/sbin/isocached ./lib/systemd/system/isocached.socket \
	./lib/systemd/system/isocached.service ./lib/systemd/system/isocache-nbd@.service \
	./lib/systemd/system/isocache-fuse@.service ./usr/share/man/man8/isocache-admin.8.gz \
	./usr/share/man/man8/isocached.8.gz ./usr/share/bash-completion/completions/isocache-admin; do
	grep -qx -- "$f" "$TESTDIR/isocache.list" || fail "isocache.deb lacks $f"
done
contents libisocache0 | grep -qE '^\./usr/lib/[^/]+/libisocache\.so\.0$' || fail "libisocache0 lacks the library"
contents libisocache-dev >"$TESTDIR/dev.list"
for f in ./usr/include/isocache/filter.h ./usr/include/isocache/vdisk.h \
	./usr/share/man/man3/isocache-filter.3.gz; do
	grep -qx -- "$f" "$TESTDIR/dev.list" || fail "libisocache-dev lacks $f"
done
grep -qE '/pkgconfig/isocache\.pc$' "$TESTDIR/dev.list" || fail "libisocache-dev lacks isocache.pc"

# lintian: every finding is printed; an error fails the test.
lintian --info --display-level '>=pedantic' "$work"/*.changes 2>&1 | tee "$TESTDIR/lintian.log" || true
! grep -q '^E: ' "$TESTDIR/lintian.log" || fail "lintian reports errors"

# Unpacked into a scratch root, the program runs from there.
root=$TESTDIR/root
for p in isocache libisocache0; do dpkg -x "$work/${p}_${version}_$arch.deb" "$root"; done
"$root/usr/bin/isocache-admin" --help | tee "$TESTDIR/help"
grep -q '^Usage: isocache-admin' "$TESTDIR/help" || fail "isocache-admin --help from the package printed no usage"
"$root/usr/bin/isocache-admin" --store "$TESTDIR/store" init
"$root/usr/bin/isocache-admin" --store "$TESTDIR/store" create vm --size 1M
"$root/usr/bin/isocache-admin" --store "$TESTDIR/store" ls | grep -q '^vm ' ||
	fail "the packaged isocache-admin cannot use a store"
grep -q "^prefix=/usr$" "$(find "$work/src/debian/libisocache-dev" -name isocache.pc)" ||
	fail "the packaged isocache.pc does not name /usr"
