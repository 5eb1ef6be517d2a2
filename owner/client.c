/* The client side of ownership (docs/OWNERSHIP.md, docs/CONTROL-PROTOCOL.md):
 * what isocache-admin owner shows and asks, a live snapshot asked of the
 * owner, and STATS and FILTER requests to a live process by socket path. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "owner/ctlmsg.h"
#include "owner/internal.h"

#define OWNER_POLICY_WAIT_MS 500 /* owner show: how long to wait for its policy */

static int
owner_info(struct owner_store *os, struct ic_meta_txn *txn, const char *name,
	   struct ic_owner_info *out)
{
	int rc = ic_meta_owner_get(txn, name, &out->rec);

	if (rc == -ENOENT) {
		out->rec = (struct ic_owner_rec){ 0 };
		rc = 0;
	}
	/* In etcd a record lives exactly as long as its owner's lease. */
	out->alive = rc == 0 && (ic_meta_etcd_url(os->meta) ? !owner_none(&out->rec)
							     : owner_lock_held(os, name) == 1);
	out->policy[0] = '\0';
	return rc;
}

/* The record of vdisk name, quietly; -ENOENT when there is no such vdisk. */
static int
owner_lookup(struct owner_store *os, const char *name, struct ic_owner_info *out)
{
	struct ic_meta_txn *txn;
	uint64_t id;
	int rc = ic_meta_begin(os->meta, false, &txn);

	if (rc)
		return rc;
	rc = strchr(name, '@') ? -ENOENT : ic_meta_name_get(txn, name, &id);
	if (rc == 0)
		rc = owner_info(os, txn, name, out);
	ic_meta_abort(txn);
	return rc;
}

int
owner_remote_snapshot(struct owner_store *os, const char *name, const char *image)
{
	IC_AUTOFREE uint8_t *buf = NULL;
	struct ctl_msg req = { .type = CTL_SNAPSHOT, .seq = 1 }, reply;
	struct ic_owner_info info;
	struct owner_etcd cfg;
	int rc = owner_etcd_config(os, &cfg);

	/* Owned through etcd: its owner may be on another host, which only
	 * etcd reaches. */
	if (rc)
		return rc < 0 ? rc : owner_remote_snapshot_ask(&cfg, name, image);
	rc = owner_lookup(os, name, &info);
	if (rc || !info.alive || !info.rec.socket[0])
		return 1; /* errors are reported by the local path */
	buf = malloc(CTL_REPLY_BUF);
	if (!buf)
		return -ENOMEM;
	snprintf(req.snapshot.image, sizeof(req.snapshot.image), "%s", image);
	rc = ctl_call(info.rec.socket, &req, IC_RELEASE_TIMEOUT_MS * 6, buf, &reply);
	if (rc == -ECONNREFUSED || rc == -ENOENT)
		return 1; /* it exited meanwhile */
	if (rc) {
		ic_log(IC_LOG_ERR, "%s: the owner (pid %u) did not take the snapshot: %s", name,
		       info.rec.pid, strerror(-rc));
		return rc;
	}
	if (reply.reply.status)
		ic_log(IC_LOG_ERR, "%s: the owner (pid %u) could not take the snapshot: %s", name,
		       info.rec.pid, reply.reply.text);
	else
		ic_log(IC_LOG_INFO, "%s: taken live by the owner (pid %u)", image, info.rec.pid);
	return reply.reply.status;
}

/* ---- the public ownership API (isocache-admin owner) ---- */

/* The owner's policy, from its STATS answer ("policy":"when-idle"); left
 * empty, quietly, when the owner does not answer promptly. */
static void
owner_policy(struct ic_owner_info *info)
{
	IC_AUTOFREE uint8_t *buf = NULL;
	struct ctl_msg req = { .type = CTL_STATS, .seq = 1 }, reply;
	struct json_object *stats, *policy;

	if (!info->alive || !info->rec.socket[0] || !(buf = malloc(CTL_REPLY_BUF)) ||
	    ctl_call(info->rec.socket, &req, OWNER_POLICY_WAIT_MS, buf, &reply) ||
	    reply.reply.status)
		return;
	stats = json_tokener_parse(reply.reply.text);
	if (json_object_object_get_ex(stats, "policy", &policy) &&
	    json_object_is_type(policy, json_type_string))
		snprintf(info->policy, sizeof(info->policy), "%s", json_object_get_string(policy));
	json_object_put(stats);
}

