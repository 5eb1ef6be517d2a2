/* The etcd backend's own cases (docs/MULTI-HOST.md §2, §3), included by
 * test_meta_extents.c and run only on a real cluster (IC_META_ETCD). Each
 * uses the fixture's store, a prefix of its own. */

/* A second handle on the fixture's store, as another process would open it. */
static struct ic_meta *
etcd_other(struct fx *f)
{
	struct ic_meta *m = NULL;

	assert_int_equal(ic_meta_open(f->path, &m), 0);
	return m;
}

/* Two writers at once. Disk ids are taken at once (a layer file is named
 * after one before the commit), so theirs differ; both make the same name
 * after seeing it absent: the second commit loses (-EAGAIN, nothing
 * written), never overwriting the first. */
static void
test_etcd_conflict_loses_cleanly(void **state)
{
	struct fx *f = *state;
	struct ic_meta *other = etcd_other(f);
	struct ic_meta_txn *a, *b;
	uint64_t ida, idb, id;

	assert_int_equal(ic_meta_begin(f->meta, true, &a), 0);
	assert_int_equal(ic_meta_begin(other, true, &b), 0);
	assert_int_equal(ic_meta_disk_new_id(a, &ida), 0);
	assert_int_equal(ic_meta_disk_new_id(b, &idb), 0);
	assert_true(idb > ida);
	assert_int_equal(ic_meta_name_get(a, "same", &id), -ENOENT);
	assert_int_equal(ic_meta_name_get(b, "same", &id), -ENOENT);
	assert_int_equal(ic_meta_name_put(a, "same", ida), 0);
	assert_int_equal(ic_meta_name_put(b, "same", idb), 0);
	assert_int_equal(ic_meta_name_put(b, "loser", idb), 0);
	assert_int_equal(ic_meta_commit(a), 0);
	assert_int_equal(ic_meta_commit(b), -EAGAIN);
	assert_int_equal(ic_meta_begin(other, false, &b), 0);
	assert_int_equal(ic_meta_name_get(b, "same", &id), 0);
	assert_int_equal(id, ida);
	assert_int_equal(ic_meta_name_get(b, "loser", &id), -ENOENT);
	ic_meta_abort(b);
	/* An aborted transaction's id is not handed out again. */
	assert_int_equal(ic_meta_begin(other, true, &b), 0);
	assert_int_equal(ic_meta_disk_new_id(b, &id), 0);
	ic_meta_abort(b);
	assert_true(id > idb);
	ic_meta_close(other);
}

/* A walk (a name list) is a read of the whole range: a name added or
 * removed by another writer after it makes the commit lose. */
static void
test_etcd_walk_conflicts_with_insert_and_delete(void **state)
{
	struct fx *f = *state;
	struct ic_meta *other = etcd_other(f);
	struct ic_meta_txn *a, *b;
	int count = 0;

	/* Alone, a walk and a write commit. */
	assert_int_equal(ic_meta_begin(f->meta, true, &a), 0);
	assert_int_equal(ic_meta_name_foreach(a, count_name, &count), 0);
	assert_int_equal(ic_meta_name_put(a, "w", 3), 0);
	assert_int_equal(ic_meta_commit(a), 0);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(ic_meta_begin(f->meta, true, &a), 0);
		assert_int_equal(ic_meta_name_foreach(a, count_name, &count), 0);
		assert_int_equal(ic_meta_begin(other, true, &b), 0);
		if (round == 0)
			assert_int_equal(ic_meta_name_put(b, "x", 1), 0);
		else
			assert_int_equal(ic_meta_name_del(b, "x"), 0);
		assert_int_equal(ic_meta_commit(b), 0);
		assert_int_equal(ic_meta_name_put(a, "y", 2), 0);
		assert_int_equal(ic_meta_commit(a), -EAGAIN);
	}
	ic_meta_close(other);
}

/* A read transaction is one snapshot: a commit made after its first read
 * is not seen by its later reads. */
