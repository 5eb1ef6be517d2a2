/* The etcd backend's commit (docs/MULTI-HOST.md §2): a write
 * transaction's buffered writes as one etcd txn, applied only if what the
 * transaction read still holds (meta/etcd_txn.c).
 *
 * - Every commit applies at most once (applied, it breaks one of its own
 *   compares), so one whose outcome is unknown (a member died or froze
 *   with it) is sent again; its failure branch reads back what it wrote,
 *   to tell an earlier attempt that was applied from a conflict.
 * - A commit larger than one etcd txn (128 writes, 1 MiB of values) whose
 *   surplus is chunks of flattened maps new in it (a snapshot of a large
 *   image freezes its map whole) is sent in steps: those chunks first, in
 *   txns that carry every compare of the commit, then the rest. No one
 *   reads a flattened map before the commit that freezes its disk, and
 *   each step compares that nothing else wrote under the map since the
 *   last, so the steps and the commit act as one; a step or commit that
 *   fails takes the chunks written ahead away again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "meta/etcd.h"

/* How a compare of the commit covers written key e, so that once the
 * commit is applied it cannot be applied again. */
enum etcd_cover {
	ETCD_UNCOVERED,
	/* read as absent, compared as "create_revision 0": that holds again
	 * once the key is deleted */
	ETCD_UNTIL_DELETED,
	/* read with a value, compared with its mod_revision; or under a walked
	 * prefix, compared as "nothing newer than the snapshot" (a deletion
	 * there rewrites the prefix's marker): neither holds again, whatever
	 * happens after */
	ETCD_LASTING,
};

static enum etcd_cover
etcd_entry_cover(const struct etcd_txn *txn, const struct etcd_entry *e)
{
	for (size_t i = 0; i < txn->nranges; i++)
		if (strncmp(e->key, txn->ranges[i], strlen(txn->ranges[i])) == 0)
			return ETCD_LASTING;
	if (e->point_read)
		return e->mod ? ETCD_LASTING : ETCD_UNTIL_DELETED;
	return ETCD_UNCOVERED;
}

/* After a failed compare: was it a fence? The failure branch read every
 * fenced key (got, in order; an absent key is not there). */
static bool
etcd_fence_broken(const struct etcd_txn *txn, const struct ic_etcd_kvs *got)
{
	for (unsigned i = 0; i < txn->nfences; i++) {
		bool held = false;

		for (size_t j = 0; j < got->n; j++)
			if (strcmp(got->kv[j].key, txn->fence[i].key) == 0)
				held = got->kv[j].mod_revision == txn->fence[i].mod;
		if (!held)
			return true;
	}
	return false;
}

/* Walked prefixes a commit may delete whole, each as one range. */
#define ETCD_CLEARED_MAX 8

struct etcd_commit {
	struct ic_etcd_cmp cmp[ETCD_TXN_OPS_MAX];
	struct ic_etcd_op op[ETCD_TXN_OPS_MAX];
	/* The chunk ranges [from, to) of the walked prefixes whose chunks it
	 * deletes, every one (etcd_commit_cleared): one deletion each. */
	char cleared[ETCD_CLEARED_MAX][2][ETCD_KEY_MAX + 2];
	unsigned ncleared;
	/* The failure branch: every fenced key, then written keys, read back
	 * to tell an earlier attempt that was applied from a conflict. */
	struct ic_etcd_op check[ETCD_TXN_OPS_MAX];
	const struct etcd_entry *checked[ETCD_TXN_OPS_MAX]; /* check[nfences + i]'s */
	unsigned ncmp, nop, ncheck, nchecked;
	bool once; /* applying it breaks one of its compares: safe to send again */
	/* A commit that only creates keys (etcd_commit_build): the deletion
	 * marker of one it creates, compared too. */
	char marker[ETCD_KEY_MAX];
	size_t bytes;
};

/* A commit sent in steps (see the top): per walked prefix
 * (txn->ranges[i]), the revision of the last step that wrote under it (0:
 * none yet); and while a step is built, which entries it writes. */
struct etcd_steps {
	int64_t *since;
	const bool *pick; /* NULL: the commit itself, every entry still dirty */
};

static bool
etcd_commit_writes(const struct etcd_steps *st, size_t i, const struct etcd_entry *e)
{
	return e->dirty && (!st || !st->pick || st->pick[i]);
}

