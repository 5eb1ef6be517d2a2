/* etcd/base64.c and etcd/codec.c: what the client sends to etcd's JSON
 * gateway, and how it reads the answers, checked on answers captured from
 * etcd 3.4 (error replies included) without a server. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/json.h"
#include "etcd/internal.h"

#define HEADER                                                                            \
	"\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":"              \
	"\"13668033151171901709\",\"revision\":\"5\",\"raft_term\":\"2\"}"

/* The request as the gateway will read it; frees o. */
static void
assert_json(struct json_object *o, const char *want)
{
	assert_non_null(o);
	assert_string_equal(json_object_to_json_string_ext(o, IC_JSON_FLAGS), want);
	json_object_put(o);
}

static void
test_b64_vectors(void **state)
{
	static const char *const vec[][2] = {
		{ "", "" },         { "f", "Zg==" },        { "fo", "Zm8=" },
		{ "foo", "Zm9v" },  { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	char out[16];
	void *dec;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		assert_int_equal(ic_etcd_b64_encode(vec[i][0], strlen(vec[i][0]), out, sizeof(out)),
				 (int)strlen(vec[i][1]));
		assert_string_equal(out, vec[i][1]);
		assert_int_equal(ic_etcd_b64_decode(vec[i][1], strlen(vec[i][1]), &dec, &len), 0);
		assert_int_equal(len, strlen(vec[i][0]));
		assert_memory_equal(dec, vec[i][0], len);
		assert_int_equal(((char *)dec)[len], '\0');
		free(dec);
	}
	assert_int_equal(ic_etcd_b64_encode("foo", 3, out, 4), -ENOSPC);
}

static void
test_b64_binary(void **state)
{
	unsigned char data[256];
	char text[IC_ETCD_B64_LEN(256) + 1];
	void *dec;
	size_t len;

	(void)state;
	for (int i = 0; i < 256; i++)
		data[i] = (unsigned char)(255 - i);
	for (size_t n = 0; n <= sizeof(data); n += 37) {
		assert_true(ic_etcd_b64_encode(data, n, text, sizeof(text)) >= 0);
		assert_int_equal(ic_etcd_b64_decode(text, strlen(text), &dec, &len), 0);
		assert_int_equal(len, n);
		assert_memory_equal(dec, data, n);
		free(dec);
	}
}

static void
test_b64_refused(void **state)
{
	static const char *const bad[] = { "Zm9", "Z===", "Zm9v!A==", "=AAA", "Zg=a", "Zm9vZg==Zm9v",
					   "Zm 9" };
	void *dec;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ic_etcd_b64_decode(bad[i], strlen(bad[i]), &dec, &len) != -EINVAL)
			fail_msg("'%s' decoded", bad[i]);
}

static void
test_prefix_end(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(ic_etcd_prefix_end("/t/", 3, out), 3);
	assert_memory_equal(out, "/t0", 3);
	assert_int_equal(ic_etcd_prefix_end("a\xff\xff", 3, out), 1);
	assert_memory_equal(out, "b", 1);
	assert_int_equal(ic_etcd_prefix_end("\xff\xff", 2, out), 0);
}

static void
test_req_kv(void **state)
{
	(void)state;
	assert_json(ic_etcd_req_range("foo", false), "{\"key\":\"Zm9v\"}");
	/* "/t/" .. "/t0" */
	assert_json(ic_etcd_req_range("/t/", true), "{\"key\":\"L3Qv\",\"range_end\":\"L3Qw\"}");
	/* A prefix of 0xff only: every key, range_end "\0". */
	assert_json(ic_etcd_req_range("\xff", true), "{\"key\":\"/w==\",\"range_end\":\"AA==\"}");
	assert_json(ic_etcd_req_put("foo", "bar", 3, 0), "{\"key\":\"Zm9v\",\"value\":\"YmFy\"}");
	assert_json(ic_etcd_req_put("foo", "", 0, 7587),
		    "{\"key\":\"Zm9v\",\"value\":\"\",\"lease\":\"7587\"}");
	assert_json(ic_etcd_req_delete("/t/", true), "{\"key\":\"L3Qv\",\"range_end\":\"L3Qw\"}");
	assert_json(ic_etcd_req_lease_ttl(5), "{\"TTL\":\"5\"}");
	assert_json(ic_etcd_req_lease_id(4111120463689420041),
		    "{\"ID\":\"4111120463689420041\"}");
	assert_json(ic_etcd_req_watch("foo", false, 12),
		    "{\"create_request\":{\"key\":\"Zm9v\",\"start_revision\":\"12\"}}");
	assert_json(ic_etcd_req_watch("/t/", true, 0),
		    "{\"create_request\":{\"key\":\"L3Qv\",\"range_end\":\"L3Qw\"}}");
}