static void
test_etcd_read_is_a_snapshot(void **state)
{
	struct fx *f = *state;
	struct ic_meta *other = etcd_other(f);
	struct ic_meta_txn *r, *w;
	uint64_t id;

	assert_int_equal(ic_meta_begin(f->meta, false, &r), 0);
	assert_int_equal(ic_meta_name_get(r, "a", &id), -ENOENT);
	assert_int_equal(ic_meta_begin(other, true, &w), 0);
	assert_int_equal(ic_meta_name_put(w, "b", 7), 0);
	assert_int_equal(ic_meta_commit(w), 0);
	assert_int_equal(ic_meta_name_get(r, "b", &id), -ENOENT);
	ic_meta_abort(r);
	assert_int_equal(ic_meta_begin(f->meta, false, &r), 0);
	assert_int_equal(ic_meta_name_get(r, "b", &id), 0);
	assert_int_equal(id, 7);
	/* A write transaction reads its own writes. */
	ic_meta_abort(r);
	assert_int_equal(ic_meta_begin(f->meta, true, &w), 0);
	assert_int_equal(ic_meta_name_put(w, "c", 9), 0);
	assert_int_equal(ic_meta_name_get(w, "c", &id), 0);
	assert_int_equal(id, 9);
	ic_meta_abort(w);
	ic_meta_close(other);
}

/* A fence's holder that no longer waits for its commit. */
static bool
never_valid(void *arg)
{
	(void)arg;
	return false;
}

/* The seams owner/ builds on: the URL, the record keys, the record owner/
 * writes (with the shared codec) read back by ic_meta_owner_get, and a
 * fence: a commit conditional on a key's mod_revision, -ESTALE and nothing
 * written once the key moved on or its holder stopped waiting. */
static void
test_etcd_seams_and_fence(void **state)
{
	struct fx *f = *state;
	const struct ic_etcd_url *url = ic_meta_etcd_url(f->meta);
	struct ic_owner_rec rec = { .owner_id = { 4 }, .generation = 3, .pid = 77,
				    .who = "host B" },
			    got;
	uint8_t buf[IC_OWNER_REC_BYTES];
	struct ic_meta_txn *txn;
	struct ic_etcd *etcd;
	char key[512], want[512];
	int64_t rev, rev2;
	uint64_t id;

	assert_non_null(url);
	assert_non_null(strstr(f->path, url->prefix));
	snprintf(want, sizeof(want), "/isocache/%s/owners/vm1", url->prefix);
	assert_int_equal(ic_meta_etcd_key(f->meta, "owners", "vm1", key, sizeof(key)), 0);
	assert_string_equal(key, want);
	assert_int_equal(ic_meta_etcd_key(f->meta, "owners", "vm1", key, 10), -ENAMETOOLONG);
	assert_int_equal(ic_meta_etcd_key(f->meta, "bogus", "vm1", key, sizeof(key)), -EINVAL);
	assert_int_equal(ic_meta_etcd_key(f->meta, "owners", "vm1", key, sizeof(key)), 0);

	assert_int_equal(ic_etcd_open(url, 3000, &etcd), 0);
	ic_meta_owner_encode(&rec, buf);
	assert_int_equal(ic_etcd_put(etcd, key, buf, sizeof(buf), 0, &rev), 0);
	assert_int_equal(ic_meta_begin(f->meta, false, &txn), 0);
	assert_int_equal(ic_meta_owner_get(txn, "vm1", &got), 0);
	assert_memory_equal(&got, &rec, sizeof(rec));
	ic_meta_abort(txn);

	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	assert_int_equal(ic_meta_txn_fence(txn, key, rev, NULL, NULL), 0);
	assert_int_equal(ic_meta_name_put(txn, "fenced-ok", 1), 0);
	assert_int_equal(ic_meta_commit(txn), 0);
	assert_int_equal(ic_etcd_put(etcd, key, buf, sizeof(buf), 0, &rev2), 0);
	assert_true(rev2 > rev);
	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	assert_int_equal(ic_meta_txn_fence(txn, key, rev, NULL, NULL), 0);
	assert_int_equal(ic_meta_name_put(txn, "deposed", 1), 0);
	assert_int_equal(ic_meta_commit(txn), -ESTALE);
	/* The token is still the record's, but its holder no longer waits
	 * (its lease may have run out): not sent, and reported as of unknown
	 * outcome, as a commit given up while in flight is. */
	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	assert_int_equal(ic_meta_txn_fence(txn, key, rev2, never_valid, NULL), 0);
	assert_int_equal(ic_meta_name_put(txn, "lapsed", 1), 0);
	assert_int_equal(ic_meta_commit(txn), -ETIMEDOUT);
	assert_int_equal(ic_meta_begin(f->meta, false, &txn), 0);
	assert_int_equal(ic_meta_name_get(txn, "fenced-ok", &id), 0);
	assert_int_equal(ic_meta_name_get(txn, "deposed", &id), -ENOENT);
	assert_int_equal(ic_meta_name_get(txn, "lapsed", &id), -ENOENT);
	ic_meta_abort(txn);
	ic_etcd_close(etcd);
}

