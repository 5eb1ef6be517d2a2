/* isocache-nbd: serve vdisks and snapshots of a store over NBD. The
 * command line, daemonizing, the pid file and captive mode (--run); the
 * serving itself is in server.c. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/daemon.h"
#include "common/log.h"
#include "common/sd.h"
#include "frontend/frontend.h"
#include "nbd/compat.h"
#include "nbd/server.h"
#include "nbd/tls.h"

static const char usage_text[] =
	"Usage: isocache-nbd [OPTIONS] [IMAGE...]\n"
	"\n"
	"Serve images of an isocache store over the NBD protocol, to qemu, libnbd\n"
	"(nbdinfo, nbdcopy, nbdsh), qemu-img/qemu-io and fio.\n"
	"\n"
	"Each IMAGE becomes one export of the same name: a vdisk NAME is served\n"
	"read-write (this server owns it while it runs), a snapshot NAME@SNAP\n"
	"read-only. With no IMAGE, every image of the store is exported and a\n"
	"vdisk is claimed when a client first selects it. A server with a single\n"
	"export also answers the empty (default) export name.\n"
	"\n"
	"Where to listen (default: TCP 127.0.0.1 port 10809):\n"
	"  -k, --socket=PATH      listen on the Unix socket PATH\n"
	"  -p, --port=PORT        listen on TCP port PORT (1-65535; 0 picks a free\n"
	"                         one); where it listens is logged\n"
	"  -b, --bind=ADDR        bind TCP to ADDR (default 127.0.0.1)\n"
	"  -s, --single           serve one client on stdin/stdout, then exit\n"
	"  -e, --shared=NUM       serve at most NUM clients at once (default 8;\n"
	"                         0: no limit); more wait until one leaves\n"
	"      --run=CMD          captive mode: serve on a private Unix socket in a\n"
	"                         directory of its own in $TMPDIR (else /tmp), run\n"
	"                         the shell command CMD with $uri (and $unixsocket)\n"
	"                         set, stop when it ends and exit with its status\n"
	"\n"
	"TLS (NBD_OPT_STARTTLS; see docs/NBD.md):\n"
	"      --tls=MODE         off, on (offered) or require (no export without\n"
	"                         it); default off, require when credentials given\n"
	"      --tls-certificates=DIR  x509: DIR/server-cert.pem, server-key.pem\n"
	"                         (and ca-cert.pem), as qemu's tls-creds-x509\n"
	"      --tls-verify-peer  x509: clients must show a certificate signed by\n"
	"                         DIR/ca-cert.pem (without it x509 does not\n"
	"                         authenticate clients)\n"
	"      --tls-psk=FILE     pre-shared keys, a psktool file (username:hexkey)\n"
	"      --insecure         allow plain NBD on a TCP address that is not\n"
	"                         loopback (refused by default)\n"
	"\n"
	"What to serve:\n"
	"      --store=DIR        the store (default $ISOCACHE_STORE, else\n"
	"                         /var/lib/isocache)\n"
	"  -x, --export-name=NAME name the export NAME (one IMAGE only)\n"
	"  -r, --read-only        export every image read-only (claims nothing)\n"
	"      --cache=MODE       writeback (default: layer files through the page\n"
	"                         cache) or none (O_DIRECT); qemu-nbd's directsync\n"
	"                         is none, its writethrough and unsafe writeback\n"
	"  -n, --nocache          --cache=none, as qemu-nbd\n"
	"      --discard=MODE     unmap (default) passes trims to the vdisk; ignore\n"
	"                         does not offer trim (qemu-nbd's values)\n"
	"  -D, --description=TEXT describe every export as TEXT\n"
	"  -f, --format=raw       accepted for qemu-nbd scripts; any other format is\n"
	"                         refused (import such files first)\n"
	"      --detect-zeroes=MODE, --aio=MODE  accepted for qemu-nbd scripts;\n"
	"                         they do not apply and say so\n"
	"      --release=POLICY   answer another process asking for a vdisk this\n"
	"                         server writes: when-unused (default: release\n"
	"                         only while no client is connected to it),\n"
	"                         when-idle (no client wrote for 5 s), always or\n"
	"                         never; a released vdisk is claimed again when\n"
	"                         a new client asks (see docs/OWNERSHIP.md)\n"
	"      --filter=SPEC      add filters to the I/O stack, top first, e.g.\n"
	"                         --filter stats --filter delay:read=200us, or a\n"
	"                         filter built out of tree, /path/to/f.so[:PARAMS];\n"
	"                         repeatable (see docs/NBD.md)\n"
	"      --no-cache         leave the shared cache filter out of the stack\n"
	"                         (by default frozen layers are read through\n"
	"                         isocached when it answers, directly when not)\n"
	"      --cache-socket=PATH  isocached's socket (default $ISOCACHE_SOCKET,\n"
	"                         else /run/isocache/cached.sock)\n"
	"\n"
	"Process:\n"
	"  -t, --persistent       keep serving after the last client leaves\n"
	"                         (default: exit then, like qemu-nbd)\n"
	"      --fork             go to the background once ready to serve\n"
	"      --pid-file=FILE    write the process id to FILE once ready\n"
	"      --metrics=ADDR     serve Prometheus metrics (per export: requests,\n"
	"                         bytes, latency histograms, handoffs, replies and\n"
	"                         the sends that carried them) over HTTP on\n"
	"                         ADDR, HOST:PORT (e.g. 127.0.0.1:9273) or\n"
	"                         unix:PATH (see docs/NBD.md)\n"
	"  -v, --verbose          log each connection (debug messages)\n"
	"  -h, --help             show this text\n"
	"\n"
	"SIGTERM or SIGINT stops accepting clients, answers the requests in\n"
	"flight (a client reading no replies is dropped after 10 s), flushes and\n"
	"exits 0.\n"
	"\n"
	"Examples:\n"
	"  isocache-nbd --store /srv/ic -t -k /run/isocache/nbd.sock vm1 base@gold\n"
	"  qemu-system-x86_64 -drive file=nbd+unix:///vm1?socket=/run/isocache/nbd.sock\n"
	"  isocache-nbd -r --run 'nbdinfo --map \"$uri\"' vm1@snap\n";

/* -e default: qemu-nbd's 1 would stall multi-conn clients (nbdcopy opens
 * 4 connections) and a persistent server shared by several VMs; 8 keeps
 * the worst case at 8 connections of IC_NBD_MAX_INFLIGHT each. */