/* Walked prefix r whose keys are all chunks and all deleted by the commit
 * (the maps of a disk removed): more than one is sent as one deletion of
 * their range, not a deletion each, so that a map of more chunks than a
 * transaction takes writes can be removed. The prefix's compare ("nothing
 * newer under it than the snapshot") holds the range to the keys the walk
 * read; its own key (the deletion marker) is written apart, before the
 * range. Not in steps, whose commits write only flattened maps. */
static bool
etcd_commit_cleared(const struct etcd_txn *txn, size_t r)
{
	const char *prefix = txn->ranges[r];
	size_t plen = strlen(prefix), deleted = 0;

	for (size_t i = 0; i < txn->n; i++) {
		const struct etcd_entry *e = &txn->e[i];

		uint64_t chunk;

		if (strncmp(e->key, prefix, plen) != 0 || !e->key[plen])
			continue;
		if (e->present || !etcd_chunk_name(e->key + plen, &chunk))
			return false;
		deleted += e->dirty;
	}
	return deleted > 1;
}

/* Does a range of c delete written entry e? */
static bool
etcd_commit_in_cleared(const struct etcd_commit *c, const struct etcd_entry *e)
{
	for (unsigned r = 0; r < c->ncleared; r++)
		if (strcmp(e->key, c->cleared[r][0]) >= 0 && strcmp(e->key, c->cleared[r][1]) < 0)
			return true;
	return false;
}

/* Read back written keys in the failure branch, as many as etcd takes
 * after the fences: keys with a value first (a deletion's marker holds
 * nothing of this commit's own). */
static void
etcd_commit_checks(const struct etcd_txn *txn, struct etcd_commit *c, const struct etcd_steps *st)
{
	for (int valued = 1; valued >= 0; valued--)
		for (size_t i = 0; i < txn->n && c->ncheck < ETCD_TXN_OPS_MAX; i++) {
			const struct etcd_entry *e = &txn->e[i];

			if (!etcd_commit_writes(st, i, e) || (e->present && e->len > 0) != valued)
				continue;
			c->check[c->ncheck++] = (struct ic_etcd_op){ .type = IC_ETCD_OP_GET,
								     .key = e->key };
			c->checked[c->nchecked++] = e;
		}
}

/* What the commit (or a step of it, st->pick) compares, writes and reads
 * back on failure; -E2BIG past etcd's limits. A commit that writes only
 * keys no compare covers (and read something: a snapshot to compare with)
 * gets one compare more, its first written key unchanged since the
 * snapshot, so that it too can be sent again after an attempt whose
 * outcome is unknown.
 *
 * Such a compare, and "read as absent", hold again once the key is
 * deleted. So a commit whose every compare is of that kind (one that
 * creates records: a clone, an import) could be applied twice: its first
 * attempt, held by a member that froze, applied after it was sent again,
 * applied, and its records then removed (an rm), would make them anew.
 * Such a commit also compares the deletion marker of a record it creates
 * (its table's prefix) as unchanged since the snapshot: while the record
 * lives, its own compare fails; once it is deleted, the marker's does.
 * The cost: it conflicts with a deletion in that table in the meantime,
 * and is refused with nothing written (-EAGAIN), as any conflict is. */