/* Maps are chunked by 2^16 clusters: an extent lives in the chunk of its
 * start (reaching past it), and a commit rewrites only the chunks it
 * changed. */
static void
test_etcd_map_chunks(void **state)
{
	struct fx *f = *state;
	const struct ic_etcd_url *url = ic_meta_etcd_url(f->meta);
	struct ic_meta_extent a = { 65530, 20, 7 }, b = { 200000, 5, 8 }, c = { 200001, 1, 9 }, e;
	struct ic_meta_txn *txn;
	struct ic_etcd *etcd;
	struct ic_etcd_kv c0, c3, c0b, c3b;
	char key0[512], key3[512];

	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	assert_int_equal(ic_meta_extent_replace(txn, IC_MAP_ALLOC, 5, 65530, 20, &a, 1), 0);
	assert_int_equal(ic_meta_extent_replace(txn, IC_MAP_ALLOC, 5, 200000, 5, &b, 1), 0);
	assert_int_equal(ic_meta_commit(txn), 0);

	assert_int_equal(ic_meta_begin(f->meta, false, &txn), 0);
	assert_int_equal(ic_meta_extent_find(txn, IC_MAP_ALLOC, 5, 65545, &e), 0);
	assert_int_equal(e.start, 65530);
	assert_int_equal(ic_meta_extent_find(txn, IC_MAP_ALLOC, 5, 65550, &e), -ENOENT);
	assert_int_equal(e.start, 200000);
	expect_map(txn, 5, (struct ic_meta_extent[]){ a, b }, 2);
	ic_meta_abort(txn);

	snprintf(key0, sizeof(key0), "/isocache/%s/alloc/%016x/%016x", url->prefix, 5, 0);
	snprintf(key3, sizeof(key3), "/isocache/%s/alloc/%016x/%016x", url->prefix, 5, 3);
	assert_int_equal(ic_etcd_open(url, 3000, &etcd), 0);
	assert_int_equal(ic_etcd_get(etcd, key0, &c0), 0);
	assert_int_equal(ic_etcd_get(etcd, key3, &c3), 0);
	assert_int_equal(c0.value_len, 24);

	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	assert_int_equal(ic_meta_extent_replace(txn, IC_MAP_ALLOC, 5, 200001, 1, &c, 1), 0);
	assert_int_equal(ic_meta_commit(txn), 0);
	assert_int_equal(ic_etcd_get(etcd, key0, &c0b), 0);
	assert_int_equal(ic_etcd_get(etcd, key3, &c3b), 0);
	assert_int_equal(c0b.mod_revision, c0.mod_revision);
	assert_true(c3b.mod_revision > c3.mod_revision);
	assert_int_equal(c3b.value_len, 3 * 24);
	ic_etcd_kv_free(&c0);
	ic_etcd_kv_free(&c3);
	ic_etcd_kv_free(&c0b);
	ic_etcd_kv_free(&c3b);

	/* Cleared: the chunks are deleted. */
	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	assert_int_equal(ic_meta_extent_clear(txn, IC_MAP_ALLOC, 5), 0);
	assert_int_equal(ic_meta_commit(txn), 0);
	assert_int_equal(ic_etcd_get(etcd, key0, &c0), -ENOENT);
	assert_int_equal(ic_etcd_get(etcd, key3, &c3), -ENOENT);
	ic_etcd_close(etcd);
}