#define MAIN_SHARED_DEFAULT 8

enum { OPT_FORK = 256, OPT_PID_FILE, OPT_FILTER, OPT_CACHE, OPT_STORE, OPT_RUN, OPT_RELEASE,
       OPT_NO_CACHE, OPT_CACHE_SOCKET, OPT_TLS, OPT_TLS_CERTS, OPT_TLS_PSK, OPT_INSECURE, OPT_TLS_VERIFY,
       OPT_DISCARD, OPT_DETECT_ZEROES, OPT_AIO, OPT_METRICS };

static const struct option long_opts[] = {
	{ "socket", required_argument, NULL, 'k' },
	{ "port", required_argument, NULL, 'p' },
	{ "bind", required_argument, NULL, 'b' },
	{ "single", no_argument, NULL, 's' },
	{ "shared", required_argument, NULL, 'e' },
	{ "export-name", required_argument, NULL, 'x' },
	{ "read-only", no_argument, NULL, 'r' },
	{ "persistent", no_argument, NULL, 't' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "fork", no_argument, NULL, OPT_FORK },
	{ "pid-file", required_argument, NULL, OPT_PID_FILE },
	{ "filter", required_argument, NULL, OPT_FILTER },
	{ "cache", required_argument, NULL, OPT_CACHE },
	{ "store", required_argument, NULL, OPT_STORE },
	{ "run", required_argument, NULL, OPT_RUN },
	{ "release", required_argument, NULL, OPT_RELEASE },
	{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
	{ "cache-socket", required_argument, NULL, OPT_CACHE_SOCKET },
	{ "tls", required_argument, NULL, OPT_TLS },
	{ "tls-certificates", required_argument, NULL, OPT_TLS_CERTS },
	{ "tls-psk", required_argument, NULL, OPT_TLS_PSK },
	{ "tls-verify-peer", no_argument, NULL, OPT_TLS_VERIFY },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "format", required_argument, NULL, 'f' },
	{ "nocache", no_argument, NULL, 'n' },
	{ "description", required_argument, NULL, 'D' },
	{ "discard", required_argument, NULL, OPT_DISCARD },
	{ "detect-zeroes", required_argument, NULL, OPT_DETECT_ZEROES },
	{ "aio", required_argument, NULL, OPT_AIO },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ NULL, 0, NULL, 0 },
};

