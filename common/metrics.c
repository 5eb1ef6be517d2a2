/* The --metrics listener. We make the listening socket ourselves (so a Unix
 * socket works as well as TCP, and errors name the address) and hand it to
 * libmicrohttpd, which runs its own polling thread: scrapes never touch the
 * program's event loops. Each scrape builds the whole answer in memory
 * (open_memstream) and hands it over; answers are a few kilobytes.
 *
 * libmicrohttpd is loaded when the first listener starts (common/dynlib.h):
 * linked, it brought GnuTLS and its seven libraries into every daemon,
 * --metrics or not. */
#include "common/metrics.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/dynlib.h"
#include "common/log.h"

#define METRICS_LIBMHD "libmicrohttpd.so.12"

/* The libmicrohttpd calls of this file, from the library loaded once. */
static struct {
	struct MHD_Daemon *(*start_daemon)(unsigned int flags, uint16_t port,
					   MHD_AcceptPolicyCallback apc, void *apc_cls,
					   MHD_AccessHandlerCallback dh, void *dh_cls, ...);
	void (*stop_daemon)(struct MHD_Daemon *d);
	struct MHD_Response *(*create_response_from_buffer)(size_t size, void *buffer,
							    enum MHD_ResponseMemoryMode mode);
	enum MHD_Result (*add_response_header)(struct MHD_Response *r, const char *header,
					       const char *content);
	enum MHD_Result (*queue_response)(struct MHD_Connection *c, unsigned int status,
					  struct MHD_Response *r);
	void (*destroy_response)(struct MHD_Response *r);
} mhd;

static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;
static int metrics_loaded; /* 0 once libmicrohttpd is loaded */

static void
metrics_load(void)
{
	static const struct ic_dynsym syms[] = {
		{ "MHD_start_daemon", (void **)&mhd.start_daemon },
		{ "MHD_stop_daemon", (void **)&mhd.stop_daemon },
		{ "MHD_create_response_from_buffer", (void **)&mhd.create_response_from_buffer },
		{ "MHD_add_response_header", (void **)&mhd.add_response_header },
		{ "MHD_queue_response", (void **)&mhd.queue_response },
		{ "MHD_destroy_response", (void **)&mhd.destroy_response },
	};

	metrics_loaded = ic_dynlib_load("--metrics", METRICS_LIBMHD, syms,
					sizeof(syms) / sizeof(syms[0]));
}

struct ic_metrics {
	struct MHD_Daemon *mhd;
	int fd;
	ic_metrics_fn fn;
	void *arg;
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* "" for TCP */
};

static enum MHD_Result
metrics_answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
	       const char *version, const char *upload, size_t *upload_len, void **state)
{
	struct ic_metrics *m = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	(void)url, (void)version, (void)upload, (void)upload_len, (void)state;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return MHD_NO; /* closes the connection */
	out = open_memstream(&text, &len);
	if (!out)
		return MHD_NO;
	m->fn(out, m->arg);
	if (fclose(out) != 0) {
		free(text);
		return MHD_NO;
	}
	resp = mhd.create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	mhd.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	ret = mhd.queue_response(conn, MHD_HTTP_OK, resp);
	mhd.destroy_response(resp);
	return ret;
}

/* A listening socket on "unix:/path". */
static int
metrics_listen_unix(struct ic_metrics *m, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path)) {
		ic_log(IC_LOG_ERR, "--metrics unix:%s: the path is too long (at most %zu bytes)",
		       path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	m->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (m->fd < 0)
		return -errno;
	unlink(path); /* a socket left by an earlier run */
	if (bind(m->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	snprintf(m->unix_path, sizeof(m->unix_path), "%s", path);
	return 0;
}

/* A listening socket on "HOST:PORT" ("[v6]:PORT" for IPv6 literals). */
static int
metrics_listen_tcp(struct ic_metrics *m, const char *where)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai;
	const char *colon = strrchr(where, ':');
	char host[256];
	int one = 1, rc;

	if (!colon || colon == where || !colon[1] || (size_t)(colon - where) >= sizeof(host)) {
		ic_log(IC_LOG_ERR, "--metrics %s: expected HOST:PORT or unix:PATH", where);
		return -EINVAL;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - where), where);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc) {
		ic_log(IC_LOG_ERR, "--metrics %s: %s", where, gai_strerror(rc));
		return -EINVAL;
	}
	m->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rc = m->fd < 0 ? -errno : 0;
	if (rc == 0)
		setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (rc == 0 && bind(m->fd, ai->ai_addr, ai->ai_addrlen) < 0)
		rc = -errno;
	freeaddrinfo(ai);
	return rc;
}

int
ic_metrics_start(const char *where, ic_metrics_fn fn, void *arg, struct ic_metrics **out)
{
	struct ic_metrics *m;
	int rc;

	pthread_once(&metrics_once, metrics_load);
	if (metrics_loaded < 0)
		return metrics_loaded;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->fd = -1;
	m->fn = fn;
	m->arg = arg;
	rc = strncmp(where, "unix:", 5) == 0 ? metrics_listen_unix(m, where + 5)
					       : metrics_listen_tcp(m, where);
	if (rc == 0 && listen(m->fd, 16) < 0)
		rc = -errno;
	if (rc == 0) {
		sigset_t all, old;

		/* The listener's thread inherits a mask with every signal
		 * blocked: SIGTERM must reach the program's own threads (isocache-
		 * fuse's handler wakes its loop only from the thread it runs on). */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		m->mhd = mhd.start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
					  metrics_answer, m, MHD_OPTION_LISTEN_SOCKET, m->fd,
					  MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		rc = m->mhd ? 0 : -EIO;
	}
	if (rc) {
		if (rc != -EINVAL && rc != -ENAMETOOLONG)
			ic_log(IC_LOG_ERR, "--metrics %s: cannot listen: %s", where, strerror(-rc));
		ic_metrics_stop(m);
		return rc;
	}
	ic_log(IC_LOG_INFO, "metrics on %s", where);
	*out = m;
	return 0;
}

void
ic_metrics_stop(struct ic_metrics *m)
{
	if (!m)
		return;
	if (m->mhd)
		mhd.stop_daemon(m->mhd);
	if (m->fd >= 0)
		close(m->fd);
	if (m->unix_path[0])
		unlink(m->unix_path);
	free(m);
}

void
ic_metrics_family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
ic_metrics_label(FILE *out, const char *value)
{
	for (; *value; value++) {
		if (*value == '\\' || *value == '"')
			fprintf(out, "\\%c", *value);
		else if (*value == '\n')
			fputs("\\n", out);
		else
			fputc(*value, out);
	}
}
