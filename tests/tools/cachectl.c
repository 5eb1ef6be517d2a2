/* isocache-cachectl: a small isocached client for the tests and for debugging
 * (a test tool: built with the tests, never installed).
 * It speaks the protocol through the client library, and can also abuse
 * it on purpose (the "abuse" commands) to check that the daemon ends only
 * the offending session. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/tools/cachectl.h"
#include "common/cleanup.h"
#include "isocache/cached.h"

static const char cachectl_usage[] =
	"Usage: isocache-cachectl [-s SOCKET] [-t MS] COMMAND [ARG]...\n"
	"\n"
	"Options:\n"
	"  -s, --socket SOCKET    the daemon's socket (default: $ISOCACHE_SOCKET, else\n"
	"                         isocached's default)\n"
	"  -t, --timeout MS       give up on a reply after MS milliseconds\n"
	"  -h, --help             this help (exit status 0)\n"
	"\n"
	"Commands:\n"
	"  register PATH          register the file (opened read-only); print its handle\n"
	"  register-fd N          register the already open descriptor N\n"
	"  cat PATH [--no-wait]   read PATH through the daemon to stdout; blocks the\n"
	"                         daemon cannot serve are read from PATH directly\n"
	"  prefetch PATH          start fills of the whole file\n"
	"  stats PATH|all         print the counters of PATH's layer, or the totals\n"
	"  drop PATH              evict PATH's layer\n"
	"  read-handle H BLOCK N  read with a handle this session never registered\n"
	"  shm KIND PATH          attack the shared arenas (cachectl_shm.c); exit 0\n"
	"                         if every attack failed. KIND: nofd (MAP before\n"
	"                         REGISTER), writable (write to the arena by every\n"
	"                         means), ring (garbage in the hit ring), own (the\n"
	"                         arena holds no page but PATH's own bytes: prints\n"
	"                         how many), spin (copy hits from the arena until\n"
	"                         killed)\n"
	"  abuse KIND             send a bad message; exit 0 if the daemon ends the\n"
	"                         session. KIND: garbage, huge, badlen, nohello,\n"
	"                         twohello, unsealed, extrafd; or noread: send\n"
	"                         requests, never read the replies, print\n"
	"                         \"stalled\", sleep 30 s\n"
	"Exit status: 0 success, 1 refused or failed, 2 usage.\n";

const char *cachectl_socket;
unsigned cachectl_timeout;

int
cachectl_fail(const char *what, int rc)
{
	fprintf(stderr, "isocache-cachectl: %s: %s\n", what, strerror(-rc));
	return 1;
}

static int
cachectl_open(const char *path, struct ic_cached_client **c, uint32_t *handle, uint64_t *size)
{
	IC_AUTOCLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -errno;
	rc = ic_cached_connect(cachectl_socket, cachectl_timeout, c);
	if (rc < 0)
		return rc;
	rc = ic_cached_register(*c, fd, handle, size, NULL);
	if (rc == 0 && ic_cached_map(*c, *handle) < 0)
		fprintf(stderr, "isocache-cachectl: hits take the socket (no arena)\n");
	if (rc < 0) {
		ic_cached_disconnect(*c);
		*c = NULL;
	}
	return rc;
}

static int
cachectl_register_fd(int fd)
{
	struct ic_cached_client *c;
	uint8_t uuid[16];
	uint32_t h;
	uint64_t size;
	int rc;

	if (fd < 0)
		return cachectl_fail("open", -errno);
	rc = ic_cached_connect(cachectl_socket, cachectl_timeout, &c);
	if (rc < 0)
		return cachectl_fail("connect", rc);
	rc = ic_cached_register(c, fd, &h, &size, uuid);
	ic_cached_disconnect(c);
	if (rc < 0)
		return cachectl_fail("register", rc);
	printf("handle=%u size=%llu uuid=", h, (unsigned long long)size);
	for (int i = 0; i < 16; i++)
		printf("%02x", uuid[i]);
	printf("\n");
	return 0;
}

/* Read the whole file through the daemon, falling back to the file itself
 * for what the daemon does not serve and reconnecting after a failure, as
 * the cache filter does. */
static int
cachectl_cat(const char *path, uint32_t flags)
{
	static uint8_t buf[IC_CACHED_MAX_BLOCKS * IC_CACHED_BLOCK];
	struct ic_cached_client *c = NULL;
	IC_AUTOCLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t size = 0, cached = 0, direct = 0, hits;
	uint32_t h = 0;
	struct stat sb;

	if (fd < 0 || fstat(fd, &sb) < 0)
		return cachectl_fail(path, -errno);
	size = (uint64_t)sb.st_size;
	for (uint64_t off = 0; off < size; off += sizeof(buf)) {
		uint64_t len = size - off < sizeof(buf) ? size - off : sizeof(buf);
		uint32_t n = (uint32_t)((len + IC_CACHED_BLOCK - 1) / IC_CACHED_BLOCK);

		hits = 0;
		if (!c && cachectl_open(path, &c, &h, NULL) < 0)
			c = NULL;
		if (c && ic_cached_read(c, h, off / IC_CACHED_BLOCK, n, flags, buf, &hits) < 0) {
			ic_cached_disconnect(c);
			c = NULL;
			hits = 0;
		}
		for (uint32_t i = 0; i < n; i++) {
			size_t o = (size_t)i * IC_CACHED_BLOCK;
			if (hits & (1ull << i)) {
				cached++;
				continue;
			}
			direct++;
			if (pread(fd, buf + o, IC_CACHED_BLOCK, (off_t)(off + o)) < 0)
				return cachectl_fail(path, -errno);
		}
		if (fwrite(buf, 1, len, stdout) != len)
			return cachectl_fail("stdout", -EIO);
	}
	ic_cached_disconnect(c);
	fprintf(stderr, "isocache-cachectl: %llu blocks from the cache, %llu read directly\n",
		(unsigned long long)cached, (unsigned long long)direct);
	return 0;
}

