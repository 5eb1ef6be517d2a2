#!/usr/bin/env bash
# A filter built out of tree: cmake --install into a scratch prefix, build
# the example filter of docs/FILTERS.md with pkg-config against that prefix,
# load it into a live isocache-nbd with --filter and with isocache-admin
# filter add, and watch it refuse writes through qemu-io. A filter built for
# another ABI version is refused, naming the file.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires qemu-io cc pkg-config
trace_on

prefix=$TESTDIR/prefix
cmake --install "$IC_BUILD" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name isocache.pc)")
[ "$(pkg-config --variable=prefix isocache)" = "$prefix" ] ||
	fail "isocache.pc does not name the prefix it was installed to"
# The library exports the API and nothing else.
lib=$(pkg-config --variable=libdir isocache)/libisocache.so
others=$(nm -D --defined-only "$lib" | awk '$3 !~ /^ic_[a-z0-9_]+@@ISOCACHE_0$/ && $3 != "ISOCACHE_0"')
[ -z "$others" ] || fail "libisocache.so exports more than the API: $others"
nm -D --defined-only "$lib" | grep -q ' T ic_vdisk_open@@ISOCACHE_0$' || fail "ic_vdisk_open is not exported"

# The example, exactly as the documentation shows it, built out of tree
# (with the rpath a prefix outside the loader's path needs).
rpath=-Wl,-rpath,$(pkg-config --variable=libdir isocache)
awk '/^```c$/ && !done { on = 1; next } on && /^```$/ { on = 0; done = 1 } on' \
	"$IC_SRC/docs/FILTERS.md" >"$TESTDIR/ro.c"
grep -q 'IC_REGISTER_FILTER' "$TESTDIR/ro.c" || fail "the first C block of FILTERS.md is not the example"
# shellcheck disable=SC2046 # pkg-config's output is meant to split
cc -std=c17 -Wall -Wextra -Werror -shared -fPIC -o "$TESTDIR/ro.so" "$TESTDIR/ro.c" \
	$(pkg-config --cflags --libs isocache) "$rpath"

nbd_store
"$ADMIN" create vm --size 4M
"$ADMIN" create vm2 --size 4M

# --filter PATH: writes are refused (EROFS is EPERM on the wire), reads work.
nbd_start s --filter "$TESTDIR/ro.so" vm
uri=$(nbd_uri s vm)
qemu-io -f raw -c "read -P 0 0 64k" "$uri" | tee "$TESTDIR/log"
! grep -q 'failed' "$TESTDIR/log" || fail "a read through the ro filter failed"
! qemu-io -f raw -c "write -P 0xab 0 64k" "$uri" >"$TESTDIR/log" 2>&1 || true
grep -q 'Operation not permitted' "$TESTDIR/log" || fail "a write through the ro filter was not refused"
"$ADMIN" filter ls --json vm | grep -q '"name":"ro".*"refused":1' || fail "ro's report did not count the refusal"
nbd_stop s

# isocache-admin filter add PATH:PARAMS into a live stack, then rm.
nbd_start s vm2
uri=$(nbd_uri s vm2)
qemu-io -f raw -c "write -P 0xab 0 64k" "$uri" | tee "$TESTDIR/log"
! grep -q 'failed' "$TESTDIR/log" || fail "a write without the filter failed"
"$ADMIN" filter add vm2 "$TESTDIR/ro.so:errno=EPERM"
! qemu-io -f raw -c "write -P 0xcd 0 64k" "$uri" >"$TESTDIR/log" 2>&1 || true
grep -q 'Operation not permitted' "$TESTDIR/log" || fail "filter add did not put ro in the live stack"
"$ADMIN" filter ls --json vm2 | grep -q '"spec":"[^"]*ro.so:errno=EPERM"' || fail "filter ls does not show the path"
"$ADMIN" filter rm vm2 ro
qemu-io -f raw -c "write -P 0xcd 0 64k" -c "read -P 0xcd 0 64k" "$uri" | tee "$TESTDIR/log"
! grep -q 'failed' "$TESTDIR/log" || fail "writes still refused after filter rm"

# A filter built for another ABI version: refused by filter add (the stack
# is left as it was) and by --filter (the server does not start).
sed 's/IC_FILTER_OPS_INIT,/.size = sizeof(struct ic_filter_ops), .abi_version = IC_FILTER_ABI_VERSION + 1,/' \
	"$TESTDIR/ro.c" >"$TESTDIR/future.c"
# shellcheck disable=SC2046
cc -shared -fPIC -o "$TESTDIR/future.so" "$TESTDIR/future.c" $(pkg-config --cflags --libs isocache) \
	"$rpath"
! "$ADMIN" filter add vm2 "$TESTDIR/future.so" 2>"$TESTDIR/admin.err" || fail "filter add took a wrong ABI"
qemu-io -f raw -c "write -P 0xee 0 64k" "$uri" | tee "$TESTDIR/log"
! grep -q 'failed' "$TESTDIR/log" || fail "a refused filter add changed the stack"
nbd_stop s
rc=0
"$NBD" --store "$ISOCACHE_STORE" -k "$TESTDIR/t.sock" --filter "$TESTDIR/future.so" vm \
	2>"$TESTDIR/nbd.err" || rc=$?
cat "$TESTDIR/nbd.err"
[ "$rc" != 0 ] || fail "isocache-nbd started with a wrong-ABI filter"
grep -q "filter $TESTDIR/future.so: refused: built for filter ABI version 2, this isocache speaks version 1" \
	"$TESTDIR/nbd.err" || fail "the refusal does not name the file and both versions"
# Neither a missing file nor one that is not a filter is taken.
! "$NBD" --store "$ISOCACHE_STORE" -k "$TESTDIR/t.sock" --filter "$TESTDIR/none.so" vm \
	2>"$TESTDIR/nbd.err" || fail "isocache-nbd started with a missing filter"
grep -q "filter $TESTDIR/none.so: cannot read it: No such file or directory" "$TESTDIR/nbd.err" ||
	fail "a missing filter file is not named"
! "$NBD" --store "$ISOCACHE_STORE" -k "$TESTDIR/t.sock" --filter "$lib" vm \
	2>"$TESTDIR/nbd.err" || fail "isocache-nbd took a library without an entry point as a filter"
grep -q "filter $lib: refused: no ic_filter_plugin() entry point" "$TESTDIR/nbd.err" ||
	fail "a shared object without the entry point is not refused by name"
