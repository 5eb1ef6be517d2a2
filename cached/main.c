/* isocached: options, the listening socket, daemonizing; then the loop. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cached/internal.h"
#include "cached/metrics.h"
#include "common/cleanup.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/sd.h"
#include "common/size.h"

#define MAIN_DEFAULT_SOCKET "/run/isocache/cached.sock"
#define MAIN_DEFAULT_MEMORY (512ull << 20)
#define MAIN_MAX_QUOTAS 64
#define MAIN_DEFAULT_L2_SIZE (1ull << 30)
#define MAIN_DEFAULT_TRACE_WINDOW 30
#define MAIN_DEFAULT_TRACE_LIMIT (2ull << 30)
#define MAIN_DEFAULT_READAHEAD (4ull << 20)
#define MAIN_MAX_READAHEAD (256ull << 20)
enum { MAIN_OPT_L2 = 256, MAIN_OPT_L2_SIZE, MAIN_OPT_UID_SESSIONS, MAIN_OPT_NO_SHARED,
       MAIN_OPT_NO_DEDUP, MAIN_OPT_METRICS, MAIN_OPT_NO_TRACE, MAIN_OPT_TRACE_DIR,
       MAIN_OPT_TRACE_WINDOW, MAIN_OPT_TRACE_LIMIT, MAIN_OPT_READAHEAD };

static const char main_usage[] =
	"Usage: isocached [OPTION]...\n"
	"\n"
	"The isocache cache daemon: one copy in memory of every frozen layer block\n"
	"that isocache processes on this host read, filled from the layer files by\n"
	"the daemon itself (one backing read however many clients miss a block).\n"
	"Clients register a layer by passing an open read-only fd of its file; the\n"
	"daemon caches only files that are mode 0444 and carry the\n"
	"user.isocache.layer xattr saying frozen. See docs/CACHED.md.\n"
	"\n"
	"Options:\n"
	"  -s, --socket PATH      listen on PATH (default: $ISOCACHE_SOCKET, else\n"
	"                         " MAIN_DEFAULT_SOCKET "); its directory is created\n"
	"  -m, --memory SIZE      cache capacity, a hard bound on cached data\n"
	"                         (default 512M; suffixes K, M, G, T)\n"
	"  -q, --quota UID=SIZE   cap the cache memory filled on behalf of UID (a\n"
	"                         number or a user name); repeat for several uids.\n"
	"                         A uid at its quota recycles its own blocks; a\n"
	"                         quota under 4K means its sessions cause no fills.\n"
	"                         The quota holds in each tier: RAM, and L2\n"
	"      --sessions-per-uid N\n"
	"                         sessions one uid other than root may hold at\n"
	"                         once (default 256; 4096 in all)\n"
	"      --l2 PATH          keep a second tier in the local file PATH\n"
	"                         (created; checksummed, its index kept across\n"
	"                         restarts); off by default\n"
	"      --l2-size SIZE     the L2 file's capacity (default 1G, at least 16M)\n"
	"      --readahead SIZE   how far ahead of its readers a layer read in\n"
	"                         sequence is read (default 4M, at most 256M;\n"
	"                         0 turns readahead off)\n"
	"      --no-shared        do not share layer arenas with clients: every hit\n"
	"                         is a request on the socket (default: clients that\n"
	"                         registered a layer map its cached blocks read-only\n"
	"                         and copy hits without a syscall)\n"
	"      --no-dedup         hold every layer's blocks apart (default: a block\n"
	"                         equal to one cached for a layer of the same owner,\n"
	"                         group and filesystem is held once)\n"
	"      --no-trace         neither record boot traces nor replay them\n"
	"                         (default: the blocks readers ask for in the\n"
	"                         first seconds of a layer's first reads are\n"
	"                         recorded, and prefetched in that order at its\n"
	"                         next cold start)\n"
	"      --trace-dir DIR    where traces are kept (default: $ISOCACHE_TRACE_DIR,\n"
	"                         else " IC_CACHED_TRACE_DEFAULT_DIR "; created 0700)\n"
	"      --trace-window SEC how long a recording lasts from a layer's first\n"
	"                         read (default 30, 1..3600)\n"
	"      --trace-limit SIZE the most data a trace covers (default 2G); a\n"
	"                         trace file is at most 1 MiB in any case\n"
	"  -f, --foreground       do not daemonize; log to stderr. Without it the\n"
	"                         command returns once the daemon accepts (exit 0)\n"
	"                         or has failed (exit 1, the reason on stderr)\n"
	"  -p, --pid-file FILE    write the pid to FILE once the socket accepts\n"
	"      --metrics ADDR     serve Prometheus metrics (the daemon's totals) over\n"
	"                         HTTP on ADDR: HOST:PORT (e.g. 127.0.0.1:9273) or\n"
	"                         unix:PATH; anyone who can connect reads them\n"
	"  -l, --log-level LEVEL  error, warn, info (default) or debug\n"
	"  -h, --help             show this help and exit\n"
	"\n"
	"A socket a live isocached serves is never taken over: the start fails.\n"
	"\n"
	"Signals: SIGTERM or SIGINT finish in-flight requests, then exit 0.\n"
	"Exit status: 0 after a clean shutdown, 1 on a start-up error, 2 on bad usage.\n"
	"\n"
	"Example:\n"
	"  isocached --memory 4G --quota 1000=1G --pid-file /run/isocache/cached.pid\n"
	"  isocached --memory 4G --l2 /var/cache/isocache/l2 --l2-size 64G\n";

struct main_quota {
	uid_t uid;
	uint64_t bytes;
};

struct main_opts {
	const char *socket;
	const char *pid_file;
	const char *l2;
	const char *metrics; /* --metrics ADDR */
	uint64_t memory;
	uint64_t l2_size;
	unsigned long uid_sessions;
	bool foreground;
	bool no_shared;
	bool no_dedup;
	bool no_trace;
	const char *trace_dir;
	unsigned long trace_window; /* seconds */
	uint64_t trace_limit;	    /* bytes */
	uint64_t readahead;	    /* bytes */
	struct main_quota quotas[MAIN_MAX_QUOTAS];
	unsigned nquotas;
};

