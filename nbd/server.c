/* Sockets, clients and workers of isocache-nbd.
 *
 * Threads: the main thread accepts; each client gets a thread for the
 * handshake, which then becomes the first worker of ic_nbd_conn_serve; the
 * connection adds workers up to the requests the client keeps in flight
 * (see nbd/conn.c).
 *
 * Stopping (SIGTERM, SIGINT, the --run command ending, the last client of a
 * non-persistent server leaving): stop accepting, shut every client socket
 * for reading so readers see the end of the stream, wait for the requests
 * in flight to be answered, flush, exit. */
#include "nbd/server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"

#define SRV_MAX_LISTEN 8

struct srv_client {
	struct ic_nbd_fds fds;
	struct srv_exports *ex;
	unsigned slots;
	struct srv_client *next;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct srv_client *list;
	unsigned count;
	bool served; /* a client has come (and maybe gone) */
	int listen_fd[SRV_MAX_LISTEN];
	int nlisten;
	int wake[2];
	int exit_rc; /* atomic: srv_stop runs on any thread */
} srv = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
	  .wake = { -1, -1 } };

void
srv_stop(int rc)
{
	char c = 0;

	__atomic_store_n(&srv.exit_rc, rc, __ATOMIC_RELEASE);
	if (srv.wake[1] >= 0 && write(srv.wake[1], &c, 1) < 0)
		return; /* the pipe is full: a wake-up is pending anyway */
}

/* One client from handshake to hang-up. Returns 0 or -errno. */
static int
srv_serve_client(struct srv_client *cl)
{
	struct ic_nbd_io io;
	struct ic_nbd_conn_config cfg = { .io = &io, .ops = &srv_vdisk_ops, .slots = cl->slots };
	struct ic_nbd_conn *conn;
	int rc;

	ic_nbd_io_fd(&io, &cl->fds);
	rc = ic_nbd_handshake(&io, &cl->ex->catalog, &cfg.session);
	if (rc < 0)
		return rc == -ECONNABORTED || rc == -ECONNRESET ? 0 : rc;
	cfg.backend = cfg.session.export->priv;
	rc = ic_nbd_conn_new(&cfg, &conn);
	if (rc < 0) {
		ic_log(IC_LOG_ERR, "nbd: no memory for a connection");
		return rc;
	}
	ic_log(IC_LOG_DEBUG, "nbd: client on export %s", cfg.session.export->name);
	srv_export_enter(cfg.backend);
	rc = ic_nbd_conn_serve(conn);
	srv_export_leave(cfg.backend);
	ic_nbd_conn_free(conn);
	return rc;
}

static void *
srv_client_thread(void *arg)
{
	struct srv_client *cl = arg, **p;

	srv_serve_client(cl);
	close(cl->fds.in);
	pthread_mutex_lock(&srv.mu);
	for (p = &srv.list; *p != cl; p = &(*p)->next)
		;
	*p = cl->next;
	srv.count--;
	pthread_cond_broadcast(&srv.cond);
	pthread_mutex_unlock(&srv.mu);
	free(cl);
	return NULL;
}

static void
srv_accept(int lfd, const struct srv_config *cfg, struct srv_exports *ex)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	struct srv_client *cl;
	pthread_t t;
	int one = 1;

	if (fd < 0)
		return;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		ic_log(IC_LOG_ERR, "nbd: no memory for a new client, refused");
		free(cl);
		close(fd);
		return;
	}
	*cl = (struct srv_client){ .fds = { fd, fd }, .ex = ex, .slots = cfg->slots };
	pthread_mutex_lock(&srv.mu);
	cl->next = srv.list;
	srv.list = cl;
	srv.count++;
	srv.served = true;
	pthread_mutex_unlock(&srv.mu);
	if (pthread_create(&t, NULL, srv_client_thread, cl) != 0) {
		ic_log(IC_LOG_ERR, "nbd: cannot start a client thread, refused");
		shutdown(fd, SHUT_RDWR);
		srv_client_thread(cl);
		return;
	}
	pthread_detach(t);
}

