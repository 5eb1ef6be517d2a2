/* Sockets, clients and workers of isocache-nbd.
 *
 * Threads: the main thread accepts; each client gets a thread for the
 * handshake, which then becomes the first worker of ic_nbd_conn_serve; the
 * connection adds workers up to the requests the client keeps in flight
 * (see nbd/conn.c).
 *
 * At most max_clients (-e) clients are served at once: while that many
 * are connected the listening sockets are not polled, so further clients
 * wait in the kernel's backlog until one leaves, as with qemu-nbd.
 *
 * Stopping (SIGTERM, SIGINT, the --run command ending, the last client of a
 * non-persistent server leaving): stop accepting, shut every client socket
 * for reading so readers see the end of the stream, wait for the requests
 * in flight to be answered, flush, exit. */
#include "nbd/server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "nbd/tls.h"

#define SRV_MAX_LISTEN 8
/* Seconds a stopping server waits for clients to take their replies. */
#define SRV_DRAIN_GRACE 10

struct srv_client {
	struct ic_nbd_fds fds;
	struct srv_exports *ex;
	const struct srv_config *cfg;
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
	dev_t unix_dev;	/* the socket file we made (-k) */
	ino_t unix_ino;
	int wake[2];	/* a byte: a client left, or (stopping set) stop */
	bool stopping;	/* atomic */
	int exit_rc; /* atomic: srv_stop runs on any thread */
} srv = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
	  .wake = { -1, -1 } };

static void
srv_wake(void)
{
	char c = 0;

	if (srv.wake[1] >= 0 && write(srv.wake[1], &c, 1) < 0)
		return; /* the pipe is full: a wake-up is pending anyway */
}

void
srv_stop(int rc)
{
	__atomic_store_n(&srv.exit_rc, rc, __ATOMIC_RELEASE);
	__atomic_store_n(&srv.stopping, true, __ATOMIC_RELEASE);
	srv_wake();
}