/* More chunks than one etcd transaction takes: refused before anything is
 * sent, nothing written. */
static void
test_etcd_commit_too_big(void **state)
{
	struct fx *f = *state;
	struct ic_meta_txn *txn;
	struct ic_meta_extent e;

	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	for (uint64_t i = 0; i < 130; i++) {
		e = (struct ic_meta_extent){ i << 16, 1, 3 };
		assert_int_equal(ic_meta_extent_replace(txn, IC_MAP_ALLOC, 6, e.start, 1, &e, 1), 0);
	}
	assert_int_equal(ic_meta_commit(txn), -E2BIG);
	assert_int_equal(ic_meta_begin(f->meta, false, &txn), 0);
	assert_int_equal(ic_meta_extent_find(txn, IC_MAP_ALLOC, 6, 0, &e), -ENOENT);
	assert_true(e.start == UINT64_MAX);
	ic_meta_abort(txn);
}

/* init refuses a prefix that holds a store; open refuses one that does not. */
static void
test_etcd_create_and_open_refuse(void **state)
{
	struct fx *f = *state;
	struct ic_meta *m = NULL;
	char path[600];

	assert_int_equal(ic_meta_create(f->path, (uint8_t[16]){ 0 }, 4096), -EEXIST);
	snprintf(path, sizeof(path), "%s-nothing-here", f->path);
	assert_int_equal(ic_meta_open(path, &m), -EUCLEAN);
	assert_null(m);
	assert_int_equal(ic_meta_open("etcd://127.0.0.1:notaport/x", &m), -EINVAL);
	/* Read-only: writes refused. */
	assert_int_equal(ic_meta_open_readonly(f->path, &m), 0);
	{
		struct ic_meta_txn *txn;

		assert_int_equal(ic_meta_begin(m, true, &txn), -EACCES);
	}
	ic_meta_close(m);
}

/* A handle on the fixture's store whose first member is a relay (p) in
 * front of the store's first member: its calls go there first. */
static struct ic_meta *
etcd_proxied(struct fx *f, struct etcd_proxy *p)
{
	struct ic_meta *m = NULL;
	char path[700];

	assert_int_equal(proxy_start(p, ic_meta_etcd_url(f->meta)->endpoint[0]), 0);
	snprintf(path, sizeof(path), "etcd://127.0.0.1:%u,%s", p->port, f->path + strlen("etcd://"));
	assert_int_equal(ic_meta_open(path, &m), 0);
	return m;
}

/* How many times name's record was written since it was made (etcd's
 * version of the key): a commit applied twice writes it twice. */
static int64_t
etcd_name_version(struct fx *f, const char *name)
{
	const struct ic_etcd_url *url = ic_meta_etcd_url(f->meta);
	struct ic_etcd *etcd;
	struct ic_etcd_kv kv;
	char key[600];
	int64_t version;

	snprintf(key, sizeof(key), "/isocache/%s/names/%s", url->prefix, name);
	assert_int_equal(ic_etcd_open(url, 3000, &etcd), 0);
	assert_int_equal(ic_etcd_get(etcd, key, &kv), 0);
	version = kv.version;
	ic_etcd_kv_free(&kv);
	ic_etcd_close(etcd);
	return version;
}

/* Commit name = id through the relay, losing the next two kv/txn requests
 * (libcurl sends one again itself on a new connection when a kept one
 * breaks unanswered) with fault; first read "seen" (absent), so that the
 * transaction has a snapshot; read name too unless blind. */
static int
etcd_commit_through(struct ic_meta *m, struct etcd_proxy *p, enum proxy_fault fault,
		    const char *name, uint64_t id, bool blind)
{
	struct ic_meta_txn *txn;
	uint64_t got;

	assert_int_equal(ic_meta_begin(m, true, &txn), 0);
	assert_int_equal(ic_meta_name_get(txn, "seen", &got), -ENOENT);
	if (!blind)
		assert_int_equal(ic_meta_name_get(txn, name, &got), -ENOENT);
	assert_int_equal(ic_meta_name_put(txn, name, id), 0);
	proxy_arm(p, fault, 2);
	return ic_meta_commit(txn);
}

