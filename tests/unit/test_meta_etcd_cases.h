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

/* The seams owner/ builds on: the URL, the record keys, the record owner/
 * writes (with the shared codec) read back by ic_meta_owner_get, and a
 * fence: a commit conditional on a key's mod_revision, -ESTALE and nothing
 * written once the key moved on. */
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
	assert_int_equal(ic_meta_txn_fence(txn, key, rev), 0);
	assert_int_equal(ic_meta_name_put(txn, "fenced-ok", 1), 0);
	assert_int_equal(ic_meta_commit(txn), 0);
	assert_int_equal(ic_etcd_put(etcd, key, buf, sizeof(buf), 0, &rev2), 0);
	assert_true(rev2 > rev);
	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	assert_int_equal(ic_meta_txn_fence(txn, key, rev), 0);
	assert_int_equal(ic_meta_name_put(txn, "deposed", 1), 0);
	assert_int_equal(ic_meta_commit(txn), -ESTALE);
	assert_int_equal(ic_meta_begin(f->meta, false, &txn), 0);
	assert_int_equal(ic_meta_name_get(txn, "fenced-ok", &id), 0);
	assert_int_equal(ic_meta_name_get(txn, "deposed", &id), -ENOENT);
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

static const struct CMUnitTest etcd_cases[] = {
	cmocka_unit_test_setup_teardown(test_etcd_conflict_loses_cleanly, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_walk_conflicts_with_insert_and_delete, setup,
					teardown),
	cmocka_unit_test_setup_teardown(test_etcd_read_is_a_snapshot, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_seams_and_fence, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_map_chunks, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_commit_too_big, setup, teardown),
	cmocka_unit_test_setup_teardown(test_etcd_create_and_open_refuse, setup, teardown),
};