/* owner_lookup, saying so when there is no such vdisk. */
static int
owner_find(struct owner_store *os, const char *name, struct ic_owner_info *out)
{
	int rc = owner_lookup(os, name, out);

	if (rc == -ENOENT)
		ic_log(IC_LOG_ERR, "%s: no such vdisk in %s", name, os->dir);
	return rc;
}

int
owner_show(struct owner_store *os, const char *name, struct ic_owner_info *out)
{
	int rc = owner_find(os, name, out);

	if (rc == 0)
		owner_policy(out);
	return rc;
}

struct owner_list_ctx {
	struct ic_meta_txn *txn;
	char (*names)[IC_NAME_MAX + 1];
	size_t n;
};

static int
owner_list_one(void *arg, const char *name, uint64_t id)
{
	struct owner_list_ctx *c = arg;
	void *grown;

	(void)id;
	if (strchr(name, '@') || strlen(name) > IC_NAME_MAX)
		return 0;
	grown = realloc(c->names, (c->n + 1) * sizeof(*c->names));
	if (!grown)
		return -ENOMEM;
	c->names = grown;
	snprintf(c->names[c->n++], IC_NAME_MAX + 1, "%s", name);
	return 0;
}

int
owner_list(struct owner_store *os,
	      int (*fn)(void *arg, const char *name, const struct ic_owner_info *info), void *arg)
{
	struct owner_list_ctx c = { 0 };
	int rc = ic_meta_begin(os->meta, false, &c.txn);

	if (rc)
		return rc;
	rc = ic_meta_name_foreach(c.txn, owner_list_one, &c);
	ic_meta_abort(c.txn);
	/* Ask each live owner its policy outside any transaction. */
	for (size_t i = 0; rc == 0 && i < c.n; i++) {
		struct ic_owner_info info;

		rc = owner_show(os, c.names[i], &info);
		if (rc == 0)
			rc = fn(arg, c.names[i], &info);
	}
	free(c.names);
	return rc;
}

int
owner_release_request(struct owner_store *os, const char *name, unsigned timeout_ms, char *said,
		 size_t cap)
{
	struct owner_claim claim;
	struct ic_owner_info info;
	int rc = owner_find(os, name, &info);

	if (rc)
		return rc;
	snprintf(said, cap, "%s", info.alive ? "released" : "nobody owned it");
	rc = owner_acquire(os, name, "isocache-admin owner release", timeout_ms, IC_TAKEOVER_ASK, said,
			   cap, &claim);
	if (rc == 0)
		rc = owner_release(os, &claim);
	return rc;
}

int
owner_takeover(struct owner_store *os, const char *name, unsigned timeout_ms)
{
	struct owner_claim claim;
	struct ic_owner_info info;
	int rc = owner_find(os, name, &info);

	if (rc == 0)
		rc = owner_acquire(os, name, "isocache-admin owner takeover", timeout_ms, IC_TAKEOVER_FORCE,
				   NULL, 0, &claim);
	if (rc == 0)
		rc = owner_release(os, &claim);
	return rc;
}

/* ---- requests to another process ---- */

static int
control_request(const char *socket, const struct ctl_msg *req, char *buf, size_t cap)
{
	IC_AUTOFREE uint8_t *in = malloc(CTL_REPLY_BUF);
	struct ctl_msg reply;
	int rc;

	if (!in)
		return -ENOMEM;
	rc = ctl_call(socket, req, IC_RELEASE_TIMEOUT_MS, in, &reply);
	if (rc) {
		ic_log(IC_LOG_ERR, "control socket %s: %s", socket, strerror(-rc));
		return rc;
	}
	snprintf(buf, cap, "%s", reply.reply.text);
	if (reply.reply.status)
		ic_log(IC_LOG_ERR, "%s", reply.reply.text);
	return reply.reply.status;
}

int
ic_control_stats(const char *socket, char *buf, size_t cap)
{
	struct ctl_msg req = { .type = CTL_STATS, .seq = 1 };

	return control_request(socket, &req, buf, cap);
}

int
ic_control_filter(const char *socket, enum ic_control_filter_cmd op, const char *arg, int pos,
		  char *buf, size_t cap)
{
	struct ctl_msg req = { .type = CTL_FILTER, .seq = 1 };

	req.filter.op = (uint32_t)op;
	req.filter.pos = pos;
	snprintf(req.filter.arg, sizeof(req.filter.arg), "%s", arg ? arg : "");
	return control_request(socket, &req, buf, cap);
}