static void
etcd_expect_name(struct fx *f, const char *name, uint64_t want)
{
	struct ic_meta_txn *txn;
	uint64_t id;

	assert_int_equal(ic_meta_begin(f->meta, false, &txn), 0);
	assert_int_equal(ic_meta_name_get(txn, name, &id), 0);
	assert_int_equal(id, want);
	ic_meta_abort(txn);
}

/* A member that dies with a commit in flight: the commit's outcome is
 * unknown to us, so it is sent again to another member. Sent again it
 * applies at most once: whether the member had applied it (the answer
 * lost) or never had it (the request cut), whether the transaction read
 * the key it writes or wrote blind, the commit succeeds and the record is
 * written once. */
static void
test_etcd_commit_unknown_outcome_sent_again(void **state)
{
	static const struct {
		enum proxy_fault fault;
		bool blind;
		const char *name;
	} cases[] = {
		{ PROXY_LOSE_ANSWER, false, "answer-lost" },
		{ PROXY_LOSE_ANSWER, true, "answer-lost-blind" },
		{ PROXY_CUT_REQUEST, false, "request-cut" },
		{ PROXY_CUT_REQUEST, true, "request-cut-blind" },
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct etcd_proxy p;
		struct ic_meta *m = etcd_proxied(f, &p);

		print_message("%s\n", cases[i].name);
		assert_int_equal(etcd_commit_through(m, &p, cases[i].fault, cases[i].name, 40 + i,
						     cases[i].blind),
				 0);
		assert_true(atomic_load(&p.lost) >= 1);
		etcd_expect_name(f, cases[i].name, 40 + i);
		assert_int_equal(etcd_name_version(f, cases[i].name), 1);
		ic_meta_close(m);
		proxy_stop(&p);
	}
}

/* A fence whose validity ends at valid_until_ms (ic_now_ms). */
static _Atomic int64_t valid_until_ms;

static bool
valid_until(void *arg)
{
	(void)arg;
	return ic_now_ms() < atomic_load(&valid_until_ms);
}

/* A commit waiting for its answer when its fence's validity runs out is
 * given up at once: a fenced owner's flush fails when it fences itself.
 * (libcurl's progress calls, which looked before, come about once a
 * second: the commit below, held at the relay, was given up about 700 ms
 * late.) */
static void
test_etcd_commit_given_up_at_validity(void **state)
{
	struct fx *f = *state;
	struct etcd_proxy p;
	struct ic_meta *m = etcd_proxied(f, &p);
	struct ic_meta_txn *txn;
	struct ic_etcd *etcd;
	uint8_t buf[IC_OWNER_REC_BYTES];
	struct ic_owner_rec rec = { 0 };
	char key[512];
	int64_t rev, late;

	assert_int_equal(ic_meta_etcd_key(f->meta, "owners", "vm2", key, sizeof(key)), 0);
	assert_int_equal(ic_etcd_open(ic_meta_etcd_url(f->meta), 3000, &etcd), 0);
	ic_meta_owner_encode(&rec, buf);
	assert_int_equal(ic_etcd_put(etcd, key, buf, sizeof(buf), 0, &rev), 0);
	ic_etcd_close(etcd);

	assert_int_equal(ic_meta_begin(m, true, &txn), 0);
	assert_int_equal(ic_meta_txn_fence(txn, key, rev, valid_until, NULL), 0);
	assert_int_equal(ic_meta_name_put(txn, "lapses", 1), 0);
	proxy_hold(&p, 1);
	atomic_store(&valid_until_ms, ic_now_ms() + 300);
	assert_int_equal(ic_meta_commit(txn), -ETIMEDOUT);
	late = ic_now_ms() - atomic_load(&valid_until_ms);
	print_message("given up %lld ms after its validity ran out\n", (long long)late);
	assert_true(late >= 0);
	assert_true(late < 250);
	assert_int_equal(proxy_wait_held(&p), 0); /* it was held, not refused */
	proxy_release(&p);
	ic_meta_close(m);
	proxy_stop(&p);
}