struct main_opts {
	struct srv_config srv;
	char port[8];		/* -p, validated */
	const char *export_name;
	const char *pid_file;
	const char *store;
	const char *run;
	const char *filters[16];
	int nfilters;
	const char *cache_socket;
	const char *metrics; /* --metrics ADDR */
	const char *tls_mode; /* --tls, NULL when not given */
	const char *tls_certs, *tls_psk;
	const char *description; /* -D */
	bool readonly, single, daemon, direct, no_cache, tls, tls_verify, no_trim;
	enum ic_release_policy release;
};

/* A decimal number from 0 to max for option opt. */
static int
main_number(const char *opt, const char *arg, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(arg, &end, 10);
	if (!*arg || *end || *arg == '-' || errno || *out > max) {
		ic_log(IC_LOG_ERR, "%s takes a number from 0 to %lu, not '%s'", opt, max, arg);
		return -EINVAL;
	}
	return 0;
}

/* --tls: off, on or require; credentials alone mean require. */
static int
main_tls_mode(struct main_opts *o)
{
	bool creds = o->tls_certs || o->tls_psk;
	const char *mode = o->tls_mode ? o->tls_mode : creds ? "require" : "off";

	if (strcmp(mode, "off") && strcmp(mode, "on") && strcmp(mode, "require")) {
		ic_log(IC_LOG_ERR, "--tls takes off, on or require, not '%s'", mode);
		return -EINVAL;
	}
	o->tls = strcmp(mode, "off") != 0;
	o->srv.tls_required = strcmp(mode, "require") == 0;
	if (o->tls && !creds) {
		ic_log(IC_LOG_ERR, "--tls=%s needs --tls-certificates=DIR or --tls-psk=FILE", mode);
		return -EINVAL;
	}
	if (!o->tls && (creds || o->tls_verify)) {
		ic_log(IC_LOG_ERR, "--tls=off contradicts --tls-certificates/--tls-psk/"
		       "--tls-verify-peer");
		return -EINVAL;
	}
	if (o->tls && o->single) {
		ic_log(IC_LOG_ERR, "-s serves a pipe, which TLS does not protect: drop --tls");
		return -EINVAL;
	}
	return 0;
}

static int
main_parse(int argc, char **argv, struct main_opts *o)
{
	unsigned long n;
	int c;

	o->srv.bind = "127.0.0.1";
	o->srv.max_clients = MAIN_SHARED_DEFAULT;
	while ((c = getopt_long(argc, argv, "k:p:b:se:x:rtvhf:nD:", long_opts, NULL)) != -1) {
		bool yes;

		switch (c) {
		case 'f':
			if (compat_format(optarg))
				return -EINVAL;
			break;
		case 'n': o->direct = true; break;
		case 'D': o->description = optarg; break;
		case OPT_DISCARD:
			if (compat_discard(optarg, &yes))
				return -EINVAL;
			o->no_trim = !yes;
			break;
		case OPT_DETECT_ZEROES:
			if (compat_detect_zeroes(optarg))
				return -EINVAL;
			break;
		case OPT_AIO:
			if (compat_aio(optarg))
				return -EINVAL;
			break;
		case 'e':
			if (main_number("--shared", optarg, UINT_MAX, &n))
				return -EINVAL;
			o->srv.max_clients = (unsigned)n;
			break;
		case 'k': o->srv.socket_path = optarg; break;
		case 'p':
			if (main_number("--port", optarg, 65535, &n))
				return -EINVAL;
			snprintf(o->port, sizeof(o->port), "%lu", n);
			o->srv.port = o->port;
			break;
		case 'b': o->srv.bind = optarg; break;
		case 's': o->single = true; break;
		case 'x': o->export_name = optarg; break;
		case 'r': o->readonly = true; break;
		case 't': o->srv.persistent = true; break;
		case 'v': ic_log_level = IC_LOG_DEBUG; break;
		case 'h': fputs(usage_text, stdout); exit(0);
		case OPT_FORK: o->daemon = true; break;
		case OPT_PID_FILE: o->pid_file = optarg; break;
		case OPT_STORE: o->store = optarg; break;
		case OPT_RUN: o->run = optarg; break;
		case OPT_NO_CACHE: o->no_cache = true; break;
		case OPT_CACHE_SOCKET: o->cache_socket = optarg; break;
		case OPT_METRICS: o->metrics = optarg; break;
		case OPT_TLS: o->tls_mode = optarg; break;
		case OPT_TLS_CERTS: o->tls_certs = optarg; break;
		case OPT_TLS_PSK: o->tls_psk = optarg; break;
		case OPT_TLS_VERIFY: o->tls_verify = true; break;
		case OPT_INSECURE: o->srv.insecure = true; break;
		case OPT_RELEASE:
			if (ic_release_policy_parse(optarg, &o->release))
				return -EINVAL;
			break;
		case OPT_FILTER:
			if (o->nfilters == 16) {
				ic_log(IC_LOG_ERR, "at most 16 --filter options");
				return -EINVAL;
			}
			o->filters[o->nfilters++] = optarg;
			break;
		case OPT_CACHE:
			if (compat_cache(optarg, &o->direct))
				return -EINVAL;
			break;
		default:
			fputs("Try 'isocache-nbd --help'.\n", stderr);
			return -EINVAL;
		}
	}
	if ((o->single || o->run) && (o->srv.socket_path || o->srv.port)) {
		ic_log(IC_LOG_ERR, "-s and --run choose their own socket: drop -k/-p");
		return -EINVAL;
	}
	if (o->single && (o->run || o->daemon)) {
		ic_log(IC_LOG_ERR, "-s cannot be combined with --run or --fork");
		return -EINVAL;
	}
	if (!o->srv.socket_path && !o->srv.port)
		o->srv.port = "10809";
	if (main_tls_mode(o) < 0)
		return -EINVAL;
	o->srv.slots = IC_NBD_SLOTS;
	o->srv.max_inflight = IC_NBD_MAX_INFLIGHT;
	return 0;
}

