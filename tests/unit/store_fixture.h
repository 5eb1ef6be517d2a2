/* A store in a fresh temporary directory for unit tests, removed after. */
#ifndef IC_TESTS_STORE_FIXTURE_H
#define IC_TESTS_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "isocache/vdisk.h"

struct store_fixture {
	char dir[64];
	struct ic_store *store;
};

static inline int
store_fixture_init(struct store_fixture *fx, uint32_t cluster)
{
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/ic-unit-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	if (ic_store_init(fx->dir, cluster, IC_STORE_PRIVATE) || ic_store_open(fx->dir, &fx->store))
		return -1;
	return 0;
}

static inline void
store_fixture_fini(struct store_fixture *fx)
{
	char cmd[256];

	ic_store_close(fx->store);
	/* Frozen layer files are immutable when root: lift that before rm. */
	snprintf(cmd, sizeof(cmd), "chattr -R -i %s 2>/dev/null; rm -rf %s", fx->dir, fx->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fx->dir);
}

#endif