static int
cachectl_layer_cmd(const char *cmd, const char *path)
{
	struct ic_cached_client *c;
	uint64_t stats[IC_CACHED_STAT_COUNT], size, v = 0;
	uint32_t h = IC_CACHED_HANDLE_ALL;
	char name[32];
	int rc = strcmp(path, "all") ? cachectl_open(path, &c, &h, &size)
				     : ic_cached_connect(cachectl_socket, cachectl_timeout, &c);

	if (rc < 0)
		return cachectl_fail(path, rc);
	if (!strcmp(cmd, "stats"))
		rc = ic_cached_stats(c, h, stats);
	else if (!strcmp(cmd, "drop"))
		rc = ic_cached_drop(c, h, &v);
	else
		for (uint64_t b = 0, nb = (size + IC_CACHED_BLOCK - 1) / IC_CACHED_BLOCK;
		     rc == 0 && b < nb; b += IC_CACHED_MAX_BLOCKS)
			rc = ic_cached_prefetch(c, h, b,
						(uint32_t)(nb - b < IC_CACHED_MAX_BLOCKS
								   ? nb - b
								   : IC_CACHED_MAX_BLOCKS),
						NULL);
	ic_cached_disconnect(c);
	if (rc < 0)
		return cachectl_fail(cmd, rc);
	for (int s = 0; !strcmp(cmd, "stats") && s < IC_CACHED_STAT_COUNT; s++)
		printf("%s %llu\n", ic_cached_stat_name(s, name, sizeof(name)),
		       (unsigned long long)stats[s]);
	if (!strcmp(cmd, "drop"))
		printf("dropped %llu\n", (unsigned long long)v);
	return 0;
}

static int
cachectl_read_handle(uint32_t h, uint64_t block, uint32_t n)
{
	static uint8_t buf[IC_CACHED_MAX_BLOCKS * IC_CACHED_BLOCK];
	struct ic_cached_client *c;
	uint64_t hits;
	int rc = ic_cached_connect(cachectl_socket, cachectl_timeout, &c);

	if (rc < 0)
		return cachectl_fail("connect", rc);
	rc = ic_cached_read(c, h, block, n, IC_CACHED_F_WAIT, buf, &hits);
	ic_cached_disconnect(c);
	if (rc < 0)
		return cachectl_fail("read", rc);
	fwrite(buf, IC_CACHED_BLOCK, n, stdout);
	return 0;
}

/* A sealed (or not) memfd the size HELLO m describes. */
static int
cachectl_memfd(const struct ic_cached_msg *m, int seals)
{
	int fd = memfd_create("cachectl", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, (off_t)m->slot * m->nblocks * IC_CACHED_BLOCK) < 0 ||
	    (seals && fcntl(fd, F_ADD_SEALS, seals) < 0))
		return -errno;
	return fd;
}

/* Send a HELLO; returns the reply's status, or -EPIPE if the session ended. */
static int
cachectl_hello(int sock, int seals)
{
	struct ic_cached_msg m = { .type = IC_CACHED_HELLO, .slot = 1, .nblocks = 1, .id = 1 }, r;
	uint8_t p[IC_CACHED_MSG_MAX];
	IC_AUTOCLOSE int mfd = cachectl_memfd(&m, seals);
	int len = ic_cached_encode(&m, p, sizeof(p));
	ssize_t n;

	if (mfd < 0 || ic_cached_send(sock, p, (size_t)len, mfd) < 0)
		return -EIO;
	n = recv(sock, p, sizeof(p), 0);
	if (n <= 0 || ic_cached_decode(p, (size_t)n, 1, &r) < 0)
		return -EPIPE;
	return r.status;
}

/* Exit 0 if the daemon ends the session (EOF or reset) within the timeout. */
int
cachectl_expect_end(int sock)
{
	uint8_t p[IC_CACHED_MSG_MAX];
	ssize_t n = recv(sock, p, sizeof(p), 0);

	if (n == 0 || (n < 0 && errno == ECONNRESET)) {
		printf("session ended\n");
		return 0;
	}
	fprintf(stderr, "isocache-cachectl: the session survived (%zd)\n", n);
	return 1;
}

int
cachectl_connect_raw(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ic_cached_socket_path(cachectl_socket));
	if (sock < 0 || setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int rc = -errno;

		if (sock >= 0)
			close(sock);
		return rc;
	}
	return sock;
}