static int
etcd_commit_build(struct etcd_txn *txn, struct etcd_commit *c, const struct etcd_steps *st)
{
	size_t ncmp = txn->nfences + txn->nranges, nop = 0;
	const bool step = st && st->pick;
	const struct etcd_entry *guard = NULL, *created = NULL;
	bool lasting = false, marked;

	for (size_t r = 0; !step && r < txn->nranges && c->ncleared < ETCD_CLEARED_MAX; r++)
		if (etcd_commit_cleared(txn, r)) {
			etcd_chunk_range(txn->ranges[r], c->cleared[c->ncleared][0],
					 c->cleared[c->ncleared][1]);
			c->ncleared++;
			nop++;
		}
	for (size_t i = 0; i < txn->n; i++) {
		const struct etcd_entry *e = &txn->e[i];
		enum etcd_cover cover;

		ncmp += e->point_read;
		if (!etcd_commit_writes(st, i, e))
			continue;
		cover = etcd_entry_cover(txn, e);
		c->once |= cover != ETCD_UNCOVERED;
		lasting |= cover == ETCD_LASTING;
		if (!created && cover == ETCD_UNTIL_DELETED)
			created = e;
		guard = guard ? guard : e;
		if (etcd_commit_in_cleared(c, e))
			continue;
		nop++;
		c->bytes += e->len + strlen(e->key);
	}
	if (!guard) {
		c->once = true; /* nothing written: sent twice, the same */
	} else if (!c->once && txn->rev && !step) {
		ncmp++;
		created = guard;
	} else {
		guard = NULL;
	}
	marked = !lasting && created && !step &&
		 etcd_record_marker(txn->meta, created->key, c->marker) == 0;
	ncmp += marked;
	if (ncmp > ETCD_TXN_OPS_MAX || nop > ETCD_TXN_OPS_MAX || c->bytes > ETCD_TXN_BYTES_MAX) {
		ic_log(IC_LOG_INFO, "%s: a metadata commit of %zu compares, %zu writes and %zu bytes "
				    "is more than one etcd transaction takes (%u, %u, %u)",
		       txn->meta->text, ncmp, nop, c->bytes, ETCD_TXN_OPS_MAX, ETCD_TXN_OPS_MAX,
		       ETCD_TXN_BYTES_MAX);
		return -E2BIG;
	}
	for (unsigned i = 0; i < txn->nfences; i++) {
		c->cmp[c->ncmp++] = (struct ic_etcd_cmp){ .key = txn->fence[i].key,
							  .target = IC_ETCD_MOD,
							  .result = IC_ETCD_EQUAL,
							  .number = txn->fence[i].mod };
		c->check[c->ncheck++] =
			(struct ic_etcd_op){ .type = IC_ETCD_OP_GET, .key = txn->fence[i].key };
	}
	for (size_t i = 0; i < txn->nranges; i++) {
		int64_t since = st && st->since[i] ? st->since[i] : txn->rev;

		c->cmp[c->ncmp++] = (struct ic_etcd_cmp){ .key = txn->ranges[i], .prefix = true,
							  .target = IC_ETCD_MOD,
							  .result = IC_ETCD_LESS,
							  .number = since + 1 };
	}
	if (guard) {
		c->cmp[c->ncmp++] = (struct ic_etcd_cmp){ .key = guard->key, .target = IC_ETCD_MOD,
							  .result = IC_ETCD_LESS,
							  .number = txn->rev + 1 };
		c->once = true;
	}
	if (marked)
		c->cmp[c->ncmp++] = (struct ic_etcd_cmp){ .key = c->marker, .target = IC_ETCD_MOD,
							  .result = IC_ETCD_LESS,
							  .number = txn->rev + 1 };
	for (size_t i = 0; i < txn->n; i++) {
		const struct etcd_entry *e = &txn->e[i];

		if (e->point_read)
			c->cmp[c->ncmp++] = (struct ic_etcd_cmp){
				.key = e->key, .target = e->mod ? IC_ETCD_MOD : IC_ETCD_CREATE,
				.result = IC_ETCD_EQUAL, .number = e->mod
			};
		if (etcd_commit_writes(st, i, e) && !etcd_commit_in_cleared(c, e))
			c->op[c->nop++] = (struct ic_etcd_op){
				.type = e->present ? IC_ETCD_OP_PUT : IC_ETCD_OP_DELETE,
				.key = e->key, .value = e->val, .value_len = e->len
			};
	}
	for (unsigned r = 0; r < c->ncleared; r++)
		c->op[c->nop++] = (struct ic_etcd_op){ .type = IC_ETCD_OP_DELETE,
						       .key = c->cleared[r][0],
						       .end = c->cleared[r][1] };
	etcd_commit_checks(txn, c, st);
	return 0;
}

/* After a failed compare: was the commit applied by an earlier attempt
 * whose answer was lost (a connection cut after the request was sent, an
 * attempt that timed out, libcurl sending the request again on a new
 * connection)? Then every written key read back holds what the commit
 * wrote, all at one revision after the snapshot (returned; 0: not
 * applied), and every deleted key is gone. A commit that wrote no value
 * (deletions and their empty markers only) cannot be told from another
 * that deleted the same keys: 0. */
static int64_t
etcd_commit_applied(const struct etcd_txn *txn, const struct etcd_commit *c,
		    const struct ic_etcd_kvs *got)
{
	int64_t at = 0;
	bool valued = false;

	for (unsigned i = 0; i < c->nchecked; i++) {
		const struct etcd_entry *e = c->checked[i];
		const struct ic_etcd_kv *kv = NULL;

		for (size_t j = 0; j < got->n && !kv; j++)
			if (strcmp(got->kv[j].key, e->key) == 0)
				kv = &got->kv[j];
		if (!e->present) {
			if (kv)
				return 0;
			continue;
		}
		if (!kv || kv->mod_revision <= txn->rev || (at && kv->mod_revision != at) ||
		    kv->value_len != e->len || (e->len && memcmp(kv->value, e->val, e->len) != 0))
			return 0;
		at = kv->mod_revision;
		valued |= e->len > 0;
	}
	return valued ? at : 0;
}

