#!/usr/bin/env bash
# A new store is private whatever the umask: under umask 022 another uid
# (setpriv --reuid=65534) cannot read a vdisk's layer file or meta.mdb.
# init --group shares it read-only with a group: a member reads them, a
# uid outside the group still cannot. Before, a store made under umask 022
# was 0755/0644 and any local user read a VM's writable disk.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
requires setpriv qemu-io
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to act as other uids" >&2; exit 77; }
getent group nogroup >/dev/null || { echo "SKIP: no group nogroup" >&2; exit 77; }
cd "$TESTDIR"
chmod 0755 "$TESTDIR" # other uids may reach the stores; the stores decide
umask 022

# as UID GID CMD...: run CMD as that uid and group, no supplementary groups.
as() { local u=$1 g=$2; shift 2; setpriv --reuid="$u" --regid="$g" --clear-groups "$@"; }

# make_store DIR [init options]: vm1 with data, a snapshot, more data.
make_store() {
	local dir=$1
	shift
	export ISOCACHE_STORE=$dir
	cleanup_fn chattr -R -i "$dir"
	"$ADMIN" init "$@"
	"$ADMIN" create vm1 --size 4M
	"$NBD" --store "$dir" --run 'qemu-io -f raw -c "write -P 0xaa 0 1M" "$uri"' vm1 >/dev/null
	"$ADMIN" snap vm1@s1
	"$NBD" --store "$dir" --run 'qemu-io -f raw -c "write -P 0xbb 1M 1M" "$uri"' vm1 >/dev/null
	leaf=$dir/layers/$("$ADMIN" info --json vm1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["chain"][0]["disk_id"])')
	frozen=$dir/layers/$("$ADMIN" info --json vm1@s1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["chain"][0]["disk_id"])')
	leaf=$leaf.raw frozen=$frozen.raw
}

# modes PATH... : "mode group" of each.
modes() { stat -c '%a %G' "$@" | tr '\n' ' '; }

# --- private (the default) ---
make_store "$TESTDIR/private"
got=$(modes private private/layers private/meta.mdb private/meta.mdb-lock "$leaf" "$frozen")
[ "$got" = "700 root 700 root 600 root 600 root 600 root 444 root " ] ||
	fail "private store modes under umask 022: $got"
for f in "$leaf" "$frozen" private/meta.mdb; do
	if as 65534 65534 cat "$f" >/dev/null 2>&1; then fail "uid 65534 read $f of a private store"; fi
done
if as 65534 65534 ls private/layers >/dev/null 2>&1; then fail "uid 65534 listed a private store"; fi
echo "private: $got; uid 65534 reads nothing"

# --- shared with group nogroup (65534) ---
make_store "$TESTDIR/shared" --group nogroup
got=$(modes shared shared/layers shared/meta.mdb shared/meta.mdb-lock "$leaf" "$frozen")
# The lock file stays 600: a group member who could open it could hold a
# shared lock and hold every writer up (docs/DECISIONS.md).
[ "$got" = "2750 nogroup 2750 nogroup 640 nogroup 600 nogroup 640 nogroup 444 nogroup " ] ||
	fail "shared store modes under umask 022: $got"
for f in "$leaf" "$frozen" shared/meta.mdb; do
	as 65534 65534 cat "$f" >/dev/null || fail "group member uid 65534 cannot read $f"
	if as 65533 65533 cat "$f" >/dev/null 2>&1; then fail "uid 65533, not in the group, read $f"; fi
done
if as 65534 65534 dd if=/dev/zero of="$leaf" bs=4k count=1 conv=notrunc 2>/dev/null; then
	fail "a group member wrote the leaf"
fi
echo "shared: $got; member 65534 reads, 65533 does not, nobody but root writes"

# A layer made later (snap, clone) keeps the store's modes.
"$ADMIN" clone vm1@s1 vm2
vm2=shared/layers/$("$ADMIN" info --json vm2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["chain"][0]["disk_id"])').raw
[ "$(modes "$vm2")" = "640 nogroup " ] || fail "a clone's layer in the shared store: $(modes "$vm2")"
export ISOCACHE_STORE=$TESTDIR/private
"$ADMIN" clone vm1@s1 vm2
vm2=private/layers/$("$ADMIN" info --json vm2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["chain"][0]["disk_id"])').raw
[ "$(modes "$vm2")" = "600 root " ] || fail "a clone's layer in the private store: $(modes "$vm2")"

# init over an existing store is refused and changes no mode.
if "$ADMIN" --store "$TESTDIR/shared" init 2>err; then fail "a second init succeeded"; fi
grep -q "meta.mdb: a metadata file exists already" err || fail "unclear refusal: $(cat err)"
[ "$(modes shared shared/layers)" = "2750 nogroup 2750 nogroup " ] ||
	fail "a refused init changed the store's modes: $(modes shared shared/layers)"

# An unknown group is refused by name.
if "$ADMIN" --store "$TESTDIR/nogroupstore" init --group no-such-group 2>err; then
	fail "init --group no-such-group succeeded"
fi
grep -q "no-such-group': no such group" err || fail "unclear refusal: $(cat err)"
echo "PASS: stores are private, or shared read-only with the group named"
