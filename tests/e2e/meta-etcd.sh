#!/usr/bin/env bash
# The metadata unit cases on the etcd backend (tests/unit/test_meta_extents.c
# with IC_META_ETCD): the backend-neutral ones (records, maps, disk ids,
# owner records) and the etcd backend's own (conflicts, fences, snapshots,
# chunked maps, etcd's limits, init and open refusals), on a real 3-member
# cluster.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../etcd.sh"
etcd_cluster_start

IC_META_ETCD="etcd://$ETCD_ENDPOINTS" "$IC_BUILD/tests/test_meta_extents" 2>&1 |
	tee "$TESTDIR/unit.out"
[ "${PIPESTATUS[0]}" = 0 ] || fail "the meta cases failed on etcd"
grep -q 'test_etcd_seams_and_fence' "$TESTDIR/unit.out" || fail "the etcd cases did not run"
! grep -q 'SKIPPED' "$TESTDIR/unit.out" || fail "a case was skipped"