/* The request reached a member and no answer came (-ETIMEDOUT,
 * -ECONNRESET), or no member could take it (-EAGAIN: no leader, an
 * election under way): it may be applied, or may yet be. */
static bool
etcd_commit_unknown(int rc)
{
	return rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -EAGAIN;
}

/* c sent as one etcd txn; -EOWNERDEAD as soon as a fence's holder no
 * longer waits for it (etcd_txn_valid), which may be while it waits for
 * its answer: then it may yet be applied. Only a fence with a validity
 * has the client look (every 20 ms while it waits). A commit safe to send
 * again (c->once) moves on from a member that hangs or cuts it within the
 * call (ic_etcd_set_resend): a follower that forwarded it to a leader
 * that died answers only after etcd's own request timeout, later than
 * ours. */
static int
etcd_commit_call(struct etcd_txn *txn, const struct etcd_commit *c,
		 struct ic_etcd_txn_result *res, int64_t left)
{
	int rc;

	if (txn->guarded)
		ic_etcd_set_go_on(txn->client, etcd_txn_valid, txn);
	ic_etcd_set_resend(txn->client, c->once);
	rc = ic_etcd_txn(txn->client, c->cmp, c->ncmp, c->op, c->nop, c->check, c->ncheck,
			 (unsigned)left, res);
	ic_etcd_set_resend(txn->client, false);
	if (txn->guarded)
		ic_etcd_set_go_on(txn->client, NULL, NULL);
	return rc;
}

/* Send c; while its outcome is unknown and it is safe to send again (c->once),
 * send it again (the transport begins at another member) until the
 * client's timeout has passed once more. *tries: how many were sent,
 * counting those the transport sent again within a call. */
static int
etcd_commit_attempts(struct etcd_txn *txn, const struct etcd_commit *c,
		     struct ic_etcd_txn_result *res, unsigned *tries)
{
	int64_t deadline = 0, left = 0;
	bool said = false;
	int rc;

	for (*tries = 0;;) {
		rc = etcd_commit_call(txn, c, res, left);
		/* An attempt of the call left unanswered, then another answered:
		 * the answer may be to a second sending. */
		*tries += 1 + ic_etcd_unanswered(txn->client);
		if (rc == -EOWNERDEAD || !c->once ||
		    !(etcd_commit_unknown(rc) || (*tries > 1 && rc == -ECONNREFUSED)))
			return rc;
		if (!deadline)
			deadline = ic_now_ms() + txn->meta->timeout_ms;
		left = deadline - ic_now_ms();
		if (left < 2 * ETCD_RETRY_PAUSE_MS)
			return rc;
		/* Said once: with every member refusing, a commit is sent again
		 * every ETCD_RETRY_PAUSE_MS until its time is up. */
		ic_log(!said ? IC_LOG_WARN : IC_LOG_DEBUG,
		       "%s: metadata commit: %s; its outcome is unknown: sending it again, %lld ms "
		       "left (it is applied at most once)",
		       txn->meta->text, ic_etcd_last_error(txn->client), (long long)left);
		said = true;
		if (rc != -ECONNRESET) /* a cut: another member at once; else a pause */
			ic_sleep_ms(ETCD_RETRY_PAUSE_MS);
		left = deadline - ic_now_ms(); /* a pause may overshoot on a busy machine */
		if (left < ETCD_RETRY_PAUSE_MS)
			return rc;
	}
}

/* The commit, or a step of it (st->pick), as one etcd txn, sent again
 * while its outcome is unknown; *rev: the revision it was applied at.
 * When it fails, *unknown says whether it may be applied all the same
 * (then -ETIMEDOUT, -ECONNRESET or -ESTALE, never -EAGAIN, which says
 * nothing was written). A commit its fences' holders stopped waiting for
 * (etcd_txn_valid) fails with -ETIMEDOUT: it may have been sent. */
