#!/usr/bin/env bash
# A mount namespace made while a FUSE mount exists holds a copy of it (the
# root mount here is private): the copy keeps the superblock alive after
# fusermount3 -u, and isocache-fuse never learns it was unmounted. Tests
# that make namespaces start their commands with tests/ns-drop-mounts,
# which drops such copies; this checks that it does (without it the server
# outlives the unmount until the namespace's process exits), and that it
# refuses to run in the test's own namespace.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/fuse-functions.bash"
fuse_requires unshare
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (mount namespaces)" >&2; exit 77; }
trace_on

fuse_store
"$ADMIN" create --size 8M vm
mnt=$TESTDIR/mnt
fuse_mount "$mnt"
pid=$(fuse_pid "$mnt")

# holder: a long-lived process in a namespace of its own, as hosts.sh's
# servers and the PID-namespace tests' are.
unshare --mount "$NS_DROP_MOUNTS" sleep 600 &
holder=$!
cleanup_fn kill "$holder"
# unshare execs the script, which execs sleep: wait for the sleep, then
# ask its namespace what it still mounts.
wait_until 10 grep -qx sleep "/proc/$holder/comm" || fail "the holder did not start"
grep -q " $mnt " "/proc/$holder/mounts" && fail "the namespace kept a copy of $mnt"
fusermount3 -u "$mnt"
wait_until 10 gone "$pid" || { stacks "$pid"; fail "isocache-fuse outlived its unmount"; }

# In the test's own namespace the script must refuse, touching nothing.
fuse_mount "$mnt"
expect_fail "not in a new mount namespace" "$NS_DROP_MOUNTS" true
mountpoint -q "$mnt" || fail "the refusal unmounted $mnt"
fuse_umount "$mnt"