/* Sent again after a lost answer, a commit that conflicts is not taken
 * for applied: what it would have written is not there. Its first
 * attempt's outcome is unknown to it, so it fails with -ETIMEDOUT, not
 * with -EAGAIN, which says that nothing was written. */
static void
test_etcd_commit_unknown_outcome_conflict(void **state)
{
	struct fx *f = *state;
	struct etcd_proxy p;
	struct ic_meta *m = etcd_proxied(f, &p);
	struct ic_meta_txn *txn, *other;
	uint64_t got;

	assert_int_equal(ic_meta_begin(m, true, &txn), 0);
	assert_int_equal(ic_meta_name_get(txn, "raced", &got), -ENOENT);
	assert_int_equal(ic_meta_name_put(txn, "raced", 7), 0);
	assert_int_equal(ic_meta_begin(f->meta, true, &other), 0);
	assert_int_equal(ic_meta_name_put(other, "raced", 9), 0);
	assert_int_equal(ic_meta_commit(other), 0);
	proxy_arm(&p, PROXY_LOSE_ANSWER, 2);
	assert_int_equal(ic_meta_commit(txn), -ETIMEDOUT);
	assert_true(atomic_load(&p.lost) >= 1);
	etcd_expect_name(f, "raced", 9);
	ic_meta_close(m);
	proxy_stop(&p);
}

/* A commit that only creates a record, held by a member (the relay) until
 * it is sent again to another and applied there: the record is then
 * removed, and the first attempt reaches etcd late, as from a member that
 * froze with it and thawed. It must not make the removed record anew:
 * its compares ("absent", or for a blind write "not modified since the
 * snapshot") hold again once the record is gone; the compare of the
 * table's deletion marker does not. Before, the record came back. */
static void
test_etcd_commit_late_first_attempt(void **state)
{
	static const struct {
		bool blind;
		const char *name;
	} cases[] = { { false, "reborn" }, { true, "reborn-blind" } };
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct etcd_proxy p;
		struct ic_meta *m = etcd_proxied(f, &p);
		struct ic_meta_txn *txn;
		uint64_t got;

		print_message("%s\n", cases[i].name);
		assert_int_equal(ic_meta_begin(m, true, &txn), 0);
		assert_int_equal(ic_meta_name_get(txn, "seen", &got), -ENOENT);
		if (!cases[i].blind)
			assert_int_equal(ic_meta_name_get(txn, cases[i].name, &got), -ENOENT);
		assert_int_equal(ic_meta_name_put(txn, cases[i].name, 60 + i), 0);
		proxy_hold(&p, 1);
		assert_int_equal(ic_meta_commit(txn), 0);
		assert_int_equal(proxy_wait_held(&p), 0); /* the first attempt: held */
		etcd_expect_name(f, cases[i].name, 60 + i);

		assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
		assert_int_equal(ic_meta_name_del(txn, cases[i].name), 0);
		assert_int_equal(ic_meta_commit(txn), 0);
		proxy_release(&p);
		assert_int_equal(proxy_wait_answered(&p), 0);

		assert_int_equal(ic_meta_begin(f->meta, false, &txn), 0);
		assert_int_equal(ic_meta_name_get(txn, cases[i].name, &got), -ENOENT);
		ic_meta_abort(txn);
		ic_meta_close(m);
		proxy_stop(&p);
	}
}

/* n chunks of a flattened map of disk (one extent of holder 3 at the start
 * of each 2^16 clusters) into txn. */
static void
etcd_fill_resolved(struct ic_meta_txn *txn, uint64_t disk, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		struct ic_meta_extent e = { i << 16, 1, 3 };

		assert_int_equal(ic_meta_extent_replace(txn, IC_MAP_RESOLVED, disk, e.start, 1, &e,
							1),
				 0);
	}
}

