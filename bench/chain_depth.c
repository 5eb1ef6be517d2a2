/* bench/chain-depth's worker: build a vdisk whose data is spread over a
 * chain of DEPTH layers, then time 4 KiB reads through the vdisk library
 * with the same access pattern as `qemu-img bench -d 1 -S STEP`: offset
 * advances by STEP and wraps at the disk's end. Prints "IOPS N CPU-NS/OP M":
 * the wall-clock rate, and the CPU time the process spent per read, which
 * other load on the machine changes far less than the wall clock.
 *
 *   chain_depth STORE DEPTH SIZE_MIB COUNT STEP
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "isocache/vdisk.h"

static double
now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Layer i of the chain holds the clusters c with c % depth == i. */
static int
build(struct ic_store *store, unsigned depth, uint64_t size)
{
	uint32_t cs = ic_store_cluster_size(store);
	char *buf = malloc(cs);
	char snap[64];
	int rc = buf ? ic_image_create(store, "d", size) : -1;

	for (unsigned i = 0; rc == 0 && i < depth; i++) {
		struct ic_vdisk *vd;

		rc = ic_vdisk_open(store, "d", 0, NULL, &vd);
		for (uint64_t c = i; rc == 0 && c * cs < size; c += depth) {
			memset(buf, (int)(c % 251) + 1, cs);
			rc = ic_vdisk_pwrite(vd, buf, cs, c * cs, 0);
		}
		if (rc == 0)
			rc = ic_vdisk_close(vd);
		snprintf(snap, sizeof(snap), "d@l%u", i);
		if (rc == 0 && i + 1 < depth)
			rc = ic_image_snapshot(store, snap);
	}
	free(buf);
	return rc;
}

int
main(int argc, char **argv)
{
	struct ic_store *store;
	struct ic_vdisk *vd;
	char buf[4096] __attribute__((aligned(4096)));
	uint64_t size, count, step, off = 0;
	unsigned depth;
	double t0, t1, c0, c1;

	if (argc != 6) {
		fprintf(stderr, "usage: chain_depth STORE DEPTH SIZE_MIB COUNT STEP\n");
		return 2;
	}
	depth = (unsigned)atoi(argv[2]);
	size = strtoull(argv[3], NULL, 10) << 20;
	count = strtoull(argv[4], NULL, 10);
	step = strtoull(argv[5], NULL, 10);
	if (ic_store_init(argv[1], 0, IC_STORE_PRIVATE) || ic_store_open(argv[1], &store) ||
	    build(store, depth, size) || ic_vdisk_open(store, "d", IC_OPEN_RDONLY, NULL, &vd))
		return 1;
	/* One pass over every block the loop reads, to warm the page cache, as
	 * qemu-img bench's runs are warm too. */
	for (uint64_t i = 0; i < size / sizeof(buf); i++, off = (off + step) % size)
		if (ic_vdisk_pread(vd, buf, sizeof(buf), off))
			return 1;
	off = 0;
	t0 = now(CLOCK_MONOTONIC);
	c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	for (uint64_t i = 0; i < count; i++) {
		if (ic_vdisk_pread(vd, buf, sizeof(buf), off))
			return 1;
		off = (off + step) % size;
	}
	c1 = now(CLOCK_PROCESS_CPUTIME_ID);
	t1 = now(CLOCK_MONOTONIC);
	printf("IOPS %.0f CPU-NS/OP %.0f\n", (double)count / (t1 - t0),
	       (c1 - c0) * 1e9 / (double)count);
	ic_vdisk_close(vd);
	ic_store_close(store);
	return 0;
}