static int
srv_listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		ic_log(IC_LOG_ERR, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		int rc = -errno;

		ic_log(IC_LOG_ERR, "cannot listen on %s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	srv.listen_fd[srv.nlisten++] = fd;
	return 0;
}

static int
srv_listen_tcp(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	int rc = getaddrinfo(host, port, &hints, &res), one = 1;

	if (rc) {
		ic_log(IC_LOG_ERR, "cannot resolve %s port %s: %s", host, port, gai_strerror(rc));
		return -EINVAL;
	}
	rc = -EADDRNOTAVAIL;
	for (ai = res; ai && srv.nlisten < SRV_MAX_LISTEN; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
			rc = -errno;
			close(fd);
			continue;
		}
		srv.listen_fd[srv.nlisten++] = fd;
	}
	freeaddrinfo(res);
	if (srv.nlisten == 0) {
		ic_log(IC_LOG_ERR, "cannot listen on %s port %s: %s", host, port, strerror(-rc));
		return rc;
	}
	return 0;
}

int
srv_listen(const struct srv_config *cfg)
{
	if (pipe2(srv.wake, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	if (cfg->socket_path)
		return srv_listen_unix(cfg->socket_path);
	return srv_listen_tcp(cfg->bind, cfg->port);
}

static sigset_t srv_signals;

void
srv_block_signals(void)
{
	sigemptyset(&srv_signals);
	sigaddset(&srv_signals, SIGTERM);
	sigaddset(&srv_signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &srv_signals, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* SIGTERM and SIGINT are blocked in every thread and taken here. */
static void *
srv_signal_thread(void *arg)
{
	int sig;

	(void)arg;
	if (sigwait(&srv_signals, &sig) == 0) {
		ic_log(IC_LOG_INFO, "signal %d: finishing requests in flight, then exiting", sig);
		srv_stop(0);
	}
	return NULL;
}

/* Wait for every client to finish, then stop the workers and flush. */
static int
srv_drain(struct srv_exports *ex)
{
	struct srv_client *cl;
	int rc;

	pthread_mutex_lock(&srv.mu);
	for (cl = srv.list; cl; cl = cl->next)
		shutdown(cl->fds.in, SHUT_RD);
	while (srv.count)
		pthread_cond_wait(&srv.cond, &srv.mu);
	pthread_mutex_unlock(&srv.mu);
	rc = srv_exports_close(ex);
	if (rc < 0)
		ic_log(IC_LOG_ERR, "flush at exit failed: %s", strerror(-rc));
	return rc < 0 ? 1 : __atomic_load_n(&srv.exit_rc, __ATOMIC_ACQUIRE);
}

int
srv_run(const struct srv_config *cfg, struct srv_exports *ex)
{
	struct pollfd pfd[SRV_MAX_LISTEN + 1];
	pthread_t t;
	int i;

	if (pthread_create(&t, NULL, srv_signal_thread, NULL) == 0)
		pthread_detach(t);
	for (i = 0; i < srv.nlisten; i++)
		pfd[i] = (struct pollfd){ .fd = srv.listen_fd[i], .events = POLLIN };
	pfd[srv.nlisten] = (struct pollfd){ .fd = srv.wake[0], .events = POLLIN };
	for (;;) {
		int n = poll(pfd, (nfds_t)srv.nlisten + 1, cfg->persistent ? -1 : 200);

		if (n < 0 && errno != EINTR)
			break;
		if (pfd[srv.nlisten].revents)
			break;
		for (i = 0; n > 0 && i < srv.nlisten; i++) {
			if (pfd[i].revents & POLLIN)
				srv_accept(pfd[i].fd, cfg, ex);
		}
		if (!cfg->persistent) {
			bool done;

			pthread_mutex_lock(&srv.mu);
			done = srv.served && srv.count == 0;
			pthread_mutex_unlock(&srv.mu);
			if (done)
				break;
		}
	}
	for (i = 0; i < srv.nlisten; i++)
		close(srv.listen_fd[i]);
	if (cfg->socket_path)
		unlink(cfg->socket_path);
	return srv_drain(ex);
}

int
srv_run_stdio(const struct srv_config *cfg, struct srv_exports *ex)
{
	struct srv_client *cl = calloc(1, sizeof(*cl));
	int rc;

	signal(SIGPIPE, SIG_IGN);
	if (!cl)
		return 1;
	*cl = (struct srv_client){ .fds = { 0, 1 }, .ex = ex, .slots = cfg->slots };
	rc = srv_serve_client(cl);
	free(cl);
	if (srv_exports_close(ex) < 0)
		rc = -EIO;
	return rc < 0 ? 1 : 0;
}