static int
etcd_count_one(void *arg, const struct ic_meta_extent *e)
{
	(void)e;
	++*(size_t *)arg;
	return 0;
}

/* How many extents disk's flattened map holds now. */
static size_t
etcd_resolved_count(struct ic_meta *m, uint64_t disk)
{
	struct ic_meta_txn *txn;
	size_t n = 0;

	assert_int_equal(ic_meta_begin(m, false, &txn), 0);
	assert_int_equal(ic_meta_extent_foreach(txn, IC_MAP_RESOLVED, disk, etcd_count_one, &n), 0);
	ic_meta_abort(txn);
	return n;
}

/* A flattened map new in a commit (a snapshot of a large image freezes
 * its map whole) may exceed one etcd transaction: 200 chunks are written
 * in steps ahead of the commit, and read back whole. (An allocation map of
 * that size is still refused: test_etcd_commit_too_big.) */
static void
test_etcd_flattened_map_in_steps(void **state)
{
	struct fx *f = *state;
	struct ic_meta_txn *txn;

	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	etcd_fill_resolved(txn, 7, 200);
	assert_int_equal(ic_meta_name_put(txn, "frozen", 7), 0);
	assert_int_equal(ic_meta_commit(txn), 0);
	assert_int_equal(etcd_resolved_count(f->meta, 7), 200);
	etcd_expect_name(f, "frozen", 7);
}

/* Steps carry every compare of the commit: a change to what it read, made
 * before the first step, refuses the first step and nothing is written. */
static void
test_etcd_steps_refused_before(void **state)
{
	struct fx *f = *state;
	struct ic_meta *other = etcd_other(f);
	struct ic_meta_txn *a, *b;
	uint64_t id;

	assert_int_equal(ic_meta_begin(f->meta, true, &a), 0);
	assert_int_equal(ic_meta_name_get(a, "k", &id), -ENOENT);
	assert_int_equal(ic_meta_name_put(a, "k", 8), 0);
	etcd_fill_resolved(a, 8, 200);
	assert_int_equal(ic_meta_begin(other, true, &b), 0);
	assert_int_equal(ic_meta_name_put(b, "k", 99), 0);
	assert_int_equal(ic_meta_commit(b), 0);
	assert_int_equal(ic_meta_commit(a), -EAGAIN);
	assert_int_equal(etcd_resolved_count(f->meta, 8), 0);
	etcd_expect_name(f, "k", 99);
	ic_meta_close(other);
}

struct etcd_racer {
	struct fx *f;
	struct etcd_proxy *p;
	int rc;
};

/* Once the held request has come to the relay, change what the commit read. */
static void *
etcd_race_between_steps(void *arg)
{
	struct etcd_racer *r = arg;
	struct ic_meta_txn *b;

	r->rc = proxy_wait_held(r->p);
	if (r->rc == 0)
		r->rc = ic_meta_begin(r->f->meta, true, &b);
	if (r->rc == 0)
		r->rc = ic_meta_name_put(b, "k", 99);
	if (r->rc == 0)
		r->rc = ic_meta_commit(b);
	proxy_release(r->p);
	return NULL;
}

/* A change made while the commit is in steps refuses what comes next: a
 * change between two steps (the second step held at the relay while
 * another writer changes a key the commit read) refuses the second step,
 * and a change before the commit itself (the third request held)
 * refuses the commit. Either way what went ahead is taken back, and
 * nothing of the commit remains. */
