/* A claim across hosts (docs/MULTI-HOST.md §4): the proof of ownership is
 * an etcd lease, not a kernel lock. A claim grants a lease and, in one txn,
 * puts the record attached to it only if no record exists; the put's
 * revision R is the fencing token. A keeper thread (etcd/keeper.c) renews
 * the lease, and the claim is valid only until the last renewal SENT + TTL
 * - margin: owner_fenced() reads that before every write, so an owner cut
 * off from etcd stops writing before etcd can expire its lease and let a
 * claimant in. A commit checks that the record still has revision R, so a
 * deposed owner never commits a map; a release deletes the record only if
 * it is still R's, then revokes the lease.
 *
 * A write that passed that check may still be on its way to the leaf when
 * the lease runs out (the owner's process paused, its filesystem client
 * holding it). So the claim also puts held/NAME, with no lease, which only
 * a release deletes (once nothing writes); a claimant that finds it took
 * the vdisk from an owner that never released it (taken_over), and
 * writes to a new leaf (vdisk/open.c).
 *
 * Threads: the claim's etcd client is used under mu (the commit thread's
 * checks, a release); the keeper pointer under keeper_lock, read-locked by
 * every owner_lease_valid, so a release may stop the keeper while I/O
 * threads still look. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "owner/internal.h"

struct owner_lease {
	struct owner_etcd cfg;
	char key[OWNER_ETCD_KEY_MAX];     /* owners/NAME */
	char release_key[OWNER_ETCD_KEY_MAX]; /* release/NAME/: the requests */
	char held_key[OWNER_ETCD_KEY_MAX];    /* held/NAME: claimed, not released */
	char name[IC_NAME_MAX + 1];
	int64_t id;                       /* the etcd lease */
	int64_t token;                    /* R: the record's mod_revision */
	struct owner_claim *claim;        /* fenced when the lease is lost */
	pthread_mutex_t mu;
	struct ic_etcd *etcd;             /* under mu */
	pthread_rwlock_t keeper_lock;
	struct ic_etcd_keeper *keeper;    /* NULL once released */
	atomic_bool lost;                 /* the keeper gave it up; not released since */
};

int
owner_etcd_config(const struct owner_store *os, struct owner_etcd *cfg)
{
	const struct ic_etcd_url *store = os->meta ? ic_meta_etcd_url(os->meta) : NULL;
	/* Ownership in etcd for a local store: where hosts share a local
	 * store's directory (the hosts of one machine in tests), the stand-in
	 * for a store whose metadata is in etcd. */
	const char *url = getenv("ISOCACHE_OWNER_ETCD");
	const char *ttl = getenv("ISOCACHE_LEASE_TTL");
	char *end;
	unsigned long v = OWNER_LEASE_TTL_S;

	if (!store && (!url || !url[0]))
		return 0;
	if (ttl && ttl[0]) {
		errno = 0;
		v = strtoul(ttl, &end, 10);
		if (errno || *end || v < 1 || v > 3600) {
			ic_log(IC_LOG_ERR, "ISOCACHE_LEASE_TTL=%s: give the lease's TTL in whole "
			       "seconds, 1 to 3600", ttl);
			return -EINVAL;
		}
	}
	/* The margin: a fifth of the TTL covers two clocks' rate drift over a
	 * TTL (parts per million) and a write in flight, with room to spare. */
	*cfg = (struct owner_etcd){ .meta = store ? os->meta : NULL, .ttl_s = (unsigned)v,
				    .margin_ms = (unsigned)v * 200 };
	if (store)
		cfg->url = *store;
	else if (ic_etcd_url_parse(url, &cfg->url))
		return -EINVAL;
	return 1;
}