static int
main_bad_usage(const char *what, const char *arg)
{
	fprintf(stderr, "isocached: %s: '%s'\nTry 'isocached --help'.\n", what, arg);
	return -EINVAL;
}

static int
main_parse_quota(struct main_opts *o, const char *arg)
{
	IC_AUTOFREE char *copy = strdup(arg);
	char *eq = copy ? strchr(copy, '=') : NULL, *end;
	struct main_quota *q = &o->quotas[o->nquotas];
	struct passwd *pw;
	unsigned long uid;

	if (!eq || o->nquotas == MAIN_MAX_QUOTAS)
		return main_bad_usage("--quota wants UID=SIZE", arg);
	*eq = '\0';
	errno = 0;
	uid = strtoul(copy, &end, 10);
	if (*copy && !*end && !errno && uid < (uid_t)-1) {
		q->uid = (uid_t)uid;
	} else if ((pw = getpwnam(copy))) {
		q->uid = pw->pw_uid;
	} else {
		return main_bad_usage("--quota: no such user", copy);
	}
	if (ic_size_parse(eq + 1, &q->bytes) < 0)
		return main_bad_usage("--quota: not a size", eq + 1);
	o->nquotas++;
	return 0;
}

/* A decimal number from lo to hi, all of arg, into *out. */
static bool
main_number(const char *arg, unsigned long lo, unsigned long hi, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(arg, &end, 10);
	return *arg && !*end && !errno && *out >= lo && *out <= hi;
}

