/* The gateway's JSON, both ways, without I/O (unit-tested on captured
 * answers). Requests follow etcd's protobuf field names (key, range_end,
 * request_put...); bytes are base64 and int64 are strings, which is how the
 * gateway writes them too. It leaves out zero values: an absent "version"
 * is 0, an absent "succeeded" is false. */
#include "etcd/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
codec_add_bytes(struct json_object *o, const char *field, const void *data, size_t len)
{
	size_t cap = IC_ETCD_B64_LEN(len) + 1;
	char *text = malloc(cap);
	struct json_object *s;

	if (!text)
		return -ENOMEM;
	ic_etcd_b64_encode(data, len, text, cap);
	s = json_object_new_string(text);
	free(text);
	if (!s)
		return -ENOMEM;
	json_object_object_add(o, field, s);
	return 0;
}

static void
codec_add_i64(struct json_object *o, const char *field, int64_t v)
{
	char text[24];

	snprintf(text, sizeof(text), "%lld", (long long)v);
	json_object_object_add(o, field, json_object_new_string(text));
}

size_t
ic_etcd_prefix_end(const char *prefix, size_t len, char *out)
{
	memcpy(out, prefix, len);
	while (len > 0 && (unsigned char)out[len - 1] == 0xff)
		len--;
	if (len > 0)
		out[len - 1] = (char)((unsigned char)out[len - 1] + 1);
	return len;
}

/* key, and range_end when prefix: the fields a range, a delete and a watch
 * share. */
static int
codec_add_key_range(struct json_object *o, const char *key, bool prefix)
{
	size_t len = strlen(key);
	char *end;
	int rc;

	rc = codec_add_bytes(o, "key", key, len);
	if (rc < 0 || !prefix)
		return rc;
	end = malloc(len + 1);
	if (!end)
		return -ENOMEM;
	len = ic_etcd_prefix_end(key, len, end);
	/* An empty end would read as "this key only": "\0" is every key. */
	rc = len ? codec_add_bytes(o, "range_end", end, len) : codec_add_bytes(o, "range_end", "", 1);
	free(end);
	return rc;
}