/* Serving: publish the pid and, with --fork, release the waiting parent
 * (ic_daemon_fork) and log to syslog with no terminal attached. */
static void
main_ready(const struct main_opts *o, int ready_fd)
{
	int rc = o->pid_file ? ic_pidfile_write(o->pid_file) : 0;

	if (rc < 0)
		ic_log(IC_LOG_WARN, "cannot write pid file %s: %s", o->pid_file, strerror(-rc));
	if (ready_fd >= 0) {
		ic_daemon_report(ready_fd, 0);
		ic_daemon_detach(false);
		ic_log_to_syslog();
	}
}

/* Waits for the --run command and stops the server with its status. */
static void *
main_run_waiter(void *arg)
{
	pid_t pid = (pid_t)(intptr_t)arg;
	int status;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	srv_stop(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return NULL;
}

/* s percent-encoded into out (3 * strlen(s) + 1 bytes), all but RFC 3986's
 * unreserved characters and '/': a $TMPDIR may hold '#', '%', '&' or a
 * space, which would end or split the URI's query. */
static void
main_uri_encode(const char *s, char *out)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    strchr("-._~/", ch))
			*out++ = (char)ch;
		else
			out += sprintf(out, "%%%02X", ch);
	}
	*out = 0;
}

static int
main_spawn_run(const struct main_opts *o, const struct srv_exports *ex)
{
	char uri[PATH_MAX + 300], sock[3 * 108 + 1];
	const char *name = ex->count == 1 ? "" : ex->pub[0].name;
	pthread_t t;
	pid_t pid;

	main_uri_encode(o->srv.socket_path, sock);
	snprintf(uri, sizeof(uri), "nbd+unix:///%s?socket=%s", name, sock);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setenv("uri", uri, 1);
		setenv("unixsocket", o->srv.socket_path, 1);
		execl("/bin/sh", "sh", "-c", o->run, (char *)NULL);
		_exit(127);
	}
	if (pthread_create(&t, NULL, main_run_waiter, (void *)(intptr_t)pid))
		return -EAGAIN;
	pthread_detach(t);
	return 0;
}

/* What the command line changes in every export: -D, --discard=ignore,
 * and -e 1, where a client that opens several connections (multi-conn)
 * would wait forever for the second, so it is not offered (as qemu-nbd). */
static void
main_adjust_exports(const struct main_opts *o, struct srv_exports *ex)
{
	uint16_t drop = (o->srv.max_clients == 1 ? NBD_FLAG_CAN_MULTI_CONN : 0) |
			(o->no_trim ? NBD_FLAG_SEND_TRIM : 0);
	size_t i;

	for (i = 0; i < ex->count; i++) {
		ex->pub[i].tflags &= (uint16_t)~drop;
		if (o->description)
			ex->pub[i].description = o->description;
	}
}

