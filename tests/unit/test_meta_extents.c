/* meta/: the records and extent maps, on real LMDB files, and opening
 * damaged ones. With IC_META_ETCD=etcd://HOST:PORT[,...] (a real cluster:
 * tests/e2e/meta-etcd.sh) the backend-neutral cases run on the etcd backend
 * instead, each under a prefix of its own, with the etcd backend's own
 * cases: conflicts, fences, snapshots, chunked maps, etcd's limits. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "etcd/etcd.h"
#include "etcd_proxy.h"
#include "isocache/meta.h"

struct fx {
	char dir[64], path[512];
	struct ic_meta *meta;
};

/* "etcd://ENDPOINTS" when the cases run on etcd, else NULL. */
static const char *etcd_base;

static int
setup(void **state)
{
	static const uint8_t uuid[16] = { 1, 2, 3 };
	struct fx *f = calloc(1, sizeof(*f));

	static unsigned stores;

	snprintf(f->dir, sizeof(f->dir), "/tmp/ic-meta-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	if (etcd_base)
		snprintf(f->path, sizeof(f->path), "%s/unit-%d-%u", etcd_base, (int)getpid(),
			 stores++);
	else
		snprintf(f->path, sizeof(f->path), "%s/meta.mdb", f->dir);
	if (ic_meta_create(f->path, uuid, 65536) || ic_meta_open(f->path, &f->meta))
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char lock[600];

	ic_meta_close(f->meta);
	snprintf(lock, sizeof(lock), "%s-lock", f->path);
	unlink(f->path);
	unlink(lock);
	rmdir(f->dir);
	free(f);
	return 0;
}

struct collect {
	struct ic_meta_extent e[16];
	int n;
};

static int
collect_one(void *arg, const struct ic_meta_extent *ext)
{
	struct collect *c = arg;

	c->e[c->n++] = *ext;
	return 0;
}

static void
expect_map(struct ic_meta_txn *txn, uint64_t disk, const struct ic_meta_extent *want, int n)
{
	struct collect c = { .n = 0 };

	assert_int_equal(ic_meta_extent_foreach(txn, IC_MAP_ALLOC, disk, collect_one, &c), 0);
	assert_int_equal(c.n, n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(c.e[i].start, want[i].start);
		assert_int_equal(c.e[i].count, want[i].count);
		assert_int_equal(c.e[i].holder, want[i].holder);
	}
}

static int
count_name(void *arg, const char *name, uint64_t id)
{
	(void)name;
	(void)id;
	++*(int *)arg;
	return 0;
}

static void
test_replace_splits_and_finds(void **state)
{
	struct fx *f = *state;
	struct ic_meta_txn *txn;
	struct ic_meta_extent e, big = { 0, 10, 5 }, mid = { 3, 2, 7 }, other = { 0, 4, 9 };

	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	assert_int_equal(ic_meta_extent_replace(txn, IC_MAP_ALLOC, 5, 0, 10, &big, 1), 0);
	assert_int_equal(ic_meta_extent_replace(txn, IC_MAP_ALLOC, 6, 0, 4, &other, 1), 0);
	assert_int_equal(ic_meta_extent_replace(txn, IC_MAP_ALLOC, 5, 3, 2, &mid, 1), 0);
	expect_map(txn, 5,
		   (struct ic_meta_extent[]){ { 0, 3, 5 }, { 3, 2, 7 }, { 5, 5, 5 } }, 3);
	/* Another disk's extents are untouched and not seen. */
	expect_map(txn, 6, &other, 1);
	assert_int_equal(ic_meta_extent_find(txn, IC_MAP_ALLOC, 5, 4, &e), 0);
	assert_int_equal(e.holder, 7);
	assert_int_equal(ic_meta_extent_find(txn, IC_MAP_ALLOC, 5, 9, &e), 0);
	assert_int_equal(e.start, 5);
	assert_int_equal(ic_meta_extent_find(txn, IC_MAP_ALLOC, 5, 10, &e), -ENOENT);
	assert_true(e.start == UINT64_MAX);
	/* Cut a hole spanning two extents: heads and tails survive. */
	assert_int_equal(ic_meta_extent_replace(txn, IC_MAP_ALLOC, 5, 2, 5, NULL, 0), 0);
	expect_map(txn, 5, (struct ic_meta_extent[]){ { 0, 2, 5 }, { 7, 3, 5 } }, 2);
	assert_int_equal(ic_meta_extent_find(txn, IC_MAP_ALLOC, 5, 3, &e), -ENOENT);
	assert_int_equal(e.start, 7);
	/* Extents outside the range are refused. */
	assert_int_equal(ic_meta_extent_replace(txn, IC_MAP_ALLOC, 5, 0, 2, &mid, 1), -EINVAL);
	assert_int_equal(ic_meta_extent_clear(txn, IC_MAP_ALLOC, 5), 0);
	expect_map(txn, 5, NULL, 0);
	expect_map(txn, 6, &other, 1);
	assert_int_equal(ic_meta_commit(txn), 0);
}

/* Random replaces checked against a plain array, across commits, in 512
 * clusters around cluster 2^16 (where the etcd backend's first chunk of a
 * map ends, so extents cross a chunk boundary). */
#define MODEL_BASE 65280u
#define MODEL_LEN 512u

static int
model_fill(void *arg, const struct ic_meta_extent *ext)
{
	int *got = arg;

	for (uint64_t c = ext->start; c < ext->start + ext->count; c++) {
		assert_true(c >= MODEL_BASE && c < MODEL_BASE + MODEL_LEN);
		assert_int_equal(got[c - MODEL_BASE], -1); /* no overlap */
		got[c - MODEL_BASE] = (int)ext->holder;
	}
	return 0;
}

static void
model_check(struct ic_meta_txn *txn, const int *model)
{
	int got[MODEL_LEN];
	struct ic_meta_extent e;

	memset(got, 0xff, sizeof(got));
	assert_int_equal(ic_meta_extent_foreach(txn, IC_MAP_ALLOC, 3, model_fill, got), 0);
	assert_memory_equal(got, model, sizeof(got));
	for (unsigned c = 0; c < MODEL_LEN; c += 37) {
		int rc = ic_meta_extent_find(txn, IC_MAP_ALLOC, 3, MODEL_BASE + c, &e);

		assert_int_equal(rc, model[c] < 0 ? -ENOENT : 0);
		if (rc == 0)
			assert_int_equal(e.holder, model[c]);
	}
}

static void
test_replace_matches_model(void **state)
{
	struct fx *f = *state;
	struct ic_meta_txn *txn;
	int model[MODEL_LEN];
	unsigned seed = 1234;

	memset(model, 0xff, sizeof(model));
	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	for (int op = 1; op <= 300; op++) {
		uint64_t s = rand_r(&seed) % MODEL_LEN, c = 1 + rand_r(&seed) % 64, at;
		struct ic_meta_extent ext[3];
		size_t n = 0;

		c = s + c > MODEL_LEN ? MODEL_LEN - s : c;
		for (uint64_t i = s; i < s + c; i++)
			model[i] = -1;
		/* Up to three pieces of the range, in order, some left out. */
		for (at = s; at < s + c && n < 3;) {
			uint64_t len = 1 + rand_r(&seed) % (s + c - at);
			int holder = rand_r(&seed) % 5 - 1;

			if (holder >= 0) {
				ext[n++] = (struct ic_meta_extent){ MODEL_BASE + at, len, (uint64_t)holder };
				for (uint64_t i = at; i < at + len; i++)
					model[i] = holder;
			}
			at += len;
		}
		assert_int_equal(ic_meta_extent_replace(txn, IC_MAP_ALLOC, 3, MODEL_BASE + s, c, ext,
							n),
				 0);
		model_check(txn, model);
		if (op % 25 == 0) {
			assert_int_equal(ic_meta_commit(txn), 0);
			assert_int_equal(ic_meta_begin(f->meta, false, &txn), 0);
			model_check(txn, model);
			ic_meta_abort(txn);
			assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
		}
	}
	ic_meta_abort(txn);
}

static void
test_disk_ids_are_never_reused(void **state)
{
	struct fx *f = *state;
	struct ic_meta_txn *txn;
	struct ic_disk_rec rec = { .size = 4096, .flags = IC_DISK_FROZEN, .name = "a@b" }, got;
	uint64_t a, b, id;

	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	assert_int_equal(ic_meta_disk_new_id(txn, &a), 0);
	rec.id = a;
	assert_int_equal(ic_meta_disk_put(txn, &rec), 0);
	assert_int_equal(ic_meta_name_put(txn, "a@b", a), 0);
	assert_int_equal(ic_meta_disk_del(txn, a), 0);
	assert_int_equal(ic_meta_disk_new_id(txn, &b), 0);
	assert_true(b > a);
	rec.id = b;
	assert_int_equal(ic_meta_disk_put(txn, &rec), 0);
	assert_int_equal(ic_meta_commit(txn), 0);

	assert_int_equal(ic_meta_begin(f->meta, false, &txn), 0);
	assert_int_equal(ic_meta_disk_get(txn, a, &got), -ENOENT);
	assert_int_equal(ic_meta_disk_get(txn, b, &got), 0);
	assert_string_equal(got.name, "a@b");
	assert_int_equal(got.flags, IC_DISK_FROZEN);
	assert_int_equal(ic_meta_name_get(txn, "a@b", &id), 0);
	assert_int_equal(id, a);
	assert_int_equal(ic_meta_name_get(txn, "nope", &id), -ENOENT);
	ic_meta_abort(txn);
}

static void
test_owner_record_round_trips(void **state)
{
	struct fx *f = *state;
	struct ic_meta_txn *txn;
	struct ic_owner_rec rec = { .owner_id = { 9 }, .generation = 41, .pid = 1234,
				    .start_time = 99, .socket = "/run/x.sock", .who = "test" },
			    got;

	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	assert_int_equal(ic_meta_owner_put(txn, "vm1", &rec), 0);
	assert_int_equal(ic_meta_commit(txn), 0);
	assert_int_equal(ic_meta_begin(f->meta, false, &txn), 0);
	assert_int_equal(ic_meta_owner_get(txn, "vm1", &got), 0);
	assert_memory_equal(&got, &rec, sizeof(rec));
	assert_int_equal(ic_meta_owner_get(txn, "vm2", &got), -ENOENT);
	ic_meta_abort(txn);
}

/* The seams of multi-host stores: a local store has no etcd URL, no etcd
 * keys and no fences; the record codec both backends share round-trips
 * and refuses a record of another size. */
static void
test_local_store_has_no_etcd_seams(void **state)
{
	struct fx *f = *state;
	struct ic_meta_txn *txn;
	char key[64];

	assert_null(ic_meta_etcd_url(f->meta));
	assert_int_equal(ic_meta_etcd_key(f->meta, "owners", "vm1", key, sizeof(key)), -EINVAL);
	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	assert_int_equal(ic_meta_txn_fence(txn, "/isocache/x/owners/vm1", 7, NULL, NULL), -EOPNOTSUPP);
	ic_meta_abort(txn);
}

static void
test_owner_codec(void **state)
{
	struct ic_owner_rec rec = { .owner_id = { 1, 2 }, .boot_id = { 3 }, .generation = 5,
				    .start_time = 6, .acquired = 7, .pid = 8,
				    .socket = "/run/isocache/vm1.sock", .who = "nbd vm1" },
			    got;
	uint8_t buf[IC_OWNER_REC_BYTES + 1];

	(void)state;
	ic_meta_owner_encode(&rec, buf);
	assert_int_equal(buf[32], 5); /* generation, little-endian, after the two ids */
	assert_int_equal(ic_meta_owner_decode(buf, IC_OWNER_REC_BYTES, &got), 0);
	assert_memory_equal(&got, &rec, sizeof(rec));
	assert_int_equal(ic_meta_owner_decode(buf, IC_OWNER_REC_BYTES - 1, &got), -EUCLEAN);
	assert_int_equal(ic_meta_owner_decode(buf, IC_OWNER_REC_BYTES + 1, &got), -EUCLEAN);
}

static void
test_open_refuses_bad_files(void **state)
{
	struct fx *f = *state;
	struct ic_meta *m;
	char path[128];
	FILE *fp;

	(void)f;
	snprintf(path, sizeof(path), "%s/garbage.mdb", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 8192; i++)
		fputc(i * 7, fp);
	fclose(fp);
	assert_int_equal(ic_meta_open(path, &m), -EUCLEAN);
	unlink(path);
	snprintf(path, sizeof(path), "%s/missing.mdb", f->dir);
	assert_int_equal(ic_meta_open(path, &m), -ENOENT);
	assert_int_equal(ic_meta_create(f->path, (uint8_t[16]){ 0 }, 4096), -EEXIST);
	snprintf(path, sizeof(path), "%s/garbage.mdb-lock", f->dir);
	unlink(path);
}

/* Close the fixture's file and overwrite len bytes of it at off (LMDB's
 * meta page 0: the 16-byte page header, then MDB_meta), or truncate it to
 * off bytes when data is NULL; then it must be refused before LMDB maps
 * it (meta_check_lmdb), where LMDB would read past the end of the file
 * (SIGBUS) or make a new environment in an empty one. */
static void
damage_and_expect_refused(struct fx *f, long off, const void *data, size_t len)
{
	struct ic_meta *m = NULL;
	struct stat st;
	FILE *fp;

	ic_meta_close(f->meta);
	f->meta = NULL;
	if (data) {
		fp = fopen(f->path, "r+");
		assert_non_null(fp);
		assert_int_equal(fseek(fp, off, SEEK_SET), 0);
		assert_int_equal(fwrite(data, len, 1, fp), 1);
		fclose(fp);
	} else {
		assert_int_equal(truncate(f->path, off), 0);
	}
	assert_int_equal(ic_meta_open(f->path, &m), -EUCLEAN);
	assert_null(m);
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(data || st.st_size == off);
}

static void
test_open_refuses_truncated(void **state)
{
	struct fx *f = *state;
	struct stat st;

	assert_int_equal(stat(f->path, &st), 0);
	damage_and_expect_refused(f, st.st_size - 1, NULL, 0);
}

static void
test_open_refuses_empty(void **state)
{
	damage_and_expect_refused(*state, 0, NULL, 0);
}

static void
test_open_refuses_last_page_past_eof(void **state)
{
	uint64_t last_pg = 1000;

	damage_and_expect_refused(*state, 136, &last_pg, 8); /* mm_last_pg */
}

static void
test_open_refuses_bad_lmdb_magic(void **state)
{
	damage_and_expect_refused(*state, 16, "X", 1); /* mm_magic */
}

/* Two nodes of a leaf made to share bytes: the names "aaaa" and "bbbb"
 * committed, then the data size of the node of the two whose room ends
 * before the page does grown by 4, into its neighbour. LMDB moves the
 * nodes after one it resizes by that node's size: a put then wrote one
 * record into another (fuzz_meta: a later walk read the middle of a
 * record as a node, and LMDB wrote through NULL). Refused at open. */
static void
test_open_refuses_overlapping_nodes(void **state)
{
	struct fx *f = *state;
	struct ic_meta_txn *txn;
	uint8_t pg[4096];
	bool damaged = false;
	int fd;

	assert_int_equal(ic_meta_begin(f->meta, true, &txn), 0);
	assert_int_equal(ic_meta_name_put(txn, "aaaa", 1), 0);
	assert_int_equal(ic_meta_name_put(txn, "bbbb", 2), 0);
	assert_int_equal(ic_meta_commit(txn), 0);
	ic_meta_close(f->meta);
	f->meta = NULL;
	fd = open(f->path, O_RDWR);
	assert_true(fd >= 0);
	/* Past the two meta pages, the leaf (flags 0x02) that holds both names
	 * (earlier copies of it hold one, or none). */
	for (off_t pgno = 2; !damaged && pread(fd, pg, sizeof(pg), pgno * 4096) == 4096; pgno++) {
		uint16_t flags, lower, off, ksize, dsize;

		memcpy(&flags, pg + 10, 2);
		memcpy(&lower, pg + 12, 2);
		if (!(flags & 0x02) || lower != 16 + 2 * 2 || !memmem(pg, sizeof(pg), "aaaa", 4) ||
		    !memmem(pg, sizeof(pg), "bbbb", 4))
			continue;
		for (unsigned i = 0; i < 2 && !damaged; i++) {
			memcpy(&off, pg + 16 + 2 * i, 2);
			memcpy(&dsize, pg + off, 2);
			memcpy(&ksize, pg + off + 6, 2);
			if (off + 8u + ksize + dsize + 4 >= sizeof(pg))
				continue;
			dsize += 4;
			memcpy(pg + off, &dsize, 2);
			assert_int_equal(pwrite(fd, pg, sizeof(pg), pgno * 4096), 4096);
			damaged = true;
		}
	}
	close(fd);
	assert_true(damaged);
	assert_int_equal(ic_meta_open(f->path, &f->meta), -EUCLEAN);
	assert_null(f->meta);
}

#include "test_meta_etcd_cases.h"

int
main(void)
{
	/* Every backend. */
	const struct CMUnitTest common[] = {
		cmocka_unit_test_setup_teardown(test_replace_splits_and_finds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_matches_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_ids_are_never_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owner_record_round_trips, setup, teardown),
		cmocka_unit_test(test_owner_codec),
	};
	/* LMDB files. */
	const struct CMUnitTest lmdb[] = {
		cmocka_unit_test_setup_teardown(test_local_store_has_no_etcd_seams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_bad_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_last_page_past_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_bad_lmdb_magic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_overlapping_nodes, setup, teardown),
	};
	int failed;

	etcd_base = getenv("IC_META_ETCD");
	failed = cmocka_run_group_tests_name(etcd_base ? "etcd" : "lmdb", common, NULL, NULL);
	if (etcd_base)
		return failed + cmocka_run_group_tests_name("etcd only", etcd_cases, NULL, NULL);
	return failed + cmocka_run_group_tests_name("lmdb only", lmdb, NULL, NULL);
}