int
owner_etcd_key(const struct owner_etcd *cfg, const char *kind, const char *name, char *buf,
	       size_t cap)
{
	int n;

	if (cfg->meta)
		return ic_meta_etcd_key(cfg->meta, kind, name, buf, cap);
	/* The layout of a store in etcd (docs/MULTI-HOST.md §3). */
	n = snprintf(buf, cap, "/isocache/%s/%s/%s", cfg->url.prefix, kind, name);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int
owner_etcd_requests(const struct owner_etcd *cfg, const char *name, char *buf, size_t cap)
{
	size_t len;
	int rc = owner_etcd_key(cfg, "release", name, buf, cap);

	if (rc)
		return rc;
	/* The slash keeps release/vm2/... out of release/vm/'s range. */
	len = strlen(buf);
	if (len + 2 > cap)
		return -ENAMETOOLONG;
	memcpy(buf + len, "/", 2);
	return 0;
}

/* The keeper lost the lease (validity ran out, or etcd says it is gone):
 * fence the claim, as a RELEASE does. */
static void
lease_lost(void *arg, int64_t lease, int err)
{
	struct owner_lease *l = arg;

	if (err != -ENOENT) /* else etcd says it is gone, and the record with it */
		atomic_store(&l->lost, true);
	owner_fence(l->claim, "its etcd lease was lost");
	ic_log(IC_LOG_ERR, "%s: fenced: its etcd lease %lld was lost (%s); every write now "
	       "fails (ESTALE)", l->name, (long long)lease, strerror(-err));
}

bool
owner_lease_valid(struct owner_lease *lease)
{
	bool valid;

	pthread_rwlock_rdlock(&lease->keeper_lock);
	valid = lease->keeper && ic_etcd_keeper_valid(lease->keeper);
	pthread_rwlock_unlock(&lease->keeper_lock);
	return valid;
}

/* Claim won: keep the lease alive from now on and fill out. */
static int
lease_hold(const struct owner_etcd *cfg, struct ic_etcd **etcd, const char *name, int64_t id,
	   int64_t token, struct owner_claim *out)
{
	struct owner_lease *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return -ENOMEM;
	l->cfg = *cfg;
	snprintf(l->name, sizeof(l->name), "%s", name);
	/* Both fit: owner_lease_try made them in buffers of this size. */
	owner_etcd_key(cfg, "owners", name, l->key, sizeof(l->key));
	owner_etcd_requests(cfg, name, l->release_key, sizeof(l->release_key));
	owner_etcd_key(cfg, OWNER_HELD_KIND, name, l->held_key, sizeof(l->held_key));
	l->id = id;
	l->token = token;
	l->claim = out;
	pthread_mutex_init(&l->mu, NULL);
	pthread_rwlock_init(&l->keeper_lock, NULL);
	out->lock_fd = -1;
	out->fenced = NULL;
	rc = ic_etcd_keeper_start(&cfg->url, OWNER_ETCD_TIMEOUT_MS, id, cfg->ttl_s, cfg->margin_ms,
				  lease_lost, l, &l->keeper);
	if (rc) {
		pthread_rwlock_destroy(&l->keeper_lock);
		pthread_mutex_destroy(&l->mu);
		free(l);
		return rc;
	}
	l->etcd = *etcd;
	*etcd = NULL;
	out->lease = l;
	return 0;
}

/* A claim found held/NAME (was) of an owner that never released it. */
static void
lease_taken_over(const char *name, const struct ic_etcd_kv *was)
{
	struct ic_owner_rec prev = { 0 };

	ic_meta_owner_decode(was->value, was->value_len, &prev);
	ic_log(IC_LOG_WARN, "%s: its previous owner %s (pid %u, token %lld) never released it; "
	       "writes it had under way may still reach its leaf", name,
	       prev.who[0] ? prev.who : "(unknown)", prev.pid, (long long)was->mod_revision);
}

int
owner_lease_try(const struct owner_etcd *cfg, struct ic_etcd **etcd, const char *name,
		const struct ic_owner_rec *self, struct owner_claim *out,
		struct ic_owner_rec *seen, struct owner_found *found)
{
	char key[OWNER_ETCD_KEY_MAX], release[OWNER_ETCD_KEY_MAX], seal[OWNER_ETCD_KEY_MAX];
	char held[OWNER_ETCD_KEY_MAX];
	uint8_t value[IC_OWNER_REC_BYTES];
	struct ic_etcd_txn_result res = { 0 };
	const struct ic_etcd_kv *rec = NULL, *sealed = NULL, *was = NULL;
	int64_t id;
	int rc = owner_etcd_key(cfg, "owners", name, key, sizeof(key));

	if (rc == 0)
		rc = owner_etcd_requests(cfg, name, release, sizeof(release));
	if (rc == 0)
		rc = owner_etcd_key(cfg, OWNER_SEAL_KIND, OWNER_SEAL_NAME, seal, sizeof(seal));
	if (rc == 0)
		rc = owner_etcd_key(cfg, OWNER_HELD_KIND, name, held, sizeof(held));
	if (rc)
		return rc;
	ic_meta_owner_encode(self, value);
	rc = ic_etcd_lease_grant(*etcd, cfg->ttl_s, &id, NULL);
	if (rc)
		return rc;
	{
		/* Nobody owns it, and its store is not being destroyed. held/NAME
		 * is read before it is put: a previous owner's still there means
		 * that owner never released the vdisk. */
		const struct ic_etcd_cmp none[] = {
			{ .key = key, .target = IC_ETCD_CREATE, .result = IC_ETCD_EQUAL },
			{ .key = seal, .target = IC_ETCD_CREATE, .result = IC_ETCD_EQUAL },
		};
		const struct ic_etcd_op put[] = {
			{ .type = IC_ETCD_OP_GET, .key = held },
			{ .type = IC_ETCD_OP_PUT, .key = key, .value = value,
			  .value_len = sizeof(value), .lease = id },
			{ .type = IC_ETCD_OP_PUT, .key = held, .value = value,
			  .value_len = sizeof(value) },
			{ .type = IC_ETCD_OP_DELETE, .key = release, .prefix = true },
		};
		const struct ic_etcd_op get[] = { { .type = IC_ETCD_OP_GET, .key = key },
						  { .type = IC_ETCD_OP_GET, .key = seal } };

		rc = ic_etcd_txn(*etcd, none, 2, put, 4, get, 2, 0, &res);
	}
	for (size_t i = 0; rc == 0 && i < res.got.n; i++) {
		if (strcmp(res.got.kv[i].key, key) == 0)
			rec = &res.got.kv[i];
		else if (strcmp(res.got.kv[i].key, seal) == 0)
			sealed = &res.got.kv[i];
		else if (strcmp(res.got.kv[i].key, held) == 0)
			was = &res.got.kv[i];
	}
	if (rc == 0 && res.succeeded) {
		/* The txn's puts: the store's revision after it is the record's
		 * mod_revision, the fencing token, and held/NAME's. */
		rc = lease_hold(cfg, etcd, name, id, res.revision, out);
		if (rc == 0) {
			ic_log(IC_LOG_INFO, "%s: claimed through etcd (lease %lld, TTL %u s, token "
			       "%lld)", name, (long long)id, cfg->ttl_s, (long long)res.revision);
			out->taken_over = was != NULL;
			if (was)
				lease_taken_over(name, was);
			ic_etcd_kvs_free(&res.got);
			return 0;
		}
	} else if (rc == 0 && sealed) {
		ic_log(IC_LOG_ERR, "%s: its store is being destroyed (by %.*s); not claiming it",
		       name, (int)sealed->value_len, (const char *)sealed->value);
		rc = -ESHUTDOWN;
	} else if (rc == 0) {
		*found = rec ? (struct owner_found){ rec->lease, rec->mod_revision }
			     : (struct owner_found){ 0 };
		*seen = (struct ic_owner_rec){ 0 };
		rc = rec ? ic_meta_owner_decode(rec->value, rec->value_len, seen) : 0;
		if (rc)
			ic_log(IC_LOG_ERR, "%s: its ownership record in etcd (%s) is damaged", name,
			       key);
		rc = rc ? rc : -EBUSY;
	}
	ic_etcd_kvs_free(&res.got);
	/* Not ours: the lease holds nothing; ending it now spares etcd the TTL. */
	if (*etcd && ic_etcd_lease_revoke(*etcd, id) && rc == 0)
		rc = -EIO;
	return rc;
}

/* owner_lease_valid for a metadata commit under the lease: not waited for
 * once the lease may have run out (ic_meta_txn_fence). */
static bool
lease_still_valid(void *l)
{
	return owner_lease_valid(l);
}

int
owner_lease_check(struct owner_lease *l, struct ic_meta_txn *txn)
{
	struct ic_etcd_kv kv = { 0 };
	int rc = txn ? ic_meta_txn_fence(txn, l->key, l->token, lease_still_valid, l)
		     : -EOPNOTSUPP;

	/* A store in etcd: the commit itself compares the token, atomically. */
	if (rc != -EOPNOTSUPP) {
		if (rc == 0 && !owner_lease_valid(l))
			rc = -ESTALE;
		if (rc == -ESTALE)
			ic_log(IC_LOG_ERR, "%s: its etcd lease is no longer valid; not writing",
			       l->name);
		return rc;
	}
	/* A local store (ownership alone in etcd): read the record, then
	 * commit; the window between is the commit's own length. */
	pthread_mutex_lock(&l->mu);
	rc = ic_etcd_get(l->etcd, l->key, &kv);
	pthread_mutex_unlock(&l->mu);
	if (rc && rc != -ENOENT)
		return rc;
	if (rc == 0 && kv.mod_revision == l->token && owner_lease_valid(l)) {
		ic_etcd_kv_free(&kv);
		return 0;
	}
	ic_log(IC_LOG_ERR, "%s: no longer ours in etcd (record %s, token %lld%s); not writing",
	       l->name, rc ? "gone" : "rewritten", (long long)l->token,
	       owner_lease_valid(l) ? "" : ", lease no longer valid");
	if (rc == 0)
		ic_etcd_kv_free(&kv);
	return -ESTALE;
}

void
owner_lease_release(struct owner_lease *l)
{
	const struct ic_etcd_cmp ours = { .key = l->held_key, .target = IC_ETCD_MOD,
					  .result = IC_ETCD_EQUAL, .number = l->token };
	const struct ic_etcd_op unhold = { .type = IC_ETCD_OP_DELETE, .key = l->held_key };
	struct ic_etcd_txn_result res = { 0 };

	pthread_mutex_lock(&l->mu);
	/* Nothing writes under the claim any more (the caller quiesced or
	 * closed it): the next claim is clean. Only our own held/NAME goes,
	 * and not while a previous owner's late writes may still reach the
	 * leaf (a claim taken over that did not leave it: an admin command),
	 * nor once the lease may have run out (etcd may be out of reach: one
	 * call to wait out is enough); left, the next claim takes a new leaf. */
	if (!l->claim->taken_over && owner_lease_valid(l) &&
	    ic_etcd_txn(l->etcd, &ours, 1, &unhold, 1, NULL, 0, 0, &res))
		ic_log(IC_LOG_WARN, "%s: %s not deleted; the next owner will write to a new leaf",
		       l->name, l->held_key);
	ic_etcd_kvs_free(&res.got);
	/* Revoking ends the lease now, and the record, put on it, goes with
	 * it (a record another claim wrote since is on that claim's lease).
	 * A revocation may be sent twice: it moves on from a member that
	 * hangs, which a conditional delete of the record could not. Etcd
	 * unreachable: the lease and record go when the TTL runs out. */
	if (ic_etcd_lease_revoke(l->etcd, l->id))
		ic_log(IC_LOG_WARN, "%s: etcd lease %lld not revoked; it expires within %u s",
		       l->name, (long long)l->id, l->cfg.ttl_s);
	pthread_mutex_unlock(&l->mu);
	owner_lease_stop(l);
	/* The keeper, stopped only now, takes the revoked lease for lost. */
	atomic_store(&l->lost, false);
}

void
owner_lease_abandon(struct owner_lease *l)
{
	int rc;

	if (!atomic_load(&l->lost))
		return;
	atomic_store(&l->lost, false);
	/* One call: the record, put on this lease, goes with it; a record
	 * another claim wrote since is on that claim's lease. */
	pthread_mutex_lock(&l->mu);
	rc = ic_etcd_lease_revoke(l->etcd, l->id);
	pthread_mutex_unlock(&l->mu);
	if (rc)
		ic_log(IC_LOG_WARN, "%s: etcd lease %lld, taken for lost, not revoked (%s); etcd "
		       "expires it within %u s of having a leader", l->name, (long long)l->id,
		       strerror(-rc), l->cfg.ttl_s);
	else
		ic_log(IC_LOG_INFO, "%s: etcd lease %lld, taken for lost, revoked with its record: "
		       "etcd may have held it still (a new leader renews every lease)", l->name,
		       (long long)l->id);
}

void
owner_lease_stop(struct owner_lease *l)
{
	struct ic_etcd_keeper *keeper;

	pthread_rwlock_wrlock(&l->keeper_lock);
	keeper = l->keeper;
	l->keeper = NULL;
	pthread_rwlock_unlock(&l->keeper_lock);
	ic_etcd_keeper_stop(keeper);
}

void
owner_lease_free(struct owner_lease *l)
{
	if (!l)
		return;
	ic_etcd_keeper_stop(l->keeper);
	ic_etcd_close(l->etcd);
	pthread_rwlock_destroy(&l->keeper_lock);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

const char *
owner_lease_key(const struct owner_lease *lease)
{
	return lease->key;
}

const char *
owner_lease_release_key(const struct owner_lease *lease)
{
	return lease->release_key;
}

int64_t
owner_lease_token(const struct owner_lease *lease)
{
	return lease->token;
}

const struct owner_etcd *
owner_lease_etcd(const struct owner_lease *lease)
{
	return &lease->cfg;
}

/* ---- the store's seal while it is destroyed ---- */

/* The seal's key and a client to reach it: 1, 0 when ownership is not in
 * etcd, or -errno. */
static int
seal_open(struct owner_store *os, char *seal, struct ic_etcd **etcd)
{
	struct owner_etcd cfg;
	int rc = owner_etcd_config(os, &cfg);

	if (rc <= 0)
		return rc;
	rc = owner_etcd_key(&cfg, OWNER_SEAL_KIND, OWNER_SEAL_NAME, seal, OWNER_ETCD_KEY_MAX);
	if (rc == 0)
		rc = ic_etcd_open(&cfg.url, OWNER_ETCD_TIMEOUT_MS, etcd);
	return rc ? rc : 1;
}

int
owner_seal(struct owner_store *os, const char *who)
{
	struct ic_etcd *etcd = NULL;
	char seal[OWNER_ETCD_KEY_MAX] = "", by[IC_NAME_MAX + 64];
	int rc = seal_open(os, seal, &etcd);
	bool in_etcd = rc > 0;

	snprintf(by, sizeof(by), "%s pid %d", who, (int)getpid());
	if (in_etcd)
		rc = ic_etcd_put(etcd, seal, by, strlen(by), 0, NULL);
	ic_etcd_close(etcd);
	if (rc < 0)
		ic_log(IC_LOG_ERR, "cannot mark the store as being destroyed in etcd (%s): %s",
		       seal, strerror(-rc));
	return rc < 0 ? rc : in_etcd;
}

int
owner_unseal(struct owner_store *os)
{
	struct ic_etcd *etcd = NULL;
	char seal[OWNER_ETCD_KEY_MAX] = "";
	int rc = seal_open(os, seal, &etcd);

	if (rc > 0)
		rc = ic_etcd_delete(etcd, seal, false, NULL);
	ic_etcd_close(etcd);
	if (rc < 0)
		ic_log(IC_LOG_ERR, "the store's mark as being destroyed (%s) is left in etcd: %s; "
		       "vdisks cannot be claimed until destroy runs again", seal, strerror(-rc));
	return rc < 0 ? rc : 0;
}
