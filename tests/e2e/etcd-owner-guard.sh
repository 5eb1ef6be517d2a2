#!/usr/bin/env bash
# An owner whose ownership record in etcd is deleted behind its back
# fences itself at once. etcd deletes the record with the owner's lease,
# and a paused etcd 3.4 leader revokes leases when it resumes, though the
# owner renewed them through the new leader (docs/MULTI-HOST.md §4); an
# operator may delete it by hand. A claimant can claim from then on. Here
# the test deletes the record while the owner's lease stays valid and its
# client writes without flushing: the owner fences within a second, its
# next write fails, and a second server claims the vdisk and reads what
# was flushed. The old owner noticed only at its next commit,
# and wrote on until then (the old code's writes succeed here).
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/nbd-functions.bash"
source "$(dirname "$0")/../etcd.sh"
requires qemu-io
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd is not installed" >&2; exit 77; }
ETCD_MEMBERS=1
etcd_cluster_start
etcd_store_init
"$ADMIN" create --size 64M vm
export ISOCACHE_LEASE_TTL=30 # no renewal needed in this test's time

nbd_start a vm 2>"$TESTDIR/a.log"
# One client, connected throughout: a server whose last client left lets
# the vdisk go, and claims it anew for the next.
/usr/bin/python3 - "$(nbd_uri a)" "$TESTDIR" <<'PY' &
import nbd, os, sys, time
uri, d = sys.argv[1], sys.argv[2]
h = nbd.NBD()
h.connect_uri(uri)
h.pwrite(b"\x11" * 65536, 0)
h.flush()
open(d + "/ready", "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(d + "/go") and time.monotonic() < deadline:
    time.sleep(0.02)
try:
    h.pwrite(b"\x22" * 65536, 65536)
    result = "wrote"
except nbd.Error as e:
    result = "error " + str(e)
open(d + "/result.tmp", "w").write(result + "\n")
os.rename(d + "/result.tmp", d + "/result")
PY
client=$!
cleanup_fn kill "$client"
wait_until 30 test -e "$TESTDIR/ready" || fail "the client did not write"
record=/isocache/store/owners/vm
"$ETCDTOOL" "etcd://$ETCD_ENDPOINTS/x" get "$record" >/dev/null || fail "no record at $record"

t0=$(date +%s%N)
"$ETCDTOOL" "etcd://$ETCD_ENDPOINTS/x" del "$record" >/dev/null
wait_until 10 grep -q 'fenced: its ownership record in etcd .* was deleted' "$TESTDIR/a.log" ||
	fail "a did not fence itself: $(cat "$TESTDIR/a.log")"
echo "a said it fenced itself $((($(date +%s%N) - t0) / 1000000)) ms after the deletion began"
touch "$TESTDIR/go"
wait_until 30 test -e "$TESTDIR/result" || fail "the client did not write again"
wait "$client"
echo "the client's write after the deletion: $(cat "$TESTDIR/result")"
grep -q '^error .*EPERM' "$TESTDIR/result" || fail "a wrote after its record was deleted"

nbd_start b vm 2>"$TESTDIR/b.log"
qemu-io -f raw -c "read -P 0x11 0 64k" -c "read -P 0 64k 64k" "$(nbd_uri b)" >"$TESTDIR/io.log"
qemu_io_done "$TESTDIR/io.log" 2
nbd_stop b
echo PASS
