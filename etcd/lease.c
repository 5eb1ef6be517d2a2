/* Leases: grant, renew once, revoke. The thread that renews for an owner
 * is keeper.c. */
#include "etcd/internal.h"

#include <errno.h>

int
ic_etcd_lease_grant(struct ic_etcd *etcd, int64_t ttl_s, int64_t *id, int64_t *granted)
{
	struct json_object *answer;
	int64_t lid, ttl;
	int rc;

	rc = ic_etcd_call(etcd, "lease/grant", ic_etcd_req_lease_ttl(ttl_s), 0, &answer);
	if (rc < 0)
		return rc;
	rc = ic_etcd_decode_lease(answer, &lid, &ttl);
	json_object_put(answer);
	if (rc == 0 && (lid == 0 || ttl <= 0))
		rc = -EPROTO;
	if (rc < 0) {
		ic_etcd_fail(etcd, "a malformed answer to lease grant");
		return rc;
	}
	*id = lid;
	if (granted)
		*granted = ttl;
	return 0;
}

/* The gateway's keepalive is a stream of requests and answers; one request
 * in the body gets one answer, and the stream ends with the body. A lease
 * that is gone is no error reply there: the answer's TTL is 0. */
int
ic_etcd_lease_renew(struct ic_etcd *etcd, int64_t id, unsigned timeout_ms, int64_t *ttl)
{
	struct json_object *answer;
	int64_t lid, left;
	int rc;

	rc = ic_etcd_call(etcd, "lease/keepalive", ic_etcd_req_lease_id(id), timeout_ms, &answer);
	if (rc < 0)
		return rc;
	rc = ic_etcd_decode_lease(answer, &lid, &left);
	json_object_put(answer);
	if (rc < 0) {
		ic_etcd_fail(etcd, "a malformed answer to lease keepalive");
		return rc;
	}
	if (left <= 0) {
		ic_etcd_fail(etcd, "lease %lld not found (expired or revoked)", (long long)id);
		return -ENOENT;
	}
	if (ttl)
		*ttl = left;
	return 0;
}

int
ic_etcd_lease_keepalive(struct ic_etcd *etcd, int64_t id, int64_t *ttl)
{
	return ic_etcd_lease_renew(etcd, id, 0, ttl);
}

int
ic_etcd_lease_revoke(struct ic_etcd *etcd, int64_t id)
{
	struct json_object *answer;
	int rc;

	rc = ic_etcd_call(etcd, "lease/revoke", ic_etcd_req_lease_id(id), 0, &answer);
	if (rc == 0)
		json_object_put(answer);
	/* Gone already: expired, or revoked by an earlier attempt of this very
	 * call whose answer was lost (revoke is sent again on another member). */
	return rc == -ENOENT ? 0 : rc;
}