static int
cachectl_abuse(const char *kind)
{
	IC_AUTOCLOSE int sock = cachectl_connect_raw();
	struct ic_cached_msg m = { .type = IC_CACHED_READ, .nblocks = 1 };
	static uint8_t p[1 << 16];
	int len = ic_cached_encode(&m, p, sizeof(p)), rc = 0;

	if (sock < 0)
		return cachectl_fail("connect", sock);
	if (!strcmp(kind, "garbage")) {
		for (int i = 0; i < 100; i++)
			p[i] = (uint8_t)(i * 37 + 11);
		rc = ic_cached_send(sock, p, 100, -1);
	} else if (!strcmp(kind, "huge")) {
		rc = ic_cached_send(sock, p, sizeof(p), -1);
	} else if (!strcmp(kind, "badlen")) {
		memset(p + 8, 0xff, 4); /* the header's length field */
		rc = ic_cached_send(sock, p, (size_t)len, -1);
	} else if (!strcmp(kind, "nohello")) {
		rc = ic_cached_send(sock, p, (size_t)len, -1);
	} else if (!strcmp(kind, "twohello")) {
		rc = cachectl_hello(sock, F_SEAL_SHRINK | F_SEAL_GROW);
		if (rc == 0)
			rc = cachectl_hello(sock, F_SEAL_SHRINK | F_SEAL_GROW) == -EPIPE ? 0 : -EPROTO;
		return rc ? cachectl_fail("twohello", rc) : cachectl_expect_end(sock);
	} else if (!strcmp(kind, "unsealed")) {
		rc = cachectl_hello(sock, F_SEAL_SHRINK);
		printf("hello: %s\n", strerror(-rc));
		return rc == -EPERM ? 0 : 1;
	} else if (!strcmp(kind, "noread")) {
		/* Requests whose replies are never read: the daemon's sends stall. */
		struct ic_cached_msg st = { .type = IC_CACHED_STATS, .handle = IC_CACHED_HANDLE_ALL };

		/* A send that makes no progress for half a second means the
		 * daemon stopped reading; the connection's 5 s would only delay
		 * the test's wait for "stalled". */
		struct timeval half = { .tv_usec = 500000 };

		len = ic_cached_encode(&st, p, sizeof(p));
		rc = cachectl_hello(sock, F_SEAL_SHRINK | F_SEAL_GROW);
		if (rc == 0 && setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &half, sizeof(half)) < 0)
			rc = -errno;
		for (int i = 0; rc == 0 && i < 4 * IC_CACHED_MAX_SLOTS; i++)
			rc = ic_cached_send(sock, p, (size_t)len, -1);
		if (rc == -EAGAIN) /* the daemon stopped reading: enough */
			rc = 0;
		if (rc == 0) {
			/* Tell the test the daemon's sends now stall. */
			printf("stalled\n");
			fflush(stdout);
			sleep(30);
		}
		return rc ? cachectl_fail(kind, rc) : 0;
	} else if (!strcmp(kind, "extrafd")) {
		rc = cachectl_hello(sock, F_SEAL_SHRINK | F_SEAL_GROW);
		if (rc == 0)
			rc = ic_cached_send(sock, p, (size_t)len, STDIN_FILENO);
	} else {
		fputs(cachectl_usage, stderr);
		return 2;
	}
	if (rc < 0)
		return cachectl_fail(kind, rc);
	return cachectl_expect_end(sock);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "+s:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			cachectl_socket = optarg;
			break;
		case 't':
			cachectl_timeout = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			fputs(cachectl_usage, stdout);
			return 0;
		default:
			fputs(cachectl_usage, stderr);
			return 2;
		}
	}
	argv += optind;
	argc -= optind;
	if (argc == 2 && !strcmp(argv[0], "register"))
		return cachectl_register_fd(open(argv[1], O_RDONLY | O_CLOEXEC));
	if (argc == 2 && !strcmp(argv[0], "register-fd"))
		return cachectl_register_fd(atoi(argv[1]));
	if ((argc == 2 || argc == 3) && !strcmp(argv[0], "cat"))
		return cachectl_cat(argv[1], argc == 3 && !strcmp(argv[2], "--no-wait")
						     ? 0
						     : IC_CACHED_F_WAIT);
	if (argc == 2 && (!strcmp(argv[0], "stats") || !strcmp(argv[0], "drop") ||
			  !strcmp(argv[0], "prefetch")))
		return cachectl_layer_cmd(argv[0], argv[1]);
	if (argc == 4 && !strcmp(argv[0], "read-handle"))
		return cachectl_read_handle((uint32_t)strtoul(argv[1], NULL, 0),
					    strtoull(argv[2], NULL, 0),
					    (uint32_t)strtoul(argv[3], NULL, 0));
	if (argc == 2 && !strcmp(argv[0], "abuse"))
		return cachectl_abuse(argv[1]);
	if (argc == 3 && !strcmp(argv[0], "shm"))
		return cachectl_shm(argv[1], argv[2]);
	fputs(cachectl_usage, stderr);
	return 2;
}