static void
test_etcd_steps_taken_back(void **state)
{
	struct fx *f = *state;

	for (int held = 2; held <= 3; held++) {
		struct etcd_proxy p;
		struct ic_meta *m = etcd_proxied(f, &p);
		struct etcd_racer r = { f, &p, -1 };
		struct ic_meta_txn *a, *b;
		pthread_t racer;
		uint64_t id, disk = 8 + (uint64_t)held;

		print_message("request %d held\n", held);
		assert_int_equal(ic_meta_begin(m, true, &a), 0);
		assert_int_equal(ic_meta_name_get(a, "k", &id), -ENOENT);
		assert_int_equal(ic_meta_name_put(a, "k", disk), 0);
		etcd_fill_resolved(a, disk, 200);
		proxy_hold(&p, held);
		assert_int_equal(pthread_create(&racer, NULL, etcd_race_between_steps, &r), 0);
		assert_int_equal(ic_meta_commit(a), -EAGAIN);
		assert_int_equal(pthread_join(racer, NULL), 0);
		assert_int_equal(r.rc, 0);
		assert_int_equal(etcd_resolved_count(f->meta, disk), 0);
		etcd_expect_name(f, "k", 99);
		/* For the next round: "k" absent again. */
		assert_int_equal(ic_meta_begin(f->meta, true, &b), 0);
		assert_int_equal(ic_meta_name_del(b, "k"), 0);
		assert_int_equal(ic_meta_commit(b), 0);
		ic_meta_close(m);
		proxy_stop(&p);
	}
}

/* chunks extents of disk 7's map, one per chunk from chunk first on, in
 * one commit. */
static void
etcd_put_chunks(struct ic_meta *m, uint64_t first, uint64_t chunks)
{
	struct ic_meta_txn *txn;

	assert_int_equal(ic_meta_begin(m, true, &txn), 0);
	for (uint64_t i = first; i < first + chunks; i++) {
		struct ic_meta_extent e = { i << 16, 1, 7 };

		assert_int_equal(ic_meta_extent_replace(txn, IC_MAP_ALLOC, 7, e.start, 1, &e, 1), 0);
	}
	assert_int_equal(ic_meta_commit(txn), 0);
}

/* A map of more chunks than a transaction takes writes is cleared in one
 * commit (one deletion of the chunks' range: test_etcd_commit_too_big's
 * limit is on keys written); a chunk another writer added after the
 * clearing transaction read the map makes the commit lose, and survives. */
static void
test_etcd_clear_big_map(void **state)
{
	struct fx *f = *state;
	struct ic_meta *other = etcd_other(f);
	struct ic_meta_txn *txn;
	size_t n = 0;

	etcd_put_chunks(f->meta, 0, 100);
	etcd_put_chunks(f->meta, 100, 100);
	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	assert_int_equal(ic_meta_extent_clear(txn, IC_MAP_ALLOC, 7), 0);
	etcd_put_chunks(other, 200, 1);
	assert_int_equal(ic_meta_commit(txn), -EAGAIN);
	assert_int_equal(ic_meta_begin(f->meta, false, &txn), 0);
	assert_int_equal(ic_meta_extent_foreach(txn, IC_MAP_ALLOC, 7, etcd_count_one, &n), 0);
	ic_meta_abort(txn);
	assert_int_equal(n, 201);

	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	assert_int_equal(ic_meta_extent_clear(txn, IC_MAP_ALLOC, 7), 0);
	assert_int_equal(ic_meta_commit(txn), 0);
	n = 0;
	assert_int_equal(ic_meta_begin(other, false, &txn), 0);
	assert_int_equal(ic_meta_extent_foreach(txn, IC_MAP_ALLOC, 7, etcd_count_one, &n), 0);
	ic_meta_abort(txn);
	assert_int_equal(n, 0);
	ic_meta_close(other);
}

static const struct CMUnitTest etcd_cases[] = {
	cmocka_unit_test_setup_teardown(test_etcd_conflict_loses_cleanly, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_walk_conflicts_with_insert_and_delete, setup,
					teardown),
	cmocka_unit_test_setup_teardown(test_etcd_read_is_a_snapshot, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_seams_and_fence, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_commit_given_up_at_validity, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_map_chunks, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_commit_too_big, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_clear_big_map, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_create_and_open_refuse, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_commit_unknown_outcome_sent_again, setup,
					teardown),
	cmocka_unit_test_setup_teardown(test_etcd_commit_unknown_outcome_conflict, setup,
					teardown),
	cmocka_unit_test_setup_teardown(test_etcd_commit_late_first_attempt, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_flattened_map_in_steps, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_steps_refused_before, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_steps_taken_back, setup, teardown),
};