/* One client from handshake to hang-up. Returns 0 or -errno. */
static int
srv_serve_client(struct srv_client *cl)
{
	struct ic_nbd_io io;
	struct ic_nbd_conn_config cfg = { .io = &io, .ops = &srv_vdisk_ops,
					  .slots = cl->cfg->slots,
					  .max_inflight = cl->cfg->max_inflight };
	struct srv_tls_conn tc = { .tls = cl->cfg->tls, .fds = &cl->fds };
	struct ic_nbd_tls tls = { .required = cl->cfg->tls_required, .start = srv_tls_start,
				  .arg = &tc };
	struct ic_nbd_conn *conn;
	bool tls_on;
	int rc;

	ic_nbd_io_fd(&io, &cl->fds);
	rc = ic_nbd_handshake_tls(&io, &cl->ex->catalog, tc.tls ? &tls : NULL, &cfg.session,
				  &tls_on);
	if (rc == 0) {
		struct srv_export *e = cfg.session.export->priv;

		cfg.backend = e;
		cfg.stats = &e->replies;
		rc = ic_nbd_conn_new(&cfg, &conn);
	}
	if (rc == 0) {
		ic_log(IC_LOG_DEBUG, "nbd: client on export %s%s", cfg.session.export->name,
		       tls_on ? " over TLS" : "");
		srv_export_enter(cfg.backend);
		rc = ic_nbd_conn_serve(conn);
		srv_export_leave(cfg.backend);
		ic_nbd_conn_free(conn);
	} else if (rc == -ENOMEM) {
		ic_log(IC_LOG_ERR, "nbd: no memory for a connection");
	}
	srv_tls_conn_end(&tc);
	return rc == -ECONNABORTED || rc == -ECONNRESET ? 0 : rc;
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
	srv_wake(); /* room for a waiting client */
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
	*cl = (struct srv_client){ .fds = { fd, fd }, .ex = ex, .cfg = cfg };
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

/* May we bind a Unix socket at path? Nothing there, or a socket nobody
 * listens on (left by a server that died): yes, it is removed. A live
 * listener (it accepts a connect) or anything but a socket: no, because
 * replacing it would leave that server unreachable, and its exit would
 * delete ours. */
static int
srv_unix_free(const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, rc;

	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		ic_log(IC_LOG_ERR, "cannot listen on %s: it exists and is not a socket",
		       sa->sun_path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ? 0 : -errno;
	close(fd);
	if (rc == 0) {
		ic_log(IC_LOG_ERR, "cannot listen on %s: another server is listening there",
		       sa->sun_path);
		return -EADDRINUSE;
	}
	if (rc != -ECONNREFUSED) {
		ic_log(IC_LOG_ERR, "cannot listen on %s: %s", sa->sun_path, strerror(-rc));
		return rc;
	}
	ic_log(IC_LOG_INFO, "%s: nobody listens there, replacing it", sa->sun_path);
	return unlink(sa->sun_path) < 0 && errno != ENOENT ? -errno : 0;
}

static int
srv_listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		ic_log(IC_LOG_ERR, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	rc = srv_unix_free(&sa);
	if (rc < 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* bind fails with EADDRINUSE if another server made it meanwhile. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
	    stat(path, &st) < 0) {
		rc = -errno;
		ic_log(IC_LOG_ERR, "cannot listen on %s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	srv.unix_dev = st.st_dev;
	srv.unix_ino = st.st_ino;
	srv.listen_fd[srv.nlisten++] = fd;
	ic_log(IC_LOG_INFO, "listening on %s", path);
	return 0;
}

/* Remove our socket file, unless it has been replaced by someone else's. */
static void
srv_unlink_unix(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0 && st.st_dev == srv.unix_dev && st.st_ino == srv.unix_ino)
		unlink(path);
}

/* Log where fd listens: address and port, the chosen one for port 0. */
static void
srv_log_tcp(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV))
		return;
	ic_log(IC_LOG_INFO, ss.ss_family == AF_INET6 ? "listening on [%s]:%s" : "listening on %s:%s",
	       host, port);
}

static bool
srv_loopback(const struct addrinfo *ai)
{
	if (ai->ai_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) ==
		       127;
	return ai->ai_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
}

/* Plain NBD carries no authentication: anyone who reaches the port reads
 * and writes the exports. Beyond loopback that takes TLS or --insecure. */
static int
srv_check_exposure(const struct srv_config *cfg, const struct addrinfo *res)
{
	const struct addrinfo *ai;

	if (cfg->tls_required || cfg->insecure)
		return 0;
	for (ai = res; ai; ai = ai->ai_next) {
		if (!srv_loopback(ai)) {
			ic_log(IC_LOG_ERR, "refusing to listen on %s without TLS: any host could "
			       "read and write the exports (use --tls=require with "
			       "--tls-certificates or --tls-psk, or say --insecure)", cfg->bind);
			return -EPERM;
		}
	}
	return 0;
}

static int
srv_listen_tcp(const struct srv_config *cfg)
{
	const char *host = cfg->bind, *port = cfg->port;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	int rc = getaddrinfo(host, port, &hints, &res), one = 1;

	if (rc) {
		ic_log(IC_LOG_ERR, "cannot resolve %s port %s: %s", host, port, gai_strerror(rc));
		return -EINVAL;
	}
	rc = srv_check_exposure(cfg, res);
	if (rc < 0) {
		freeaddrinfo(res);
		return rc;
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
		srv_log_tcp(fd);
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
	return srv_listen_tcp(cfg);
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

/* Wait for every client to finish, then stop the workers and flush. A
 * client that reads no replies would keep its workers blocked in send
 * forever: after SRV_DRAIN_GRACE seconds its socket is shut both ways, so
 * those sends fail and the workers end. */
static int
srv_drain(struct srv_exports *ex)
{
	struct srv_client *cl;
	struct timespec deadline;
	int rc;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += SRV_DRAIN_GRACE;
	pthread_mutex_lock(&srv.mu);
	for (cl = srv.list; cl; cl = cl->next)
		shutdown(cl->fds.in, SHUT_RD);
	while (srv.count && pthread_cond_timedwait(&srv.cond, &srv.mu, &deadline) != ETIMEDOUT)
		;
	if (srv.count) {
		ic_log(IC_LOG_WARN, "%u client%s not reading replies after %d s: disconnecting",
		       srv.count, srv.count == 1 ? "" : "s", SRV_DRAIN_GRACE);
		for (cl = srv.list; cl; cl = cl->next)
			shutdown(cl->fds.in, SHUT_RDWR);
	}
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
		bool full;
		int n;

		pthread_mutex_lock(&srv.mu);
		full = cfg->max_clients && srv.count >= cfg->max_clients;
		pthread_mutex_unlock(&srv.mu);
		for (i = 0; i < srv.nlisten; i++)
			pfd[i].events = full ? 0 : POLLIN;
		n = poll(pfd, (nfds_t)srv.nlisten + 1, cfg->persistent ? -1 : 200);
		if (n < 0 && errno != EINTR)
			break;
		if (pfd[srv.nlisten].revents) {
			char buf[64];

			while (read(srv.wake[0], buf, sizeof(buf)) > 0)
				;
			if (__atomic_load_n(&srv.stopping, __ATOMIC_ACQUIRE))
				break;
		}
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
		srv_unlink_unix(cfg->socket_path);
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
	*cl = (struct srv_client){ .fds = { 0, 1 }, .ex = ex, .cfg = cfg };
	rc = srv_serve_client(cl);
	free(cl);
	if (srv_exports_close(ex) < 0)
		rc = -EIO;
	return rc < 0 ? 1 : 0;
}
