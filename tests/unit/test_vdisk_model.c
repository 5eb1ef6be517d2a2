/* Model-based test of the vdisk library: a reference byte array per image
 * and thousands of random operations (unaligned reads and writes, trim,
 * write-zeroes, flush, snapshot, clone, flatten, rm of snapshots, reopen),
 * every read checked against the model. The seed is printed; set
 * IC_SEED=N to replay a failure, IC_MODEL_OPS=N for a longer run. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "isocache/vdisk.h"
#include "tests/unit/store_fixture.h"

#define MODEL_SIZE (3u << 20) /* not a multiple of 2 MiB: a partial last cluster */
#define MODEL_MAX_IMAGES 24
#define MODEL_MAX_IO (200u << 10)

struct model_image {
	char name[64];
	bool snapshot;
	unsigned char *bytes;
	struct ic_vdisk *vd; /* open vdisks only */
};

struct model {
	struct store_fixture fx;
	struct model_image img[MODEL_MAX_IMAGES];
	unsigned n, next_name;
	unsigned long long seed, first_seed;
	unsigned char *buf;
};

static uint64_t
model_rand(struct model *m)
{
	/* xorshift64*: deterministic per seed on every platform. */
	m->seed ^= m->seed >> 12;
	m->seed ^= m->seed << 25;
	m->seed ^= m->seed >> 27;
	return m->seed * 2685821657736338717ull;
}

static uint64_t
model_below(struct model *m, uint64_t n)
{
	return n ? model_rand(m) % n : 0;
}

/* A random range, biased to sector and cluster edges now and then. */
static void
model_range(struct model *m, uint64_t *off, uint64_t *len)
{
	*off = model_below(m, MODEL_SIZE);
	*len = 1 + model_below(m, MODEL_MAX_IO);
	if (model_below(m, 4) == 0)
		*off &= ~(uint64_t)4095;
	if (model_below(m, 4) == 0)
		*len = (*len + 4095) & ~(uint64_t)4095;
	if (*off + *len > MODEL_SIZE)
		*len = MODEL_SIZE - *off;
	if (*len == 0)
		*len = 1, *off = MODEL_SIZE - 1;
}

static struct model_image *
model_pick(struct model *m, bool want_vdisk)
{
	for (int tries = 0; tries < 64; tries++) {
		struct model_image *im = &m->img[model_below(m, m->n)];

		if (im->snapshot != want_vdisk)
			return im;
	}
	for (unsigned i = 0; i < m->n; i++) /* unlucky: the first there is */
		if (m->img[i].snapshot != want_vdisk)
			return &m->img[i];
	return NULL;
}

static void
model_check_read(struct model *m, struct model_image *im, uint64_t off, uint64_t len)
{
	struct ic_vdisk *vd = im->vd;
	bool opened = false;

	if (!vd) {
		assert_int_equal(ic_vdisk_open(m->fx.store, im->name, IC_OPEN_RDONLY, NULL, &vd), 0);
		opened = true;
	}
	assert_int_equal(ic_vdisk_pread(vd, m->buf, len, off), 0);
	if (memcmp(m->buf, im->bytes + off, len) != 0) {
		for (uint64_t i = 0; i < len; i++)
			if (m->buf[i] != im->bytes[off + i])
				fail_msg("%s: byte %llu reads 0x%02x, model has 0x%02x (seed %llu)",
					 im->name, (unsigned long long)(off + i), m->buf[i],
					 im->bytes[off + i], m->first_seed);
	}
	if (opened)
		ic_vdisk_close(vd);
}

static struct model_image *
model_add(struct model *m, const char *name, bool snapshot, const unsigned char *bytes)
{
	struct model_image *im = &m->img[m->n++];

	snprintf(im->name, sizeof(im->name), "%s", name);
	im->snapshot = snapshot;
	im->bytes = malloc(MODEL_SIZE);
	assert_non_null(im->bytes);
	if (bytes)
		memcpy(im->bytes, bytes, MODEL_SIZE);
	else
		memset(im->bytes, 0, MODEL_SIZE);
	im->vd = NULL;
	return im;
}

static void
model_open(struct model *m, struct model_image *im)
{
	assert_int_equal(ic_vdisk_open(m->fx.store, im->name, 0, NULL, &im->vd), 0);
}