static int
main_parse(int argc, char **argv, struct main_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "memory", required_argument, NULL, 'm' },
		{ "quota", required_argument, NULL, 'q' },
		{ "l2", required_argument, NULL, MAIN_OPT_L2 },
		{ "l2-size", required_argument, NULL, MAIN_OPT_L2_SIZE },
		{ "sessions-per-uid", required_argument, NULL, MAIN_OPT_UID_SESSIONS },
		{ "no-shared", no_argument, NULL, MAIN_OPT_NO_SHARED },
		{ "no-dedup", no_argument, NULL, MAIN_OPT_NO_DEDUP },
		{ "metrics", required_argument, NULL, MAIN_OPT_METRICS },
		{ "no-trace", no_argument, NULL, MAIN_OPT_NO_TRACE },
		{ "trace-dir", required_argument, NULL, MAIN_OPT_TRACE_DIR },
		{ "trace-window", required_argument, NULL, MAIN_OPT_TRACE_WINDOW },
		{ "trace-limit", required_argument, NULL, MAIN_OPT_TRACE_LIMIT },
		{ "readahead", required_argument, NULL, MAIN_OPT_READAHEAD },
		{ "foreground", no_argument, NULL, 'f' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	int c;

	o->socket = getenv("ISOCACHE_SOCKET");
	if (!o->socket || !*o->socket)
		o->socket = MAIN_DEFAULT_SOCKET;
	o->memory = MAIN_DEFAULT_MEMORY;
	o->l2_size = MAIN_DEFAULT_L2_SIZE;
	o->uid_sessions = CACHED_UID_SESSIONS;
	o->trace_window = MAIN_DEFAULT_TRACE_WINDOW;
	o->trace_limit = MAIN_DEFAULT_TRACE_LIMIT;
	o->readahead = MAIN_DEFAULT_READAHEAD;
	while ((c = getopt_long(argc, argv, "s:m:q:fp:l:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->socket = optarg;
			break;
		case 'm':
			if (ic_size_parse(optarg, &o->memory) < 0)
				return main_bad_usage("--memory: not a size", optarg);
			break;
		case 'q':
			if (main_parse_quota(o, optarg) < 0)
				return -EINVAL;
			break;
		case MAIN_OPT_METRICS:
			o->metrics = optarg;
			break;
		case MAIN_OPT_L2:
			o->l2 = optarg;
			break;
		case MAIN_OPT_L2_SIZE:
			if (ic_size_parse(optarg, &o->l2_size) < 0)
				return main_bad_usage("--l2-size: not a size", optarg);
			break;
		case MAIN_OPT_UID_SESSIONS:
			if (!main_number(optarg, 1, CACHED_MAX_SESSIONS, &o->uid_sessions))
				return main_bad_usage("--sessions-per-uid: not a number from 1 to 4096",
						      optarg);
			break;
		case MAIN_OPT_NO_SHARED:
			o->no_shared = true;
			break;
		case MAIN_OPT_NO_DEDUP:
			o->no_dedup = true;
			break;
		case MAIN_OPT_NO_TRACE:
			o->no_trace = true;
			break;
		case MAIN_OPT_TRACE_DIR:
			o->trace_dir = optarg;
			break;
		case MAIN_OPT_TRACE_WINDOW:
			if (!main_number(optarg, 1, 3600, &o->trace_window))
				return main_bad_usage("--trace-window: not a number of seconds from 1 "
						      "to 3600", optarg);
			break;
		case MAIN_OPT_TRACE_LIMIT:
			if (ic_size_parse(optarg, &o->trace_limit) < 0 ||
			    o->trace_limit < IC_CACHED_BLOCK)
				return main_bad_usage("--trace-limit: not a size of 4K or more", optarg);
			break;
		case MAIN_OPT_READAHEAD:
			if (ic_size_parse(optarg, &o->readahead) < 0 ||
			    o->readahead > MAIN_MAX_READAHEAD)
				return main_bad_usage("--readahead: not a size from 0 to 256M", optarg);
			break;
		case 'f':
			o->foreground = true;
			break;
		case 'p':
			o->pid_file = optarg;
			break;
		case 'l':
			for (c = 0; c < 4 && strcasecmp(optarg, levels[c]); c++)
				;
			if (c == 4)
				return main_bad_usage("--log-level: not error, warn, info or debug", optarg);
			ic_log_level = (enum ic_log_level)c;
			break;
		case 'h':
			fputs(main_usage, stdout);
			exit(0);
		default:
			fputs("Try 'isocached --help'.\n", stderr);
			return -EINVAL;
		}
	}
	if (optind < argc)
		return main_bad_usage("unexpected argument", argv[optind]);
	return 0;
}

/* mkdir -p of path's directory. */
static int
main_mkdirs(const char *path)
{
	IC_AUTOFREE char *dir = strdup(path);
	char *p;

	if (!dir)
		return -ENOMEM;
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(dir, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

/* Whether the daemon listening behind a connected probe still lives. A
 * killed daemon's socket keeps accepting connections for a moment after
 * its process is gone, while the kernel tears down its io_uring (a pending
 * accept holds the file), so a connection alone proves nothing. */
static bool
main_listener_alive(int probe, pid_t *pid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	*pid = 0;
	if (getsockopt(probe, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid <= 0)
		return true;
	*pid = cred.pid;
	return kill(cred.pid, 0) == 0 || errno != ESRCH;
}

/* A listening SOCK_SEQPACKET socket on path. A socket file nobody answers
 * on, or only a dead daemon does, is replaced; a live one is an error. */
static int
main_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	IC_AUTOCLOSE int fd = -1;
	IC_AUTOCLOSE int probe = -1;
	pid_t pid;
	int rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		ic_log(IC_LOG_ERR, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	rc = main_mkdirs(path);
	if (rc < 0) {
		ic_log(IC_LOG_ERR, "cannot create the directory of %s: %s", path, strerror(-rc));
		return rc;
	}
	probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    main_listener_alive(probe, &pid)) {
		ic_log(IC_LOG_ERR, "%s: another isocached is running (pid %d); not starting",
		       path, (int)pid);
		return -EADDRINUSE;
	}
	unlink(path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(path, 0666) < 0 || listen(fd, SOMAXCONN) < 0) {
		rc = -errno;
		ic_log(IC_LOG_ERR, "%s: %s", path, strerror(errno));
		return rc;
	}
	return ic_steal_fd(&fd);
}

/* The traces' directory, made 0700 when missing (its parents 0755); a
 * directory we cannot make or use turns tracing off, with a warning. */
static void
main_traces(struct cached_traces *tr, const struct main_opts *o)
{
	static char abs[PATH_MAX];
	const char *dir = ic_cached_trace_dir(o->trace_dir);
	int rc;

	tr->off = o->no_trace;
	tr->dir = dir;
	tr->window_ns = (uint64_t)o->trace_window * 1000000000ull;
	tr->limit = o->trace_limit >> IC_CACHED_BLOCK_SHIFT;
	if (tr->off)
		return;
	rc = main_mkdirs(dir);
	if (rc == 0 && mkdir(dir, 0700) < 0 && errno != EEXIST)
		rc = -errno;
	/* Absolute: the daemon leaves its working directory for /. */
	if (rc == 0 && !realpath(dir, abs))
		rc = -errno;
	if (rc == 0 && access(abs, W_OK | X_OK) < 0)
		rc = -errno;
	if (rc == 0)
		tr->dir = abs;
	if (rc < 0) {
		ic_log(IC_LOG_WARN, "trace directory %s: %s; boot traces are off", tr->dir,
		       strerror(-rc));
		tr->off = true;
	}
}

/* Tell the waiting parent (ic_daemon_fork) how the start went: 0 once
 * the socket accepts, else 1. Once ready, let go of the terminal. */
static void
main_ready(int report, int status)
{
	if (report < 0)
		return;
	if (status == 0) {
		ic_log_to_syslog();
		ic_daemon_detach(true);
		if (chdir("/") < 0)
			ic_log(IC_LOG_WARN, "chdir /: %s", strerror(errno));
	}
	ic_daemon_report(report, status);
}

static int
main_write_pid(const char *path)
{
	int rc = ic_pidfile_write(path);

	if (rc < 0)
		ic_log(IC_LOG_ERR, "pid file %s: %s", path, strerror(-rc));
	return rc;
}

int
main(int argc, char **argv)
{
	static struct cached_daemon d;
	struct ic_metrics *metrics = NULL;
	struct main_opts o = { 0 };
	struct rlimit rl;
	bool activated;
	int fd, rc, report = -1;

	ic_log_set_program("isocached");
	if (main_parse(argc, argv, &o) < 0)
		return 2;
	/* Each layer holds three fds (its file, its arena and the arena's
	 * read-only reopen) for as long as it is cached. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	rc = cached_store_init(&d.store, o.memory);
	if (rc == -ERANGE) {
		char got[32], lo[32], hi[32];

		ic_log(IC_LOG_ERR, "--memory %s: out of range: at least %s and below %s",
		       ic_size_format(o.memory, got, sizeof(got)),
		       ic_size_format((uint64_t)CACHED_FILL_MAX << IC_CACHED_BLOCK_SHIFT, lo, sizeof(lo)),
		       ic_size_format(((uint64_t)UINT32_MAX / 2 + 1) << IC_CACHED_BLOCK_SHIFT, hi,
				      sizeof(hi)));
		return 1;
	}
	if (rc < 0) {
		ic_log(IC_LOG_ERR, "--memory %llu: %s", (unsigned long long)o.memory, strerror(-rc));
		return 1;
	}
	if (!o.no_dedup && (rc = cached_store_dedup(&d.store)) < 0) {
		ic_log(IC_LOG_ERR, "dedup: %s (--no-dedup starts without it)", strerror(-rc));
		return 1;
	}
	d.store.readahead = (uint32_t)(o.readahead >> IC_CACHED_BLOCK_SHIFT);
	d.uid_sessions = (unsigned)o.uid_sessions;
	d.no_shared = o.no_shared;
	main_traces(&d.traces, &o);
	for (unsigned i = 0; i < o.nquotas; i++)
		cached_store_set_quota(&d.store, o.quotas[i].uid, o.quotas[i].bytes);
	if (o.l2) {
		rc = cached_l2_open(&d.l2, o.l2, o.l2_size);
		if (rc < 0) {
			ic_log(IC_LOG_ERR, "--l2 %s (%llu bytes): %s", o.l2,
			       (unsigned long long)o.l2_size, strerror(-rc));
			return 1;
		}
		cached_store_attach_l2(&d.store, &d.l2);
		ic_log(IC_LOG_INFO, "L2 %s: %u of %u slots warm", o.l2, d.l2.used, d.l2.nslots);
	}
	/* Go to the background before listening, so that the process that
	 * calls listen() is the one that serves: SO_PEERCRED of the socket then
	 * names a live daemon, which is how the next isocached on the same path
	 * (and every client) tells it is running. */
	if (!o.foreground && (report = ic_daemon_fork()) < 0) {
		ic_log(IC_LOG_ERR, "cannot go to the background: %s", strerror(-report));
		return 1;
	}
	/* Take systemd's socket (isocached.socket) when it passed one, else
	 * listen; and make the ring (SINGLE_ISSUER binds it to its task): both
	 * in the process that serves. */
	fd = ic_sd_listener(SOCK_SEQPACKET);
	activated = fd >= 0;
	if (fd == -ENOENT)
		fd = main_listen(o.socket);
	if (fd < 0 || cached_daemon_init(&d, fd) < 0 ||
	    cached_metrics_start(o.metrics, fd, &metrics) < 0 || (o.pid_file && main_write_pid(o.pid_file) < 0)) {
		main_ready(report, 1);
		return 1;
	}
	main_ready(report, 0);
	ic_log(IC_LOG_INFO, "listening on %s, %llu MiB", o.socket,
	       (unsigned long long)(o.memory >> 20));
	ic_sd_notify("READY=1");
	rc = cached_daemon_run(&d);
	ic_sd_notify("STOPPING=1");
	cached_trace_fini(&d);
	ic_metrics_stop(metrics);
	cached_daemon_fini(&d);
	if (d.store.l2)
		cached_l2_close(d.store.l2);
	cached_store_fini(&d.store);
	close(fd);
	if (!activated) /* systemd's socket outlives us, to start us again */
		unlink(o.socket);
	ic_pidfile_remove(o.pid_file);
	ic_log(IC_LOG_INFO, "stopped");
	return rc < 0 ? 1 : 0;
}
