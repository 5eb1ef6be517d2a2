/* A TCP relay in front of one real etcd member that loses kv/txn requests
 * or their answers on demand, or holds one back, for the etcd backend's
 * cases (test_meta_etcd_cases.h): what a member does when it dies after
 * taking a request, or before; another writer's change between two
 * requests. Everything else passes through unchanged.
 *
 * Plain http only (the relay reads the request line). A connection
 * is one thread; proxy_stop ends them all. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROXY_CONNS_MAX 64

enum proxy_fault {
	PROXY_CUT_REQUEST, /* close at the request line: the member never has it */
	PROXY_LOSE_ANSWER, /* pass the request, close at the answer's first byte */
};

struct etcd_proxy {
	int lfd, stopfd;
	unsigned port;
	struct sockaddr_in upstream;
	enum proxy_fault fault;
	atomic_int faults; /* kv/txn requests still to lose */
	atomic_int lost;   /* kv/txn requests lost so far */
	/* proxy_hold: the kv/txn request numbered hold_at (from 1) waits, once
	 * held is posted, until release is; answered is posted when etcd's
	 * answer to it comes (its client may have given up on it long ago). */
	atomic_int txns, hold_at;
	sem_t held, release, answered;
	pthread_t acceptor, conn[PROXY_CONNS_MAX];
	atomic_int nconn;
};

struct proxy_conn {
	struct etcd_proxy *p;
	int client;
};

/* Close fd with a reset, as a member that dies does. */
static void
proxy_reset(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/* Take one of the faults still to come, for a chunk holding a kv/txn
 * request line; *held when it is the request to hold, and was. */
static bool
proxy_take_fault(struct etcd_proxy *p, const char *buf, ssize_t n, bool *held)
{
	static const char line[] = "POST /v3/kv/txn ";
	int left = atomic_load(&p->faults);

	if ((size_t)n < sizeof(line) - 1 || memcmp(buf, line, sizeof(line) - 1) != 0)
		return false;
	if (atomic_fetch_add(&p->txns, 1) + 1 == atomic_load(&p->hold_at)) {
		sem_post(&p->held);
		sem_wait(&p->release);
		*held = true;
	}
	while (left > 0 && !atomic_compare_exchange_weak(&p->faults, &left, left - 1))
		;
	return left > 0;
}

/* After a held request went to etcd: wait for etcd's first answer bytes
 * (buf), say so, and pass them on to the client, which may be gone. 0, or
 * -1 to end the relay. */
static int
proxy_held_answer(struct etcd_proxy *p, int up, int client, char *buf, size_t size)
{
	struct pollfd fds[2] = { { up, POLLIN, 0 }, { p->stopfd, POLLIN, 0 } };
	ssize_t n;

	if (poll(fds, 2, -1) < 0 || fds[1].revents)
		return -1;
	n = read(up, buf, size);
	if (n <= 0)
		return -1;
	sem_post(&p->answered);
	return write(client, buf, (size_t)n) == n ? 0 : -1;
}

static void *
proxy_relay(void *arg)
{
	struct proxy_conn *c = arg;
	struct etcd_proxy *p = c->p;
	int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool losing = false; /* a request passed whose answer is to be lost */
	char buf[65536];

	if (up < 0 || connect(up, (struct sockaddr *)&p->upstream, sizeof(p->upstream)) < 0)
		goto out;
	for (;;) {
		struct pollfd fds[3] = { { c->client, POLLIN, 0 }, { up, POLLIN, 0 },
					 { p->stopfd, POLLIN, 0 } };
		ssize_t n;

		if (poll(fds, 3, -1) < 0 || fds[2].revents)
			break;
		if (fds[0].revents) {
			bool held = false;

			n = read(c->client, buf, sizeof(buf));
			if (n <= 0)
				break;
			if (!losing && proxy_take_fault(p, buf, n, &held)) {
				if (p->fault == PROXY_CUT_REQUEST) {
					atomic_fetch_add(&p->lost, 1);
					break;
				}
				losing = true;
			}
			if (write(up, buf, (size_t)n) != n)
				break;
			if (held && proxy_held_answer(p, up, c->client, buf, sizeof(buf)) != 0)
				break;
		}
		if (fds[1].revents) {
			n = read(up, buf, sizeof(buf));
			if (n <= 0)
				break;
			if (losing) { /* etcd answers once the txn is applied */
				atomic_fetch_add(&p->lost, 1);
				break;
			}
			if (write(c->client, buf, (size_t)n) != n)
				break;
		}
	}
out:
	if (up >= 0)
		close(up);
	proxy_reset(c->client);
	free(c);
	return NULL;
}

static void *
proxy_accept(void *arg)
{
	struct etcd_proxy *p = arg;

	for (;;) {
		struct pollfd fds[2] = { { p->lfd, POLLIN, 0 }, { p->stopfd, POLLIN, 0 } };
		struct proxy_conn *c;
		int fd, slot;

		if (poll(fds, 2, -1) < 0 || fds[1].revents)
			return NULL;
		fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		slot = atomic_load(&p->nconn);
		c = slot < PROXY_CONNS_MAX ? malloc(sizeof(*c)) : NULL;
		if (!c) {
			close(fd);
			continue;
		}
		*c = (struct proxy_conn){ p, fd };
		if (pthread_create(&p->conn[slot], NULL, proxy_relay, c) != 0) {
			close(fd);
			free(c);
			continue;
		}
		atomic_store(&p->nconn, slot + 1);
	}
}

/* Listen on a free loopback port, relaying to member ("HOST:PORT", an
 * IPv4 address). 0 or -1. */
static int
proxy_start(struct etcd_proxy *p, const char *member)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	char host[64];
	unsigned port;

	memset(p, 0, sizeof(*p));
	sem_init(&p->held, 0, 0);
	sem_init(&p->release, 0, 0);
	sem_init(&p->answered, 0, 0);
	if (sscanf(member, "%63[^:]:%u", host, &port) != 2)
		return -1;
	p->upstream = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, host, &p->upstream.sin_addr) != 1)
		return -1;
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	p->stopfd = eventfd(0, EFD_CLOEXEC);
	if (p->lfd < 0 || p->stopfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(p->lfd, 16) < 0 || getsockname(p->lfd, (struct sockaddr *)&a, &alen) < 0)
		return -1;
	p->port = ntohs(a.sin_port);
	return pthread_create(&p->acceptor, NULL, proxy_accept, p) == 0 ? 0 : -1;
}