static void
model_step(struct model *m)
{
	struct model_image *im = NULL;
	uint64_t off, len, op = model_below(m, 100);
	char name[80];

	if (op < 35) { /* write */
		im = model_pick(m, true);
		model_range(m, &off, &len);
		for (uint64_t i = 0; i < len; i++)
			m->buf[i] = (unsigned char)model_rand(m);
		assert_int_equal(ic_vdisk_pwrite(im->vd, m->buf, len, off,
						 model_below(m, 10) ? 0 : IC_REQ_FUA), 0);
		memcpy(im->bytes + off, m->buf, len);
	} else if (op < 70) { /* read any image */
		im = &m->img[model_below(m, m->n)];
		model_range(m, &off, &len);
		model_check_read(m, im, off, len);
	} else if (op < 78) { /* trim or write-zeroes */
		im = model_pick(m, true);
		model_range(m, &off, &len);
		if (op & 1)
			assert_int_equal(ic_vdisk_trim(im->vd, len, off, 0), 0);
		else
			assert_int_equal(ic_vdisk_zero(im->vd, len, off, 0), 0);
		memset(im->bytes + off, 0, len);
	} else if (op < 82) { /* flush */
		im = model_pick(m, true);
		assert_int_equal(ic_vdisk_flush(im->vd), 0);
	} else if (op < 86 && m->n + 1 < MODEL_MAX_IMAGES) { /* snapshot */
		im = model_pick(m, true);
		assert_int_equal(ic_vdisk_close(im->vd), 0);
		im->vd = NULL;
		snprintf(name, sizeof(name), "%s@s%u", im->name, m->next_name++);
		assert_int_equal(ic_image_snapshot(m->fx.store, name), 0);
		model_add(m, name, true, im->bytes);
		model_open(m, im);
	} else if (op < 90 && m->n < MODEL_MAX_IMAGES) { /* clone */
		im = model_pick(m, false);
		if (!im)
			return;
		snprintf(name, sizeof(name), "c%u", m->next_name++);
		assert_int_equal(ic_image_clone(m->fx.store, im->name, name), 0);
		model_open(m, model_add(m, name, false, im->bytes));
	} else if (op < 92) { /* flatten */
		im = model_pick(m, true);
		assert_int_equal(ic_vdisk_close(im->vd), 0);
		assert_int_equal(ic_image_flatten(m->fx.store, im->name, NULL, NULL), 0);
		model_open(m, im);
	} else if (op < 95) { /* remove a snapshot: merged, or refused while shared */
		struct ic_image_info info;
		unsigned i;

		im = model_pick(m, false);
		if (!im)
			return;
		/* Close every vdisk so a merge can claim the child. */
		for (i = 0; i < m->n; i++)
			if (m->img[i].vd) {
				assert_int_equal(ic_vdisk_close(m->img[i].vd), 0);
				m->img[i].vd = NULL;
			}
		int rc = ic_image_remove(m->fx.store, im->name, NULL, NULL);
		if (rc == 0) {
			assert_int_equal(ic_image_info(m->fx.store, im->name, &info), -ENOENT);
			free(im->bytes);
			*im = m->img[--m->n];
		} else {
			assert_int_equal(rc, -EBUSY);
		}
		for (i = 0; i < m->n; i++)
			if (!m->img[i].snapshot)
				model_open(m, &m->img[i]);
	} else { /* reopen */
		im = model_pick(m, true);
		assert_int_equal(ic_vdisk_close(im->vd), 0);
		model_open(m, im);
	}
}

static void
test_model_random_operations(void **state)
{
	struct model *m = *state;
	const char *env = getenv("IC_SEED");
	const char *ops_env = getenv("IC_MODEL_OPS");
	unsigned long long seed = env ? strtoull(env, NULL, 10) : (unsigned long long)time(NULL);
	unsigned ops = ops_env ? (unsigned)atoi(ops_env) : 3000;

	printf("model: seed %llu (replay with IC_SEED=%llu), %u operations\n", seed, seed, ops);
	m->seed = m->first_seed = seed ? seed : 1;
	assert_int_equal(ic_image_create(m->fx.store, "disk", MODEL_SIZE), 0);
	model_open(m, model_add(m, "disk", false, NULL));
	for (unsigned i = 0; i < ops; i++)
		model_step(m);
	/* Finally, every image reads entirely as its model, after a reopen. */
	for (unsigned i = 0; i < m->n; i++) {
		if (m->img[i].vd) {
			assert_int_equal(ic_vdisk_close(m->img[i].vd), 0);
			m->img[i].vd = NULL;
		}
	}
	for (unsigned i = 0; i < m->n; i++)
		for (uint64_t off = 0; off < MODEL_SIZE; off += MODEL_MAX_IO)
			model_check_read(m, &m->img[i], off,
					 MODEL_SIZE - off < MODEL_MAX_IO ? MODEL_SIZE - off : MODEL_MAX_IO);
	printf("model: %u images at the end\n", m->n);
}

static int
model_setup(void **state, uint32_t cluster)
{
	struct model *m = calloc(1, sizeof(*m));

	if (!m || store_fixture_init(&m->fx, cluster))
		return -1;
	m->buf = malloc(MODEL_MAX_IO);
	*state = m;
	return m->buf ? 0 : -1;
}

static int
model_setup_4k(void **state)
{
	return model_setup(state, 4096);
}

static int
model_setup_64k(void **state)
{
	return model_setup(state, 65536);
}

static int
model_setup_2m(void **state)
{
	return model_setup(state, 2u << 20);
}

static int
model_teardown(void **state)
{
	struct model *m = *state;

	for (unsigned i = 0; i < m->n; i++) {
		if (m->img[i].vd)
			ic_vdisk_close(m->img[i].vd);
		free(m->img[i].bytes);
	}
	free(m->buf);
	store_fixture_fini(&m->fx);
	free(m);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_model_random_operations, model_setup_4k,
						model_teardown),
		cmocka_unit_test_setup_teardown(test_model_random_operations, model_setup_64k,
						model_teardown),
		cmocka_unit_test_setup_teardown(test_model_random_operations, model_setup_2m,
						model_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