static int
etcd_commit_once(struct etcd_txn *txn, struct etcd_commit *c, const struct etcd_steps *st,
		 int64_t *rev, bool *unknown)
{
	struct ic_etcd_txn_result res;
	unsigned tries = 1;
	bool answered;
	int rc = etcd_commit_build(txn, c, st);

	*rev = 0;
	*unknown = false;
	if (rc || (c->nop == 0 && txn->nfences == 0))
		return rc;
	rc = etcd_commit_attempts(txn, c, &res, &tries);
	/* Given up when the fence's lease ran out, maybe in flight: -ESTALE
	 * would say "nothing written", and a caller would then remove what it
	 * names (ic_meta_commit_unknown). */
	if (rc == -EOWNERDEAD)
		rc = -ETIMEDOUT;
	answered = rc == 0;
	if (rc) {
		*unknown = tries > 1 || etcd_commit_unknown(rc);
		ic_log(IC_LOG_ERR, "%s: metadata commit failed: %s%s", txn->meta->text,
		       ic_etcd_last_error(txn->client),
		       *unknown ? " (whether it was applied is unknown; it is applied whole or not "
				  "at all)"
				: "; nothing written");
	} else if (res.succeeded) {
		*rev = res.revision;
		if (tries > 1)
			ic_log(IC_LOG_WARN, "%s: metadata commit applied at attempt %u",
			       txn->meta->text, tries);
	} else if ((*rev = etcd_commit_applied(txn, c, &res.got))) {
		ic_log(IC_LOG_WARN, "%s: metadata commit: an earlier attempt was applied, its "
				    "answer lost (what it wrote is there, at one revision)",
		       txn->meta->text);
	} else {
		*unknown = tries > 1;
		rc = etcd_fence_broken(txn, &res.got) ? -ESTALE : *unknown ? -ETIMEDOUT : -EAGAIN;
		ic_log(rc != -EAGAIN ? IC_LOG_ERR : IC_LOG_WARN,
		       "%s: metadata commit refused: %s since revision %lld; %s", txn->meta->text,
		       rc == -ESTALE ? "the owner's fencing record changed (deposed)"
				     : "what this transaction read changed",
		       (long long)txn->rev,
		       tries > 1 ? "an earlier attempt of it may have been applied"
				 : "nothing written");
	}
	if (answered)
		ic_etcd_kvs_free(&res.got);
	if (*unknown && rc == -EAGAIN) /* no member could take it: unknown all the same */
		rc = -ETIMEDOUT;
	return rc;
}

/* The walked prefix (index into txn->ranges) whose map entry e may be
 * written ahead of the commit, or -1. */
static long
etcd_ahead_range(const struct etcd_txn *txn, const struct etcd_entry *e)
{
	if (!e->dirty || !e->present)
		return -1;
	for (size_t r = 0; r < txn->nranges; r++) {
		size_t len = strlen(txn->ranges[r]);

		if (strncmp(e->key, txn->ranges[r], len) == 0 && e->key[len] &&
		    etcd_map_ahead(txn, txn->ranges[r]))
			return (long)r;
	}
	return -1;
}

/* Take back what the steps wrote ahead: the commit was not applied.
 * Every chunk under each prefix they wrote goes, while nothing else wrote
 * there since (with every compare of the commit, c, when its outcome is
 * unknown: a commit that was applied broke one of them, and keeps its
 * map). The prefix's own key (the empty marker of meta/etcd_txn.c) is
 * written in the same txn, so that a step or the commit, if applied late
 * (a member that froze with it), finds the prefix newer than it compares
 * and writes nothing. */
static void
etcd_steps_undo(struct etcd_txn *txn, const struct etcd_steps *st, const struct etcd_commit *c)
{
	for (size_t r = 0; r < txn->nranges; r++) {
		char from[ETCD_KEY_MAX + 2], to[ETCD_KEY_MAX + 2];
		const struct ic_etcd_cmp own = { .key = txn->ranges[r], .prefix = true,
						 .target = IC_ETCD_MOD, .result = IC_ETCD_LESS,
						 .number = st->since[r] + 1 };
		const struct ic_etcd_op ops[] = {
			{ .type = IC_ETCD_OP_DELETE, .key = from, .end = to },
			{ .type = IC_ETCD_OP_PUT, .key = txn->ranges[r], .value = "" },
		};
		struct ic_etcd_txn_result res;
		int rc;

		if (!st->since[r])
			continue;
		etcd_chunk_range(txn->ranges[r], from, to);
		rc = ic_etcd_txn(txn->client, c ? c->cmp : &own, c ? c->ncmp : 1, ops, 2, NULL, 0, 0,
				 &res);
		if (rc == 0)
			ic_etcd_kvs_free(&res.got);
		if (rc || !res.succeeded)
			ic_log(IC_LOG_WARN, "%s: the chunks written ahead under %s are left (%s)",
			       txn->meta->text, txn->ranges[r],
			       rc ? ic_etcd_last_error(txn->client)
				  : "the commit was applied, or another wrote there since");
	}
}

