/* meta/: opening a damaged metadata file fails with -EUCLEAN before LMDB
 * maps it (meta_check_lmdb), where LMDB itself would read past the end of
 * the file (SIGBUS) or make a new environment in an empty one. */
#include <errno.h>
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

#include "isocache/meta.h"

struct fx {
	char dir[64], path[96];
};

static int
setup(void **state)
{
	static const uint8_t uuid[16] = { 1, 2, 3 };
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/ic-meta-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/meta.mdb", f->dir);
	if (ic_meta_create(f->path, uuid, 65536))
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char lock[128];

	snprintf(lock, sizeof(lock), "%s-lock", f->path);
	unlink(f->path);
	unlink(lock);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
expect_refused(const char *path)
{
	struct ic_meta *meta = NULL;

	assert_int_equal(ic_meta_open(path, &meta), -EUCLEAN);
	assert_null(meta);
}

static void
test_intact_opens(void **state)
{
	struct fx *f = *state;
	struct ic_meta *meta;

	assert_int_equal(ic_meta_open(f->path, &meta), 0);
	ic_meta_close(meta);
}

static void
test_truncated_refused(void **state)
{
	struct fx *f = *state;
	struct stat st;

	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(truncate(f->path, st.st_size - 1), 0);
	expect_refused(f->path);
}

static void
test_empty_refused_and_left_empty(void **state)
{
	struct fx *f = *state;
	struct stat st;

	assert_int_equal(truncate(f->path, 0), 0);
	expect_refused(f->path);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, 0);
}

/* A meta page whose last page number lies past the end of the file. */
static void
test_last_page_past_eof_refused(void **state)
{
	struct fx *f = *state;
	uint64_t last_pg = 1000;
	FILE *fp = fopen(f->path, "r+");

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 136, SEEK_SET), 0); /* MDB_meta.mm_last_pg of page 0 */
	assert_int_equal(fwrite(&last_pg, 8, 1, fp), 1);
	fclose(fp);
	expect_refused(f->path);
}

static void
test_bad_magic_refused(void **state)
{
	struct fx *f = *state;
	FILE *fp = fopen(f->path, "r+");

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 16, SEEK_SET), 0); /* MDB_meta.mm_magic of page 0 */
	assert_int_equal(fputc('X', fp), 'X');
	fclose(fp);
	expect_refused(f->path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_intact_opens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_refused_and_left_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_page_past_eof_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_magic_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
