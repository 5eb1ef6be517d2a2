/* etcd/ inside: base64, the gateway's JSON (codec.c, pure, unit-tested in
 * tests/unit/test_etcd_*.c) and the transport every operation goes through
 * (transport.c). */
#ifndef IC_ETCD_INTERNAL_H
#define IC_ETCD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "etcd/etcd.h"

/* ---- base64 (RFC 4648, with padding), base64.c ---- */
/* Characters base64 of len bytes takes, without the NUL. */
#define IC_ETCD_B64_LEN(len) ((((len) + 2) / 3) * 4)
/* Encode len bytes into out (cap bytes, NUL-terminated). Returns the length
 * or -ENOSPC. */
int ic_etcd_b64_encode(const void *data, size_t len, char *out, size_t cap);
/* Decode text (tlen characters) into a malloc'd buffer with a NUL after the
 * bytes. Returns 0, -EINVAL (not base64) or -ENOMEM. */
int ic_etcd_b64_decode(const char *text, size_t tlen, void **out, size_t *len);

/* ---- requests (codec.c): each returns a new object, NULL on ENOMEM ---- */
/* The end of the range of keys starting with prefix (len bytes) into out
 * (len bytes): the prefix with its last byte below 0xff incremented and the
 * rest cut. Returns the end's length; 0 means "every key" (a prefix of 0xff
 * bytes only), which the gateway spells "\0". */
size_t ic_etcd_prefix_end(const char *prefix, size_t len, char *out);
struct json_object *ic_etcd_req_range(const char *key, bool prefix);
/* The same at a revision (0: now). */
struct json_object *ic_etcd_req_range_at(const char *key, bool prefix, int64_t revision);
struct json_object *ic_etcd_req_put(const char *key, const void *value, size_t len,
				    int64_t lease);
struct json_object *ic_etcd_req_delete(const char *key, bool prefix);
struct json_object *ic_etcd_req_txn(const struct ic_etcd_cmp *cmp, unsigned ncmp,
				    const struct ic_etcd_op *success, unsigned nsuccess,
				    const struct ic_etcd_op *failure, unsigned nfailure);
/* {"name": name, "password": password} */
struct json_object *ic_etcd_req_authenticate(const char *name, const char *password);
/* {"TTL": ttl} or {"ID": id} */
struct json_object *ic_etcd_req_lease_ttl(int64_t ttl_s);
struct json_object *ic_etcd_req_lease_id(int64_t id);
struct json_object *ic_etcd_req_watch(const char *key, bool prefix, int64_t start_rev);

/* ---- answers (codec.c) ---- */
/* What a streamed message (watch) is handed to: 0 goes on, > 0 stops the
 * stream (no error), < 0 stops it with that error. */
typedef int (*ic_etcd_stream_fn)(void *arg, struct json_object *msg);
/* Feed len bytes of a stream of JSON messages (as they arrive: a message
 * may span calls, one call may hold several) to tok; fn gets each complete
 * message, owned by the caller of fn. Returns 0 once every byte is taken,
 * fn's first non-zero return, or -EPROTO when the bytes are not JSON. */
int ic_etcd_stream_feed(struct json_tokener *tok, const char *data, size_t len,
			ic_etcd_stream_fn fn, void *arg);
/* An error reply, {"error": ..., "code": N, "message": ...}: its gRPC code
 * as -errno, and etcd's message into msg (cap bytes). 0 if o is no error. */
int ic_etcd_decode_error(struct json_object *o, char *msg, size_t cap);
/* o[field] as a 64-bit integer: the gateway writes int64 as a string and
 * leaves out zero values. Returns 0 or -EPROTO (present but no integer). */
int ic_etcd_get_i64(struct json_object *o, const char *field, int64_t *out);
/* header.revision of an answer. */
int ic_etcd_decode_revision(struct json_object *o, int64_t *out);
/* One kv object into out (caller frees). -EPROTO for a malformed one. */
int ic_etcd_decode_kv(struct json_object *o, struct ic_etcd_kv *out);
/* A range answer's "kvs" appended to out. */
int ic_etcd_decode_kvs(struct json_object *o, struct ic_etcd_kvs *out);
/* A txn answer: succeeded, header.revision, and the kvs of response_range. */
int ic_etcd_decode_txn(struct json_object *o, struct ic_etcd_txn_result *out);
/* A lease grant or keepalive answer (keepalive's is wrapped in "result"):
 * ID and TTL (0 when the lease is gone). */
int ic_etcd_decode_lease(struct json_object *o, int64_t *id, int64_t *ttl);

/* An authenticate answer's token into out (cap bytes). -EPROTO when there
 * is none, it is too long, or it holds a line break (it becomes a header). */
int ic_etcd_decode_token(struct json_object *o, char *out, size_t cap);

/* ---- credentials (auth.c) ---- */
#define IC_ETCD_USER_MAX 128
#define IC_ETCD_PASSWORD_MAX 256
#define IC_ETCD_TOKEN_MAX 4096 /* a JWT signed with RSA-4096 takes 700 and more */
/* ISOCACHE_ETCD_USER into user (IC_ETCD_USER_MAX bytes; "" when unset).
 * Returns 0 or -EINVAL (logged): a user without ISOCACHE_ETCD_PASSWORD_FILE,
 * or a password file without a user. */
int ic_etcd_auth_user(char *user);
/* The password, read now from ISOCACHE_ETCD_PASSWORD_FILE (so that a
 * password changed in the file is used at the next authentication), into
 * out (IC_ETCD_PASSWORD_MAX bytes), without its trailing line break.
 * Returns 0, or -errno with why in why (cap bytes): the file unreadable,
 * not a regular file, readable by group or others, empty or too long. */
int ic_etcd_auth_password(char *out, char *why, size_t cap);

/* ---- transport (transport.c) ---- */

/* POST req (consumed) to /v3/<path> of the current member, failing over as
 * etcd.h says, within timeout_ms (0: the client's). On success *answer is
 * the parsed JSON answer (caller puts it). Error replies become -errno with
 * the message recorded and logged. */
int ic_etcd_call(struct ic_etcd *etcd, const char *path, struct json_object *req,
		 unsigned timeout_ms, struct json_object **answer);
/* When (ic_now_ms) the last call's last attempt was sent: after a call
 * that succeeded, the sending of the request that was answered. */
int64_t ic_etcd_attempt_ms(const struct ic_etcd *etcd);
/* The same for a streaming call (/v3/watch): fn gets each JSON message as it
 * arrives (owned by the caller of fn) until it returns non-zero (< 0: that
 * error) or timeout_ms passes (-ETIMEDOUT). */
int ic_etcd_stream(struct ic_etcd *etcd, const char *path, struct json_object *req,
		   unsigned timeout_ms, ic_etcd_stream_fn fn, void *arg);
/* Renew a lease within timeout_ms (lease.c; the keeper bounds each renewal
 * by the validity it has left). */
int ic_etcd_lease_renew(struct ic_etcd *etcd, int64_t id, unsigned timeout_ms, int64_t *ttl);
/* The monotonic clock in milliseconds: deadlines and lease validity. */
/* Record and log an error found above the transport ("etcd EP: what"). */
void ic_etcd_fail(struct ic_etcd *etcd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