static void
test_req_txn(void **state)
{
	const struct ic_etcd_cmp cmp[] = {
		{ .key = "foo", .target = IC_ETCD_MOD, .result = IC_ETCD_EQUAL, .number = 0 },
		{ .key = "foo", .target = IC_ETCD_VALUE, .result = IC_ETCD_NOT_EQUAL, .value = "x",
		  .value_len = 1 },
		{ .key = "foo", .target = IC_ETCD_VERSION, .result = IC_ETCD_LESS, .number = 3 },
		{ .key = "foo", .target = IC_ETCD_CREATE, .result = IC_ETCD_GREATER, .number = 2 },
	};
	const struct ic_etcd_op success[] = {
		{ .type = IC_ETCD_OP_PUT, .key = "foo", .value = "x", .value_len = 1, .lease = 9 },
		{ .type = IC_ETCD_OP_DELETE, .key = "/t/", .prefix = true },
	};
	const struct ic_etcd_op failure[] = { { .type = IC_ETCD_OP_GET, .key = "foo" } };

	(void)state;
	assert_json(ic_etcd_req_txn(cmp, 4, success, 2, failure, 1),
		    "{\"compare\":["
		    "{\"key\":\"Zm9v\",\"target\":\"MOD\",\"result\":\"EQUAL\",\"mod_revision\":\"0\"},"
		    "{\"key\":\"Zm9v\",\"target\":\"VALUE\",\"result\":\"NOT_EQUAL\",\"value\":\"eA==\"},"
		    "{\"key\":\"Zm9v\",\"target\":\"VERSION\",\"result\":\"LESS\",\"version\":\"3\"},"
		    "{\"key\":\"Zm9v\",\"target\":\"CREATE\",\"result\":\"GREATER\","
		    "\"create_revision\":\"2\"}],"
		    "\"success\":[{\"request_put\":{\"key\":\"Zm9v\",\"value\":\"eA==\",\"lease\":\"9\"}},"
		    "{\"request_delete_range\":{\"key\":\"L3Qv\",\"range_end\":\"L3Qw\"}}],"
		    "\"failure\":[{\"request_range\":{\"key\":\"Zm9v\"}}]}");
	assert_json(ic_etcd_req_txn(NULL, 0, NULL, 0, NULL, 0), "{}");
}

static struct json_object *
parse(const char *text)
{
	struct json_object *o = json_tokener_parse(text);

	assert_non_null(o);
	return o;
}

