/* bench/cached-hit's worker: the latency of one 4 KiB read that hits in
 * isocached, from the layer's shared arena (a copy, no syscall) and over
 * the socket (client -> daemon -> shared buffer), against a 4 KiB pread of
 * the same file from the page cache and an O_DIRECT pread. Each is timed
 * COUNT times at random offsets of a warm FILE (a frozen layer file);
 * prints p50 and p99 in microseconds and the ratios.
 *
 *   cached_hit FILE COUNT          (the daemon at $ISOCACHE_SOCKET)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "isocache/cached.h"

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
report(const char *name, double *lat, size_t n, double *p50)
{
	qsort(lat, n, sizeof(*lat), cmp_double);
	*p50 = lat[n / 2];
	printf("| %s | %.1f | %.1f |\n", name, lat[n / 2], lat[n * 99 / 100]);
}

int
main(int argc, char **argv)
{
	struct ic_cached_client *c, *sc;
	static char buf[4096] __attribute__((aligned(4096)));
	uint64_t hits, blocks;
	uint32_t h, sh;
	struct stat st;
	double *lat, p_hit, p_shared, p_page, p_direct;
	size_t count;
	int fd, dfd;

	if (argc != 3) {
		fprintf(stderr, "usage: cached_hit FILE COUNT\n");
		return 2;
	}
	count = strtoul(argv[2], NULL, 10);
	lat = calloc(count, sizeof(*lat));
	fd = open(argv[1], O_RDONLY);
	dfd = open(argv[1], O_RDONLY | O_DIRECT);
	if (!lat || fd < 0 || dfd < 0 || fstat(fd, &st) || ic_cached_connect(NULL, 0, &c) ||
	    ic_cached_register(c, fd, &h, NULL, NULL) || ic_cached_connect(NULL, 0, &sc) ||
	    ic_cached_register(sc, fd, &sh, NULL, NULL) || ic_cached_map(sc, sh)) {
		fprintf(stderr, "cached_hit: cannot set up (file, daemon)\n");
		return 1;
	}
	blocks = (uint64_t)st.st_size / 4096;
	/* Warm both caches: every block read once through each. */
	for (uint64_t b = 0; b < blocks; b++) {
		if (ic_cached_read(c, h, b, 1, IC_CACHED_F_WAIT, buf, &hits) || pread(fd, buf, 4096, (off_t)(b * 4096)) != 4096)
			return 1;
	}
	/* And the shared client's mapping: its first touch of a page faults. */
	for (uint64_t b = 0; b < blocks; b++) {
		if (ic_cached_read(sc, sh, b, 1, 0, buf, &hits))
			return 1;
	}
	srand(1);
	printf("| 4 KiB read, %zu at random offsets | p50 us | p99 us |\n|---|---:|---:|\n", count);
	for (size_t i = 0; i < count; i++) {
		uint64_t b = (uint64_t)rand() % blocks;
		double t0 = now_us();

		if (ic_cached_read(sc, sh, b, 1, 0, buf, &hits) || hits != 1)
			return 1;
		lat[i] = now_us() - t0;
	}
	report("isocached hit, shared arena (copy, no syscall)", lat, count, &p_shared);
	for (size_t i = 0; i < count; i++) {
		uint64_t b = (uint64_t)rand() % blocks;
		double t0 = now_us();

		if (ic_cached_read(c, h, b, 1, 0, buf, &hits) || hits != 1)
			return 1;
		lat[i] = now_us() - t0;
	}
	report("isocached hit, socket (--no-shared: client, daemon, shared buffer)", lat, count,
	       &p_hit);
	for (size_t i = 0; i < count; i++) {
		off_t off = (off_t)((uint64_t)rand() % blocks * 4096);
		double t0 = now_us();

		if (pread(fd, buf, 4096, off) != 4096)
			return 1;
		lat[i] = now_us() - t0;
	}
	report("pread, page cache", lat, count, &p_page);
	for (size_t i = 0; i < count; i++) {
		off_t off = (off_t)((uint64_t)rand() % blocks * 4096);
		double t0 = now_us();

		if (pread(dfd, buf, 4096, off) != 4096)
			return 1;
		lat[i] = now_us() - t0;
	}
	report("pread, O_DIRECT", lat, count, &p_direct);
	printf("\np50 ratios: shared hit / page cache %.2f (target <= 2), socket hit / page cache "
	       "%.2f, socket hit / O_DIRECT %.2f\n",
	       p_shared / p_page, p_hit / p_page, p_hit / p_direct);
	ic_cached_disconnect(sc);
	ic_cached_disconnect(c);
	return 0;
}
