/* Watch through the gateway's streaming /v3/watch: one long POST whose
 * answer is a stream of JSON messages, read as they come by the transport.
 * The first says the watch was created; each later one carries events in
 * revision order. A watch from a compacted revision is canceled by etcd
 * (-ERANGE): the caller reads the state anew and watches from there. */
#include "etcd/internal.h"

#include <errno.h>
#include <string.h>

struct watch_ctx {
	struct ic_etcd *etcd;
	ic_etcd_watch_fn fn;
	void *arg;
};

static int
watch_event(struct watch_ctx *w, struct json_object *e)
{
	struct ic_etcd_event ev = { .type = IC_ETCD_EVENT_PUT };
	struct json_object *type, *kv;
	int rc;

	if (json_object_object_get_ex(e, "type", &type) &&
	    strcmp(json_object_get_string(type), "DELETE") == 0)
		ev.type = IC_ETCD_EVENT_DELETE;
	if (!json_object_object_get_ex(e, "kv", &kv))
		return -EPROTO;
	rc = ic_etcd_decode_kv(kv, &ev.kv);
	if (rc < 0)
		return rc;
	rc = w->fn(w->arg, &ev);
	ic_etcd_kv_free(&ev.kv);
	return rc ? 1 : 0;
}

static int
watch_message(void *arg, struct json_object *msg)
{
	struct watch_ctx *w = arg;
	struct json_object *result, *events, *flag;
	char text[300];
	int64_t compacted = 0;
	int rc;

	rc = ic_etcd_decode_error(msg, text, sizeof(text));
	if (rc < 0) {
		ic_etcd_fail(w->etcd, "watch: %s", text);
		return rc;
	}
	if (!json_object_object_get_ex(msg, "result", &result)) {
		ic_etcd_fail(w->etcd, "watch: a message without a result");
		return -EPROTO;
	}
	if (json_object_object_get_ex(result, "canceled", &flag) && json_object_get_boolean(flag)) {
		const char *reason = json_object_object_get_ex(result, "cancel_reason", &flag)
					     ? json_object_get_string(flag)
					     : NULL;

		ic_etcd_get_i64(result, "compact_revision", &compacted);
		if (compacted) {
			ic_etcd_fail(w->etcd, "watch canceled (revisions up to %lld compacted)",
				     (long long)compacted);
			return -ERANGE;
		}
		ic_etcd_fail(w->etcd, "watch canceled: %s", reason ? reason : "no reason given");
		/* etcd's reason is a gRPC status: "rpc error: code = Unauthenticated ..." */
		if (reason && (strstr(reason, "code = Unauthenticated") ||
			       strstr(reason, "revision of auth store is old")))
			return -EKEYEXPIRED;
		if (reason && strstr(reason, "code = PermissionDenied"))
			return -EACCES;
		return -ECANCELED;
	}
	if (!json_object_object_get_ex(result, "events", &events))
		return 0; /* created, or progress */
	for (size_t i = 0; i < json_object_array_length(events); i++) {
		rc = watch_event(w, json_object_array_get_idx(events, i));
		if (rc == -EPROTO)
			ic_etcd_fail(w->etcd, "watch: a malformed event");
		if (rc)
			return rc;
	}
	return 0;
}

int
ic_etcd_watch(struct ic_etcd *etcd, const char *key, bool prefix, int64_t start_rev,
	      unsigned timeout_ms, ic_etcd_watch_fn fn, void *arg)
{
	struct watch_ctx w = { .etcd = etcd, .fn = fn, .arg = arg };

	return ic_etcd_stream(etcd, "watch", ic_etcd_req_watch(key, prefix, start_rev), timeout_ms,
			      watch_message, &w);
}