/* o, or NULL after freeing it when building it failed. */
static struct json_object *
codec_done(struct json_object *o, int rc)
{
	if (rc < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

struct json_object *
ic_etcd_req_range(const char *key, bool prefix)
{
	struct json_object *o = json_object_new_object();

	return o ? codec_done(o, codec_add_key_range(o, key, prefix)) : NULL;
}

struct json_object *
ic_etcd_req_range_at(const char *key, bool prefix, int64_t revision)
{
	struct json_object *o = ic_etcd_req_range(key, prefix);

	if (o && revision)
		codec_add_i64(o, "revision", revision);
	return o;
}

struct json_object *
ic_etcd_req_put(const char *key, const void *value, size_t len, int64_t lease)
{
	struct json_object *o = json_object_new_object();
	int rc;

	if (!o)
		return NULL;
	rc = codec_add_bytes(o, "key", key, strlen(key));
	if (rc == 0)
		rc = codec_add_bytes(o, "value", value, len);
	if (lease)
		codec_add_i64(o, "lease", lease);
	return codec_done(o, rc);
}

struct json_object *
ic_etcd_req_delete(const char *key, bool prefix)
{
	return ic_etcd_req_range(key, prefix);
}

static const char *const codec_targets[] = {
	[IC_ETCD_MOD] = "MOD",
	[IC_ETCD_CREATE] = "CREATE",
	[IC_ETCD_VERSION] = "VERSION",
	[IC_ETCD_VALUE] = "VALUE",
};
static const char *const codec_target_fields[] = {
	[IC_ETCD_MOD] = "mod_revision",
	[IC_ETCD_CREATE] = "create_revision",
	[IC_ETCD_VERSION] = "version",
	[IC_ETCD_VALUE] = "value",
};
static const char *const codec_results[] = {
	[IC_ETCD_EQUAL] = "EQUAL",
	[IC_ETCD_NOT_EQUAL] = "NOT_EQUAL",
	[IC_ETCD_GREATER] = "GREATER",
	[IC_ETCD_LESS] = "LESS",
};

static struct json_object *
codec_cmp(const struct ic_etcd_cmp *c)
{
	struct json_object *o = json_object_new_object();
	int rc;

	if (!o)
		return NULL;
	rc = codec_add_key_range(o, c->key, c->prefix);
	json_object_object_add(o, "target", json_object_new_string(codec_targets[c->target]));
	json_object_object_add(o, "result", json_object_new_string(codec_results[c->result]));
	if (c->target == IC_ETCD_VALUE)
		rc = rc ? rc : codec_add_bytes(o, "value", c->value, c->value_len);
	else
		codec_add_i64(o, codec_target_fields[c->target], c->number);
	return codec_done(o, rc);
}

static struct json_object *
codec_op(const struct ic_etcd_op *op)
{
	static const char *const names[] = {
		[IC_ETCD_OP_PUT] = "request_put",
		[IC_ETCD_OP_DELETE] = "request_delete_range",
		[IC_ETCD_OP_GET] = "request_range",
	};
	struct json_object *req, *o;

	req = op->type == IC_ETCD_OP_PUT
		      ? ic_etcd_req_put(op->key, op->value, op->value_len, op->lease)
		      : ic_etcd_req_range(op->key, op->prefix);
	if (req && op->type != IC_ETCD_OP_PUT && op->end &&
	    codec_add_bytes(req, "range_end", op->end, strlen(op->end)) < 0) {
		json_object_put(req);
		req = NULL;
	}
	if (!req)
		return NULL;
	o = json_object_new_object();
	if (!o) {
		json_object_put(req);
		return NULL;
	}
	json_object_object_add(o, names[op->type], req);
	return o;
}

/* o[field] = [each op], left out when there are none. */
static int
codec_add_ops(struct json_object *o, const char *field, const struct ic_etcd_op *ops, unsigned n)
{
	struct json_object *a;

	if (n == 0)
		return 0;
	a = json_object_new_array();
	if (!a)
		return -ENOMEM;
	json_object_object_add(o, field, a);
	for (unsigned i = 0; i < n; i++) {
		struct json_object *e = codec_op(&ops[i]);

		if (!e)
			return -ENOMEM;
		json_object_array_add(a, e);
	}
	return 0;
}

struct json_object *
ic_etcd_req_txn(const struct ic_etcd_cmp *cmp, unsigned ncmp, const struct ic_etcd_op *success,
		unsigned nsuccess, const struct ic_etcd_op *failure, unsigned nfailure)
{
	struct json_object *o = json_object_new_object(), *a;
	int rc = 0;

	if (!o)
		return NULL;
	if (ncmp) {
		a = json_object_new_array();
		if (!a)
			return codec_done(o, -ENOMEM);
		json_object_object_add(o, "compare", a);
		for (unsigned i = 0; i < ncmp && rc == 0; i++) {
			struct json_object *c = codec_cmp(&cmp[i]);

			if (!c)
				rc = -ENOMEM;
			else
				json_object_array_add(a, c);
		}
	}
	if (rc == 0)
		rc = codec_add_ops(o, "success", success, nsuccess);
	if (rc == 0)
		rc = codec_add_ops(o, "failure", failure, nfailure);
	return codec_done(o, rc);
}

/* {field: v} */
static struct json_object *
codec_req_i64(const char *field, int64_t v)
{
	struct json_object *o = json_object_new_object();

	if (o)
		codec_add_i64(o, field, v);
	return o;
}

struct json_object *
ic_etcd_req_authenticate(const char *name, const char *password)
{
	struct json_object *o = json_object_new_object(), *n, *p;

	if (!o)
		return NULL;
	n = json_object_new_string(name);
	p = json_object_new_string(password);
	json_object_object_add(o, "name", n);
	json_object_object_add(o, "password", p);
	return codec_done(o, n && p ? 0 : -ENOMEM);
}

struct json_object *
ic_etcd_req_lease_ttl(int64_t ttl_s)
{
	return codec_req_i64("TTL", ttl_s);
}

struct json_object *
ic_etcd_req_lease_id(int64_t id)
{
	return codec_req_i64("ID", id);
}

struct json_object *
ic_etcd_req_watch(const char *key, bool prefix, int64_t start_rev)
{
	struct json_object *o = json_object_new_object(), *create;
	int rc;

	if (!o)
		return NULL;
	create = json_object_new_object();
	if (!create)
		return codec_done(o, -ENOMEM);
	json_object_object_add(o, "create_request", create);
	rc = codec_add_key_range(create, key, prefix);
	if (start_rev)
		codec_add_i64(create, "start_revision", start_rev);
	return codec_done(o, rc);
}

/* gRPC status codes (google.golang.org/grpc/codes) as errno. */
static int
codec_grpc_errno(int64_t code)
{
	switch (code) {
	case 1: return -ECANCELED;  /* Canceled */
	case 3: return -EINVAL;     /* InvalidArgument */
	case 4: return -ETIMEDOUT;  /* DeadlineExceeded */
	case 5: return -ENOENT;     /* NotFound */
	case 6: return -EEXIST;     /* AlreadyExists */
	case 7: return -EACCES;     /* PermissionDenied */
	case 8: return -ENOSPC;     /* ResourceExhausted */
	case 9: return -ESTALE;     /* FailedPrecondition */
	case 11: return -ERANGE;    /* OutOfRange: revision compacted */
	case 14: return -EAGAIN;    /* Unavailable: no leader */
	case 16: return -EKEYEXPIRED; /* Unauthenticated: the auth token is no longer valid */
	default: return -EIO;
	}
}

int
ic_etcd_decode_error(struct json_object *o, char *msg, size_t cap)
{
	const char *code_field = "code";
	struct json_object *m;
	int64_t code = 0;

	if (!json_object_is_type(o, json_type_object) ||
	    (!json_object_object_get_ex(o, "error", NULL) &&
	     !json_object_object_get_ex(o, "code", NULL)))
		return 0;
	/* A stream's error is an object of its own: {"error": {"grpc_code": N,
	 * "message": ...}}. */
	if (json_object_object_get_ex(o, "error", &m) && json_object_is_type(m, json_type_object)) {
		o = m;
		code_field = "grpc_code";
	}
	if (!json_object_object_get_ex(o, "message", &m) &&
	    !json_object_object_get_ex(o, "error", &m))
		m = NULL;
	snprintf(msg, cap, "%s", m ? json_object_get_string(m) : "error without a message");
	if (ic_etcd_get_i64(o, code_field, &code) < 0 || code == 0)
		return -EIO;
	/* The user's roles changed since the token was made: a new token
	 * is what etcd asks for, as for one that ended. */
	if (strstr(msg, "revision of auth store is old"))
		return -EKEYEXPIRED;
	/* Refused before it was proposed, or a proposal the leader dropped
	 * (it is handing its leadership over): in no log, applied nowhere.
	 * Like "no leader", worth the next member. etcd 3.4 passes raft's
	 * error on as gRPC's Unknown, and says "too many requests" as
	 * ResourceExhausted, which is also a full database. */
	if (strstr(msg, "raft proposal dropped") || strstr(msg, "etcdserver: too many requests"))
		return -EAGAIN;
	/* Unavailable, but proposed: it timed out waiting to be applied, or
	 * the member stopped with it. It may yet be applied, so only a
	 * request safe to send twice may go to the next member: its outcome
	 * is unknown, as when no answer came or the connection was cut. */
	if (strstr(msg, "etcdserver: request timed out"))
		return -ETIMEDOUT;
	if (strstr(msg, "etcdserver: server stopped"))
		return -ECONNRESET;
	return codec_grpc_errno(code);
}

int
ic_etcd_get_i64(struct json_object *o, const char *field, int64_t *out)
{
	struct json_object *v;
	const char *s;
	char *end;

	*out = 0;
	if (!json_object_object_get_ex(o, field, &v))
		return 0;
	if (json_object_is_type(v, json_type_int)) {
		*out = json_object_get_int64(v);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -EPROTO;
	s = json_object_get_string(v);
	errno = 0;
	*out = strtoll(s, &end, 10);
	return *s && !*end && !errno ? 0 : -EPROTO;
}

int
ic_etcd_decode_revision(struct json_object *o, int64_t *out)
{
	struct json_object *h;

	*out = 0;
	if (!json_object_object_get_ex(o, "header", &h))
		return -EPROTO;
	return ic_etcd_get_i64(h, "revision", out);
}

/* o[field], base64, decoded into a malloc'd buffer ("" when absent). */
static int
codec_get_bytes(struct json_object *o, const char *field, void **out, size_t *len)
{
	struct json_object *v;
	int rc;

	if (!json_object_object_get_ex(o, field, &v))
		return ic_etcd_b64_decode("", 0, out, len);
	if (!json_object_is_type(v, json_type_string))
		return -EPROTO;
	rc = ic_etcd_b64_decode(json_object_get_string(v), (size_t)json_object_get_string_len(v), out,
				len);
	return rc == -EINVAL ? -EPROTO : rc;
}

void
ic_etcd_kv_free(struct ic_etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

void
ic_etcd_kvs_free(struct ic_etcd_kvs *kvs)
{
	for (size_t i = 0; i < kvs->n; i++)
		ic_etcd_kv_free(&kvs->kv[i]);
	free(kvs->kv);
	memset(kvs, 0, sizeof(*kvs));
}

int
ic_etcd_decode_kv(struct json_object *o, struct ic_etcd_kv *out)
{
	size_t klen;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!json_object_is_type(o, json_type_object))
		return -EPROTO;
	rc = codec_get_bytes(o, "key", (void **)&out->key, &klen);
	if (rc == 0)
		rc = codec_get_bytes(o, "value", &out->value, &out->value_len);
	if (rc == 0 && memchr(out->key, '\0', klen))
		rc = -EPROTO; /* keys are text here */
	if (rc == 0)
		rc = ic_etcd_get_i64(o, "create_revision", &out->create_revision);
	if (rc == 0)
		rc = ic_etcd_get_i64(o, "mod_revision", &out->mod_revision);
	if (rc == 0)
		rc = ic_etcd_get_i64(o, "version", &out->version);
	if (rc == 0)
		rc = ic_etcd_get_i64(o, "lease", &out->lease);
	if (rc < 0)
		ic_etcd_kv_free(out);
	return rc;
}

int
ic_etcd_decode_kvs(struct json_object *o, struct ic_etcd_kvs *out)
{
	struct json_object *a;
	struct ic_etcd_kv *grown;
	size_t n;
	int rc;

	if (!json_object_object_get_ex(o, "kvs", &a))
		return 0;
	if (!json_object_is_type(a, json_type_array))
		return -EPROTO;
	n = json_object_array_length(a);
	if (n == 0)
		return 0;
	grown = realloc(out->kv, (out->n + n) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	out->kv = grown;
	for (size_t i = 0; i < n; i++) {
		rc = ic_etcd_decode_kv(json_object_array_get_idx(a, i), &out->kv[out->n]);
		if (rc < 0)
			return rc;
		out->n++;
	}
	return 0;
}

int
ic_etcd_decode_txn(struct json_object *o, struct ic_etcd_txn_result *out)
{
	struct json_object *v, *a;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = ic_etcd_decode_revision(o, &out->revision);
	if (rc < 0)
		return rc;
	out->got.revision = out->revision;
	out->succeeded = json_object_object_get_ex(o, "succeeded", &v) && json_object_get_boolean(v);
	if (!json_object_object_get_ex(o, "responses", &a))
		return 0;
	if (!json_object_is_type(a, json_type_array))
		return -EPROTO;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *range;

		if (!json_object_object_get_ex(json_object_array_get_idx(a, i), "response_range",
					       &range))
			continue;
		rc = ic_etcd_decode_kvs(range, &out->got);
		if (rc < 0) {
			ic_etcd_kvs_free(&out->got);
			return rc;
		}
	}
	return 0;
}

int
ic_etcd_decode_lease(struct json_object *o, int64_t *id, int64_t *ttl)
{
	struct json_object *result;
	int rc;

	if (json_object_object_get_ex(o, "result", &result))
		o = result;
	if (!json_object_object_get_ex(o, "header", NULL))
		return -EPROTO;
	rc = ic_etcd_get_i64(o, "ID", id);
	return rc ? rc : ic_etcd_get_i64(o, "TTL", ttl);
}

int
ic_etcd_decode_token(struct json_object *o, char *out, size_t cap)
{
	struct json_object *t;
	const char *s;

	if (!json_object_object_get_ex(o, "token", &t) || !(s = json_object_get_string(t)) ||
	    !*s || strlen(s) >= cap || strpbrk(s, "\r\n"))
		return -EPROTO;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/* json-c's tokener keeps its state across calls and says where each
 * message ended, so a chunk may hold the end of one message, whole ones and
 * the start of the next. */
int
ic_etcd_stream_feed(struct json_tokener *tok, const char *data, size_t len,
		    ic_etcd_stream_fn fn, void *arg)
{
	size_t off = 0;

	while (off < len) {
		struct json_object *msg = json_tokener_parse_ex(tok, data + off, (int)(len - off));
		int rc;

		if (!msg)
			return json_tokener_get_error(tok) == json_tokener_continue ? 0 : -EPROTO;
		off += json_tokener_get_parse_end(tok);
		rc = fn(arg, msg);
		json_object_put(msg);
		if (rc)
			return rc;
	}
	return 0;
}
