/* Keys and values: range, put, delete, transactions and the
 * compare-and-swap that ownership records will be written with. */
#include "etcd/internal.h"

#include <errno.h>
#include <string.h>

/* An answer that decoded badly: say so, naming the call. */
static int
kv_bad_answer(struct ic_etcd *etcd, const char *call, int rc)
{
	if (rc == -EPROTO)
		ic_etcd_fail(etcd, "a malformed answer to %s", call);
	else
		ic_etcd_fail(etcd, "%s: %s", call, strerror(-rc));
	return rc;
}

int
ic_etcd_range(struct ic_etcd *etcd, const char *key, bool prefix, int64_t revision,
	      struct ic_etcd_kvs *out)
{
	struct json_object *answer;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = ic_etcd_call(etcd, "kv/range", ic_etcd_req_range_at(key, prefix, revision), 0,
			  &answer);
	if (rc < 0)
		return rc;
	rc = ic_etcd_decode_revision(answer, &out->revision);
	if (rc == 0)
		rc = ic_etcd_decode_kvs(answer, out);
	json_object_put(answer);
	if (rc < 0) {
		ic_etcd_kvs_free(out);
		return kv_bad_answer(etcd, "kv/range", rc);
	}
	return 0;
}

int
ic_etcd_get(struct ic_etcd *etcd, const char *key, struct ic_etcd_kv *out)
{
	struct ic_etcd_kvs kvs;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = ic_etcd_range(etcd, key, false, 0, &kvs);
	if (rc < 0)
		return rc;
	if (kvs.n == 0) {
		ic_etcd_kvs_free(&kvs);
		return -ENOENT;
	}
	*out = kvs.kv[0];
	memset(&kvs.kv[0], 0, sizeof(kvs.kv[0]));
	ic_etcd_kvs_free(&kvs);
	return 0;
}

int
ic_etcd_get_prefix(struct ic_etcd *etcd, const char *prefix, struct ic_etcd_kvs *out)
{
	return ic_etcd_range(etcd, prefix, true, 0, out);
}

/* A call whose answer is one number (decode reads it): *out if not NULL. */
static int
kv_call_number(struct ic_etcd *etcd, const char *path, struct json_object *req,
	       int (*decode)(struct json_object *answer, int64_t *v), int64_t *out)
{
	struct json_object *answer;
	int64_t v;
	int rc;

	rc = ic_etcd_call(etcd, path, req, 0, &answer);
	if (rc < 0)
		return rc;
	rc = decode(answer, &v);
	json_object_put(answer);
	if (rc < 0)
		return kv_bad_answer(etcd, path, rc);
	if (out)
		*out = v;
	return 0;
}

int
ic_etcd_put(struct ic_etcd *etcd, const char *key, const void *value, size_t len, int64_t lease,
	    int64_t *revision)
{
	return kv_call_number(etcd, "kv/put", ic_etcd_req_put(key, value, len, lease),
			      ic_etcd_decode_revision, revision);
}

static int
kv_decode_deleted(struct json_object *answer, int64_t *v)
{
	return ic_etcd_get_i64(answer, "deleted", v);
}

int
ic_etcd_delete(struct ic_etcd *etcd, const char *key, bool prefix, int64_t *deleted)
{
	return kv_call_number(etcd, "kv/deleterange", ic_etcd_req_delete(key, prefix),
			      kv_decode_deleted, deleted);
}

int
ic_etcd_txn(struct ic_etcd *etcd, const struct ic_etcd_cmp *cmp, unsigned ncmp,
	    const struct ic_etcd_op *success, unsigned nsuccess, const struct ic_etcd_op *failure,
	    unsigned nfailure, unsigned timeout_ms, struct ic_etcd_txn_result *res)
{
	struct json_object *answer;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = ic_etcd_call(etcd, "kv/txn",
			  ic_etcd_req_txn(cmp, ncmp, success, nsuccess, failure, nfailure),
			  timeout_ms, &answer);
	if (rc < 0)
		return rc;
	rc = ic_etcd_decode_txn(answer, res);
	json_object_put(answer);
	return rc < 0 ? kv_bad_answer(etcd, "kv/txn", rc) : 0;
}

/* The put's revision is the transaction's: a transaction whose only write
 * is this put moves the store's revision to the key's new mod_revision. */
int
ic_etcd_cas(struct ic_etcd *etcd, const char *key, int64_t expected_mod, const void *value,
	    size_t len, int64_t lease, int64_t *revision)
{
	const struct ic_etcd_cmp cmp = {
		.key = key, .target = IC_ETCD_MOD, .result = IC_ETCD_EQUAL, .number = expected_mod
	};
	const struct ic_etcd_op put = {
		.type = IC_ETCD_OP_PUT, .key = key, .value = value, .value_len = len, .lease = lease
	};
	struct ic_etcd_txn_result res;
	int rc;

	rc = ic_etcd_txn(etcd, &cmp, 1, &put, 1, NULL, 0, 0, &res);
	if (rc < 0)
		return rc;
	ic_etcd_kvs_free(&res.got);
	if (!res.succeeded)
		return -ECANCELED;
	if (revision)
		*revision = res.revision;
	return 0;
}