/* Lose the next n kv/txn requests (or their answers) with fault. */
static void
proxy_arm(struct etcd_proxy *p, enum proxy_fault fault, int n)
{
	p->fault = fault;
	atomic_store(&p->faults, n);
}

/* Hold the nth kv/txn request from now (1: the next) until proxy_release. */
static void
proxy_hold(struct etcd_proxy *p, int nth)
{
	atomic_store(&p->hold_at, atomic_load(&p->txns) + nth);
}

/* Wait (30 s at most) until sem is posted; 0 or -1. */
static int
proxy_wait(sem_t *sem)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	while (sem_timedwait(sem, &until) != 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

/* Until the held request has come; 0 or -1. */
static int
proxy_wait_held(struct etcd_proxy *p)
{
	return proxy_wait(&p->held);
}

/* Until etcd has answered the held request, once released; 0 or -1. */
static int
proxy_wait_answered(struct etcd_proxy *p)
{
	return proxy_wait(&p->answered);
}

static void
proxy_release(struct etcd_proxy *p)
{
	sem_post(&p->release);
}

static void
proxy_stop(struct etcd_proxy *p)
{
	uint64_t one = 1;

	if (write(p->stopfd, &one, sizeof(one)) != sizeof(one))
		abort();
	pthread_join(p->acceptor, NULL);
	for (int i = 0; i < atomic_load(&p->nconn); i++)
		pthread_join(p->conn[i], NULL);
	close(p->lfd);
	close(p->stopfd);
	sem_destroy(&p->held);
	sem_destroy(&p->release);
	sem_destroy(&p->answered);
}