static void
test_decode_errors(void **state)
{
	static const struct {
		const char *answer;
		int rc;
		const char *msg;
	} cases[] = {
		/* revoke or put with a lease that is gone (HTTP 404) */
		{ "{\"error\":\"etcdserver: requested lease not found\",\"message\":"
		  "\"etcdserver: requested lease not found\",\"code\":5}",
		  -ENOENT, "etcdserver: requested lease not found" },
		{ "{\"error\":\"etcdserver: no leader\",\"code\":14}", -EAGAIN,
		  "etcdserver: no leader" },
		{ "{\"error\":\"mvcc: required revision has been compacted\",\"code\":11}", -ERANGE,
		  "mvcc: required revision has been compacted" },
		{ "{\"error\":\"etcdserver: request timed out\",\"code\":4}", -ETIMEDOUT,
		  "etcdserver: request timed out" },
		/* users on: a token that ended (expired, or its user's password
		 * changed) is told from a refusal, to authenticate again */
		{ "{\"error\":\"etcdserver: invalid auth token\",\"message\":"
		  "\"etcdserver: invalid auth token\",\"code\":16}",
		  -EKEYEXPIRED, "etcdserver: invalid auth token" },
		{ "{\"error\":\"etcdserver: permission denied\",\"code\":7}", -EACCES,
		  "etcdserver: permission denied" },
		/* a write the leader dropped as it handed its leadership over:
		 * applied nowhere (gRPC Unknown, as etcd 3.4 sends it) */
		{ "{\"error\":\"raft proposal dropped\",\"message\":\"raft proposal dropped\","
		  "\"code\":2}",
		  -EAGAIN, "raft proposal dropped" },
		{ "{\"error\":\"etcdserver: too many requests\",\"code\":8}", -EAGAIN,
		  "etcdserver: too many requests" },
		{ "{\"error\":\"etcdserver: mvcc: database space exceeded\",\"code\":8}", -ENOSPC,
		  "etcdserver: mvcc: database space exceeded" },
		/* unavailable, but proposed: it may yet be applied, so it is not
		 * "no leader" (which another member may take at once) */
		{ "{\"error\":\"etcdserver: request timed out\",\"code\":14}", -ETIMEDOUT,
		  "etcdserver: request timed out" },
		{ "{\"error\":\"etcdserver: request timed out, possibly due to previous leader "
		  "failure\",\"code\":14}",
		  -ETIMEDOUT, "etcdserver: request timed out, possibly due to previous leader failure" },
		{ "{\"error\":\"etcdserver: server stopped\",\"code\":14}", -ECONNRESET,
		  "etcdserver: server stopped" },
		{ "{\"error\":\"odd\",\"code\":99}", -EIO, "odd" },
		{ "{\"code\":3}", -EINVAL, "error without a message" },
		/* an error inside a stream (watch) */
		{ "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no leader\","
		  "\"http_status\":\"Service Unavailable\"}}",
		  -EAGAIN, "etcdserver: no leader" },
		{ "{" HEADER "}", 0, "" },
	};
	char msg[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct json_object *o = parse(cases[i].answer);

		msg[0] = '\0';
		assert_int_equal(ic_etcd_decode_error(o, msg, sizeof(msg)), cases[i].rc);
		assert_string_equal(msg, cases[i].msg);
		json_object_put(o);
	}
}

static void
test_decode_range(void **state)
{
	struct json_object *o = parse(
		"{" HEADER ",\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"3\","
		"\"version\":\"2\",\"value\":\"eA==\"},{\"key\":\"Zm9vMg==\",\"create_revision\":\"4\","
		"\"mod_revision\":\"4\",\"version\":\"1\",\"lease\":\"7587\"}],\"count\":\"2\"}");
	struct ic_etcd_kvs kvs = { 0 };
	int64_t rev;

	(void)state;
	assert_int_equal(ic_etcd_decode_revision(o, &rev), 0);
	assert_int_equal(rev, 5);
	assert_int_equal(ic_etcd_decode_kvs(o, &kvs), 0);
	json_object_put(o);
	assert_int_equal(kvs.n, 2);
	assert_string_equal(kvs.kv[0].key, "foo");
	assert_int_equal(kvs.kv[0].value_len, 1);
	assert_string_equal(kvs.kv[0].value, "x");
	assert_int_equal(kvs.kv[0].create_revision, 2);
	assert_int_equal(kvs.kv[0].mod_revision, 3);
	assert_int_equal(kvs.kv[0].version, 2);
	assert_int_equal(kvs.kv[0].lease, 0);
	/* An empty value is left out by the gateway. */
	assert_string_equal(kvs.kv[1].key, "foo2");
	assert_int_equal(kvs.kv[1].value_len, 0);
	assert_int_equal(kvs.kv[1].lease, 7587);
	ic_etcd_kvs_free(&kvs);

	/* No "kvs": nothing there. */
	o = parse("{" HEADER "}");
	assert_int_equal(ic_etcd_decode_kvs(o, &kvs), 0);
	assert_int_equal(kvs.n, 0);
	json_object_put(o);
}