/* The --filter SPECs, top first, as one spec: one stack for every export. */
static int
main_filters(const struct main_opts *o, char *spec, size_t cap)
{
	size_t len = 0;

	spec[0] = 0;
	for (int i = 0; i < o->nfilters; i++) {
		int n = snprintf(spec + len, cap - len, "%s%s", i ? "," : "", o->filters[i]);

		if (n < 0 || (size_t)n >= cap - len) {
			ic_log(IC_LOG_ERR, "--filter: specs too long");
			return -EINVAL;
		}
		len += (size_t)n;
	}
	return 0;
}

/* --run's private directory, made in $TMPDIR (else /tmp) with room in
 * dir for its socket's name: a Unix socket's path has at most 107 bytes. */
static int
main_run_dir(char *dir, size_t cap)
{
	const char *tmp = getenv("TMPDIR");
	int n;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	n = snprintf(dir, cap, "%s/isocache-nbd.XXXXXX", tmp);
	if (n < 0 || (size_t)n >= cap) {
		ic_log(IC_LOG_ERR, "--run: TMPDIR %s is too long for a socket's path", tmp);
		return -1;
	}
	if (!mkdtemp(dir)) {
		ic_log(IC_LOG_ERR, "--run: cannot make a private directory in %s: %m", tmp);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct main_opts o = { 0 };
	struct srv_exports ex = { 0 };
	struct ic_frontend fe = { 0 };
	char spec[4096];
	char rundir[sizeof(((struct sockaddr_un *)0)->sun_path) - sizeof("/nbd.sock")];
	char sock[sizeof(rundir) + sizeof("/nbd.sock")];
	int ready_fd = -1, rc;

	ic_log_set_program("isocache-nbd");
	if (main_parse(argc, argv, &o) < 0)
		return 2;
	if (o.run) {
		if (main_run_dir(rundir, sizeof(rundir)) < 0)
			return 1;
		snprintf(sock, sizeof(sock), "%s/nbd.sock", rundir);
		o.srv.socket_path = sock;
		o.srv.port = NULL;
		o.srv.persistent = true;
	}
	if (!o.single)
		srv_block_signals();
	if (o.daemon && (ready_fd = ic_daemon_fork()) < 0) {
		ic_log(IC_LOG_ERR, "--fork failed: %s", strerror(-ready_fd));
		if (o.run)
			rmdir(rundir);
		return 1;
	}
	rc = o.tls ? srv_tls_new(o.tls_certs, o.tls_psk, o.tls_verify, &o.srv.tls) : 0;
	if (rc == 0)
		rc = main_filters(&o, spec, sizeof(spec));
	if (rc == 0) {
		struct ic_frontend_config fc = {
			.store = ic_store_path(o.store),
			.filters = spec,
			.cache = !o.no_cache,
			.cache_socket = o.cache_socket,
			.policy = o.release,
			.what = "server",
		};

		rc = ic_frontend_open(&fc, &fe);
	}
	ex.store = fe.store;
	ex.stack = fe.stack;
	ex.open_flags = o.direct ? IC_OPEN_DIRECT : 0;
	if (rc == 0)
		rc = srv_exports_load(&ex, optind < argc ? argv + optind : NULL, argc - optind,
				      o.export_name, o.readonly);
	if (rc == 0)
		main_adjust_exports(&o, &ex);
	if (rc == 0)
		rc = srv_metrics_start(o.metrics, &ex);
	if (rc == 0 && !o.single)
		rc = srv_listen(&o.srv);
	if (rc == 0 && o.run)
		rc = main_spawn_run(&o, &ex);
	if (rc < 0) {
		srv_exports_close(&ex);
		ic_frontend_close(&fe);
		srv_tls_free(o.srv.tls);
		if (o.run) {
			unlink(sock);
			rmdir(rundir);
		}
		return 1;
	}
	main_ready(&o, ready_fd);
	ic_sd_notify("READY=1");
	rc = o.single ? srv_run_stdio(&o.srv, &ex) : srv_run(&o.srv, &ex);
	ic_sd_notify("STOPPING=1");
	ic_frontend_close(&fe); /* the exports are closed by now */
	srv_tls_free(o.srv.tls);
	ic_pidfile_remove(o.pid_file);
	if (o.run)
		rmdir(rundir);
	return rc;
}