/* Write the map entries that may go ahead (etcd_ahead_range) in steps of
 * at most what one etcd txn takes, each comparing all the commit compares
 * (a prefix written by an earlier step: nothing newer than that step);
 * they are no longer dirty after. -E2BIG (nothing written) when what is
 * left would still not fit one txn. */
static int
etcd_steps_send(struct etcd_txn *txn, struct etcd_steps *st)
{
	size_t rest_ops = 0, rest_bytes = 0, ahead = 0, next = 0;
	long *range = malloc((txn->n + 1) * sizeof(*range));
	bool *pick = calloc(txn->n + 1, sizeof(*pick));
	int rc = range && pick ? 0 : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < txn->n; i++) {
		const struct etcd_entry *e = &txn->e[i];
		size_t size = e->len + strlen(e->key);

		range[i] = etcd_ahead_range(txn, e);
		if (range[i] >= 0 && size <= ETCD_TXN_BYTES_MAX)
			ahead++;
		else if (e->dirty)
			range[i] = -1, rest_ops++, rest_bytes += size;
	}
	if (rc == 0 && (!ahead || rest_ops > ETCD_TXN_OPS_MAX || rest_bytes > ETCD_TXN_BYTES_MAX))
		rc = -E2BIG;
	for (unsigned step = 1; rc == 0 && next < txn->n; step++) {
		struct etcd_commit *c = calloc(1, sizeof(*c));
		size_t n = 0, bytes = 0, i;
		bool unknown;
		int64_t rev;

		memset(pick, 0, txn->n * sizeof(*pick));
		for (i = next; i < txn->n; i++) {
			size_t size = txn->e[i].len + strlen(txn->e[i].key);

			if (range[i] < 0)
				continue;
			if (n == ETCD_TXN_OPS_MAX || bytes + size > ETCD_TXN_BYTES_MAX)
				break;
			pick[i] = true;
			n++;
			bytes += size;
		}
		next = i;
		if (n == 0) {
			free(c);
			break;
		}
		st->pick = pick;
		rc = c ? etcd_commit_once(txn, c, st, &rev, &unknown) : -ENOMEM;
		st->pick = NULL;
		free(c);
		if (rc) {
			ic_log(IC_LOG_WARN, "%s: metadata commit: step %u, %zu chunks of flattened "
			       "maps written ahead, failed", txn->meta->text, step, n);
			/* It may yet be applied: its prefixes are taken back too. */
			for (i = 0; unknown && i < txn->n; i++)
				if (pick[i] && !st->since[range[i]])
					st->since[range[i]] = txn->rev;
			break;
		}
		for (i = 0; i < txn->n; i++)
			if (pick[i]) {
				txn->e[i].dirty = false;
				st->since[range[i]] = rev;
			}
		ic_log(IC_LOG_INFO, "%s: metadata commit: step %u wrote %zu chunks of flattened maps "
		       "ahead (revision %lld)", txn->meta->text, step, n, (long long)rev);
	}
	free(range);
	free(pick);
	return rc;
}

int
etcd_commit_send(struct etcd_txn *txn)
{
	struct etcd_commit *c = calloc(1, sizeof(*c));
	struct etcd_steps st = { .since = calloc(txn->nranges + 1, sizeof(*st.since)) };
	bool stepped = false;
	bool unknown = false;
	int64_t rev;
	int rc = c && st.since ? etcd_commit_once(txn, c, NULL, &rev, &unknown) : -ENOMEM;

	if (rc == -E2BIG) {
		rc = etcd_steps_send(txn, &st);
		stepped = true;
		if (rc == 0) {
			memset(c, 0, sizeof(*c));
			rc = etcd_commit_once(txn, c, &st, &rev, &unknown);
		}
	}
	if (rc == -E2BIG)
		ic_log(IC_LOG_ERR, "%s: a metadata commit too large for one etcd transaction "
		       "(%u writes, 1 MiB), beyond the flattened maps new in it; nothing written",
		       txn->meta->text, ETCD_TXN_OPS_MAX);
	if (rc && stepped)
		etcd_steps_undo(txn, &st, unknown ? c : NULL);
	free(st.since);
	free(c);
	return rc;
}