static void
test_decode_malformed(void **state)
{
	static const char *const bad[] = {
		"{" HEADER ",\"kvs\":{}}",
		"{" HEADER ",\"kvs\":[{\"key\":\"Zm9\"}]}",
		"{" HEADER ",\"kvs\":[{\"key\":\"Zm9v\",\"mod_revision\":\"3x\"}]}",
		"{" HEADER ",\"kvs\":[{\"key\":\"Zm9v\",\"version\":true}]}",
		"{" HEADER ",\"kvs\":[{\"key\":\"AGI=\"}]}", /* a NUL in a key */
		"{" HEADER ",\"kvs\":[7]}",
	};
	struct ic_etcd_kvs kvs = { 0 };
	int64_t rev;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_object *o = parse(bad[i]);

		if (ic_etcd_decode_kvs(o, &kvs) != -EPROTO)
			fail_msg("accepted %s", bad[i]);
		ic_etcd_kvs_free(&kvs);
		json_object_put(o);
	}
	struct json_object *o = parse("{\"kvs\":[]}");
	assert_int_equal(ic_etcd_decode_revision(o, &rev), -EPROTO);
	json_object_put(o);
}

static void
test_decode_txn(void **state)
{
	struct ic_etcd_txn_result res;
	struct json_object *o;

	(void)state;
	o = parse("{" HEADER ",\"succeeded\":true,\"responses\":[{\"response_put\":{\"header\":"
		  "{\"revision\":\"5\"}}}]}");
	assert_int_equal(ic_etcd_decode_txn(o, &res), 0);
	assert_true(res.succeeded);
	assert_int_equal(res.revision, 5);
	assert_int_equal(res.got.n, 0);
	json_object_put(o);

	/* Lost: "succeeded" left out; the failure branch's range read. */
	o = parse("{" HEADER ",\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"5\"},"
		  "\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"3\","
		  "\"version\":\"2\",\"value\":\"eA==\"}],\"count\":\"1\"}}]}");
	assert_int_equal(ic_etcd_decode_txn(o, &res), 0);
	assert_false(res.succeeded);
	assert_int_equal(res.got.n, 1);
	assert_int_equal(res.got.kv[0].mod_revision, 3);
	ic_etcd_kvs_free(&res.got);
	json_object_put(o);
}

static void
test_decode_lease(void **state)
{
	struct json_object *o;
	int64_t id, ttl;

	(void)state;
	o = parse("{" HEADER ",\"ID\":\"4111120463689420041\",\"TTL\":\"5\"}");
	assert_int_equal(ic_etcd_decode_lease(o, &id, &ttl), 0);
	assert_int_equal(id, 4111120463689420041);
	assert_int_equal(ttl, 5);
	json_object_put(o);
	/* keepalive: wrapped in "result" */
	o = parse("{\"result\":{" HEADER ",\"ID\":\"42\",\"TTL\":\"3\"}}");
	assert_int_equal(ic_etcd_decode_lease(o, &id, &ttl), 0);
	assert_int_equal(id, 42);
	assert_int_equal(ttl, 3);
	json_object_put(o);
	/* keepalive of a lease that is gone: no TTL, no error */
	o = parse("{\"result\":{" HEADER ",\"ID\":\"12345\"}}");
	assert_int_equal(ic_etcd_decode_lease(o, &id, &ttl), 0);
	assert_int_equal(id, 12345);
	assert_int_equal(ttl, 0);
	json_object_put(o);
	o = parse("{\"ID\":\"1\"}");
	assert_int_equal(ic_etcd_decode_lease(o, &id, &ttl), -EPROTO);
	json_object_put(o);
}

/* Authentication: the request, and the token of etcd 3.4's answer (it
 * becomes a header: a line break in it is refused). */
static void
test_authenticate(void **state)
{
	struct json_object *o;
	char token[64];

	(void)state;
	assert_json(ic_etcd_req_authenticate("hosta", "p\"w"),
		    "{\"name\":\"hosta\",\"password\":\"p\\\"w\"}");
	o = parse("{" HEADER ",\"token\":\"cBWkkKHMSprPOaXi.14\"}");
	assert_int_equal(ic_etcd_decode_token(o, token, sizeof(token)), 0);
	assert_string_equal(token, "cBWkkKHMSprPOaXi.14");
	assert_int_equal(ic_etcd_decode_token(o, token, 8), -EPROTO);
	json_object_put(o);
	o = parse("{" HEADER ",\"token\":\"abc\\r\\nX-Evil: 1\"}");
	assert_int_equal(ic_etcd_decode_token(o, token, sizeof(token)), -EPROTO);
	json_object_put(o);
	o = parse("{" HEADER "}");
	assert_int_equal(ic_etcd_decode_token(o, token, sizeof(token)), -EPROTO);
	json_object_put(o);
}

/* Two watch messages as etcd 3.4's gateway streamed them, newline after each. */
static const char watch_stream[] =
	"{\"result\":{" HEADER ",\"created\":true}}\n"
	"{\"result\":{" HEADER ",\"events\":[{\"kv\":{\"key\":\"Zm9v\",\"create_revision\":\"2\","
	"\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"YmFy\"}},{\"type\":\"DELETE\","
	"\"kv\":{\"key\":\"Zm9v\",\"mod_revision\":\"4\"}}]}}\n";

struct collected {
	int n;
	int stop_at; /* stop (return 1) at this message, 0 = never */
	bool created;
	int64_t last_mod;
};

static int
collect(void *arg, struct json_object *msg)
{
	struct collected *c = arg;
	struct json_object *result, *events;
	struct ic_etcd_kv kv;

	c->n++;
	assert_true(json_object_object_get_ex(msg, "result", &result));
	if (c->n == 1)
		c->created = json_object_object_get_ex(result, "created", NULL);
	if (json_object_object_get_ex(result, "events", &events)) {
		assert_int_equal(json_object_array_length(events), 2);
		assert_int_equal(ic_etcd_decode_kv(json_object_object_get(
						   json_object_array_get_idx(events, 1), "kv"),
						   &kv),
				 0);
		c->last_mod = kv.mod_revision;
		ic_etcd_kv_free(&kv);
	}
	return c->n == c->stop_at;
}

/* Every way of cutting the stream in two, and byte by byte: the same two
 * messages, whole, in order. */
static void
test_stream_chunks(void **state)
{
	size_t len = strlen(watch_stream);
	struct json_tokener *tok = json_tokener_new();

	(void)state;
	for (size_t cut = 0; cut <= len; cut++) {
		struct collected c = { 0 };

		json_tokener_reset(tok);
		assert_int_equal(ic_etcd_stream_feed(tok, watch_stream, cut, collect, &c), 0);
		assert_int_equal(ic_etcd_stream_feed(tok, watch_stream + cut, len - cut, collect, &c),
				 0);
		assert_int_equal(c.n, 2);
		assert_true(c.created);
		assert_int_equal(c.last_mod, 4);
	}
	struct collected c = { 0 };

	json_tokener_reset(tok);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(ic_etcd_stream_feed(tok, watch_stream + i, 1, collect, &c), 0);
	assert_int_equal(c.n, 2);
	json_tokener_free(tok);
}

static void
test_stream_stop_and_garbage(void **state)
{
	struct json_tokener *tok = json_tokener_new();
	struct collected c = { .stop_at = 1 };

	(void)state;
	/* The callback's stop ends the feed at the first message. */
	assert_int_equal(ic_etcd_stream_feed(tok, watch_stream, strlen(watch_stream), collect, &c),
			 1);
	assert_int_equal(c.n, 1);
	/* An HTML error page is no stream of JSON. */
	json_tokener_reset(tok);
	c = (struct collected){ 0 };
	assert_int_equal(ic_etcd_stream_feed(tok, "<html>502</html>", 16, collect, &c), -EPROTO);
	assert_int_equal(c.n, 0);
	json_tokener_free(tok);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_vectors),    cmocka_unit_test(test_b64_binary),
		cmocka_unit_test(test_b64_refused),    cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_req_kv),         cmocka_unit_test(test_req_txn),
		cmocka_unit_test(test_decode_errors),  cmocka_unit_test(test_decode_range),
		cmocka_unit_test(test_decode_malformed), cmocka_unit_test(test_decode_txn),
		cmocka_unit_test(test_decode_lease),   cmocka_unit_test(test_stream_chunks),
		cmocka_unit_test(test_stream_stop_and_garbage), cmocka_unit_test(test_authenticate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
