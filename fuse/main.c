/* isocache-fuse: mount a store so that every vdisk and snapshot is a
 * file. The command line, the checks made before mounting, daemonizing,
 * signals and the orderly end; the file system itself is in fs.c and
 * files.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/sd.h"
#include "frontend/frontend.h"
#include "fuse/internal.h"

static const char usage_text[] =
	"Usage: isocache-fuse [OPTIONS] MOUNTPOINT\n"
	"\n"
	"Mount the images of an isocache store as files: MOUNTPOINT/NAME for each\n"
	"vdisk (read-write) and MOUNTPOINT/NAME@SNAP for each snapshot (read-only),\n"
	"with the store's modes (0600 and 0400; 0640 and 0440 in a store shared\n"
	"with a group). A file's size is the image's virtual size, its\n"
	"blocks what the image's chain holds, its mtime that of the last write.\n"
	"Snapshots and clones made with isocache-admin appear without a remount.\n"
	"Use the files with losetup, mkfs, qemu -drive file=..., cp --sparse, fio.\n"
	"\n"
	"Opening a vdisk file for writing makes this process its owner until the\n"
	"last writable descriptor is closed; the open fails with EBUSY while\n"
	"another process (isocache-nbd, another mount) owns the vdisk. Read-only\n"
	"opens never need ownership and show the vdisk as last flushed by its\n"
	"owner. fsync/fdatasync flush; fallocate PUNCH_HOLE trims and ZERO_RANGE\n"
	"writes zeroes; SEEK_DATA/SEEK_HOLE follow the allocation; the size is\n"
	"fixed (truncate fails with EPERM: use isocache-admin resize).\n"
	"\n"
	"Options:\n"
	"      --store=DIR      the store (default $ISOCACHE_STORE, else\n"
	"                       /var/lib/isocache)\n"
	"      --filter=SPEC    add filters to the I/O stack, top first, e.g.\n"
	"                       --filter stats --filter delay:read=200us, or a\n"
	"                       filter built out of tree, /path/to/f.so[:PARAMS];\n"
	"                       repeatable\n"
	"      --no-cache       leave the shared cache filter out of the stack (by\n"
	"                       default frozen layers are read through isocached\n"
	"                       when it answers, directly when not)\n"
	"      --cache-socket=PATH  isocached's socket (default $ISOCACHE_SOCKET,\n"
	"                       else /run/isocache/cached.sock)\n"
	"      --cache=MODE     writeback (default: layer files through the host's\n"
	"                       page cache) or none (layer files opened O_DIRECT)\n"
	"  -r, --read-only      never open a vdisk for writing (EROFS)\n"
	"      --release=POLICY answer another process asking for a vdisk this\n"
	"                       mount writes: when-unused (default: keep it while\n"
	"                       a file handle is open for writing), when-idle\n"
	"                       (nothing wrote for 5 s), always or never; a\n"
	"                       released file answers EROFS until its writers\n"
	"                       close (see docs/OWNERSHIP.md)\n"
	"  -o OPT[,OPT...]      mount options: direct_io (bypass the kernel's page\n"
	"                       cache for the mounted files, so each read and write\n"
	"                       reaches isocache), and libfuse's own such as\n"
	"                       allow_other (which implies default_permissions:\n"
	"                       the kernel checks file modes for other users)\n"
	"  -f, --foreground     stay in the foreground, logging to stderr (default:\n"
	"                       go to the background once mounted, log to syslog)\n"
	"      --log=FILE       in the background, append messages to FILE instead\n"
	"                       of syslog (without either, e.g. in a container with\n"
	"                       no /dev/log, the mount says so and they are lost)\n"
	"      --pid-file=FILE  write the process id to FILE once mounted\n"
	"      --metrics=ADDR   serve Prometheus metrics (per image: requests,\n"
	"                       bytes, latency histograms, ownership) over HTTP\n"
	"                       on ADDR, HOST:PORT (e.g. 127.0.0.1:9273) or\n"
	"                       unix:PATH (see docs/FUSE.md)\n"
	"      --threads=N      serve at most N requests at once (default 16)\n"
	"  -d, --debug          foreground, and log every FUSE request\n"
	"  -v, --verbose        log debug messages\n"
	"  -h, --help           show this text\n"
	"\n"
	"MOUNTPOINT must be an empty directory. SIGTERM, SIGINT or\n"
	"'fusermount3 -u MOUNTPOINT' unmount after flushing every vdisk; the\n"
	"reason is logged. The exit status is 0 after a clean unmount, 1 when\n"
	"mounting or a final flush failed, 2 for a bad command line.\n"
	"\n"
	"Examples:\n"
	"  isocache-fuse --store /srv/ic --pid-file /run/ic-fuse.pid /mnt/ic\n"
	"  losetup -f --show /mnt/ic/vm1 && mkfs.ext4 /dev/loopN\n"
	"  cp --sparse=always /mnt/ic/base@gold /backup/gold.raw\n"
	"  fusermount3 -u /mnt/ic\n"
	"\n"
	"See docs/FUSE.md.\n";

enum { OPT_STORE = 256, OPT_FILTER, OPT_CACHE, OPT_PID_FILE, OPT_THREADS, OPT_RELEASE,
       OPT_NO_CACHE, OPT_CACHE_SOCKET, OPT_LOG, OPT_METRICS };

static const struct option main_long_opts[] = {
	{ "store", required_argument, NULL, OPT_STORE },
	{ "filter", required_argument, NULL, OPT_FILTER },
	{ "cache", required_argument, NULL, OPT_CACHE },
	{ "pid-file", required_argument, NULL, OPT_PID_FILE },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "read-only", no_argument, NULL, 'r' },
	{ "foreground", no_argument, NULL, 'f' },
	{ "debug", no_argument, NULL, 'd' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "release", required_argument, NULL, OPT_RELEASE },
	{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
	{ "cache-socket", required_argument, NULL, OPT_CACHE_SOCKET },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ NULL, 0, NULL, 0 },
};

struct main_opts {
	const char *store;
	const char *pid_file;
	const char *log_file;   /* --log: where the background logs, not syslog */
	char *filters;          /* the --filter specs joined by ',' */
	const char *cache_socket;
	const char *metrics;    /* --metrics ADDR */
	char mountpoint[PATH_MAX];
	struct fuse_args fuse;  /* argv for libfuse: -o options and -d */
	unsigned threads;
	bool foreground, debug, direct, direct_io, readonly, no_cache;
	bool permissions;	/* default_permissions is on the libfuse argv */
	enum ic_release_policy release;
};

static int
main_add_filter(struct main_opts *o, const char *spec)
{
	size_t old = o->filters ? strlen(o->filters) : 0;
	char *grown = realloc(o->filters, old + strlen(spec) + 2);

	if (!grown)
		return -ENOMEM;
	if (old)
		grown[old++] = ',';
	strcpy(grown + old, spec);
	o->filters = grown;
	return 0;
}

static int
main_add_fuse_opt(struct main_opts *o, const char *opt)
{
	return fuse_opt_add_arg(&o->fuse, "-o") || fuse_opt_add_arg(&o->fuse, opt) ? -ENOMEM : 0;
}

/* -o: direct_io is ours; every other option goes to libfuse. allow_other
 * brings default_permissions with it: without it the kernel checks no
 * file mode, and any user could write the vdisks of the mount's owner. */
static int
main_add_mount_opts(struct main_opts *o, const char *list)
{
	IC_AUTOFREE char *copy = strdup(list);
	char *save = NULL;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (char *opt = strtok_r(copy, ",", &save); opt && rc == 0;
	     opt = strtok_r(NULL, ",", &save)) {
		if (strcmp(opt, "direct_io") == 0) {
			o->direct_io = true;
			continue;
		}
		if (strcmp(opt, "default_permissions") == 0) {
			if (o->permissions)
				continue;
			o->permissions = true;
		}
		rc = main_add_fuse_opt(o, opt);
		if (rc == 0 && strcmp(opt, "allow_other") == 0 && !o->permissions) {
			o->permissions = true;
			rc = main_add_fuse_opt(o, "default_permissions");
		}
	}
	return rc;
}

static int
main_parse(int argc, char **argv, struct main_opts *o)
{
	char *end;
	int c, rc = 0;

	o->threads = 16;
	if (fuse_opt_add_arg(&o->fuse, argv[0]))
		return -ENOMEM;
	while (rc == 0 && (c = getopt_long(argc, argv, "rfo:dvh", main_long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_STORE: o->store = optarg; break;
		case OPT_PID_FILE: o->pid_file = optarg; break;
		case OPT_LOG: o->log_file = optarg; break;
		case OPT_FILTER: rc = main_add_filter(o, optarg); break;
		case OPT_NO_CACHE: o->no_cache = true; break;
		case OPT_CACHE_SOCKET: o->cache_socket = optarg; break;
		case OPT_METRICS: o->metrics = optarg; break;
		case 'o': rc = main_add_mount_opts(o, optarg); break;
		case 'r': o->readonly = true; break;
		case 'f': o->foreground = true; break;
		case 'v': ic_log_level = IC_LOG_DEBUG; break;
		case 'h': fputs(usage_text, stdout); exit(0);
		case 'd':
			o->debug = o->foreground = true;
			ic_log_level = IC_LOG_DEBUG;
			rc = fuse_opt_add_arg(&o->fuse, "-d") ? -ENOMEM : 0;
			break;
		case OPT_CACHE:
			if (strcmp(optarg, "none") && strcmp(optarg, "writeback")) {
				ic_log(IC_LOG_ERR, "--cache takes none or writeback, not '%s'", optarg);
				return -EINVAL;
			}
			o->direct = strcmp(optarg, "none") == 0;
			break;
		case OPT_RELEASE:
			if (ic_release_policy_parse(optarg, &o->release))
				return -EINVAL;
			break;
		case OPT_THREADS:
			o->threads = (unsigned)strtoul(optarg, &end, 10);
			if (*end || o->threads < 1 || o->threads > 1024) {
				ic_log(IC_LOG_ERR, "--threads takes 1 to 1024, not '%s'", optarg);
				return -EINVAL;
			}
			break;
		default:
			fputs("Try 'isocache-fuse --help'.\n", stderr);
			return -EINVAL;
		}
	}
	if (rc < 0)
		return rc;
	if (optind != argc - 1) {
		ic_log(IC_LOG_ERR, "give exactly one MOUNTPOINT (try 'isocache-fuse --help')");
		return -EINVAL;
	}
	if (!realpath(argv[optind], o->mountpoint)) {
		ic_log(IC_LOG_ERR, "mountpoint %s: %m", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* FUSE (unlike mount(8)) mounts over a non-empty directory and hides what
 * is there; a mistyped path would then look like data loss. Refuse. */
static int
main_check_mountpoint(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		ic_log(IC_LOG_ERR, "mountpoint %s: %m", path);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			ic_log(IC_LOG_ERR, "mountpoint %s is not empty (it holds %s); refusing to "
			       "hide its contents", path, de->d_name);
			rc = -ENOTEMPTY;
			break;
		}
	}
	closedir(d);
	return rc;
}

/* Mounted: publish the pid, release the waiting parent, and from now on
 * log to syslog (or --log FILE) with no terminal attached. */
static void
main_mounted(const struct main_opts *o, int notify_fd)
{
	int rc;

	if (o->pid_file && (rc = ic_pidfile_write(o->pid_file)) < 0)
		ic_log(IC_LOG_WARN, "pid file %s: %s", o->pid_file, strerror(-rc));
	ic_log(IC_LOG_INFO, "mounted %s on %s", o->store, o->mountpoint);
	ic_sd_notify("READY=1");
	if (notify_fd < 0)
		return;
	/* Said while stderr still reaches whoever started us. */
	if (o->log_file && (rc = ic_log_to_file(o->log_file)) < 0)
		ic_log(IC_LOG_WARN, "--log %s: %s; messages from the background are lost",
		       o->log_file, strerror(-rc));
	else if (!o->log_file && ic_log_to_syslog() < 0)
		ic_log(IC_LOG_WARN, "no syslog listens on /dev/log: messages from the background "
				    "are lost (give --log FILE, or -f)");
	ic_daemon_report(notify_fd, 0);
	ic_daemon_detach(true);
	if (chdir("/") < 0)
		ic_log(IC_LOG_WARN, "chdir /: %m");
}

/* SIGTERM, SIGINT, SIGHUP: leave the loop; main then unmounts and flushes. */
static struct fuse_session *main_session;
static volatile sig_atomic_t main_signal;

static void
main_on_signal(int sig)
{
	main_signal = sig;
	if (main_session)
		fuse_session_exit(main_session);
}

static void
main_signals(void)
{
	struct sigaction sa = { .sa_handler = main_on_signal };
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };

	/* No SA_RESTART: the waiting main thread must wake up. */
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Serve until unmounted or signalled; returns the loop's result. */
static int
main_serve(struct main_opts *o, struct fs_config *cfg, int notify_fd)
{
	struct fuse_loop_config *loop;
	struct fuse_session *se;
	int rc;

	se = fuse_session_new(&o->fuse, &fs_ops, sizeof(fs_ops), cfg);
	if (!se) {
		ic_log(IC_LOG_ERR, "cannot start a FUSE session (bad -o option?)");
		return -EINVAL;
	}
	main_session = se;
	main_signals();
	if (fuse_session_mount(se, o->mountpoint) != 0) {
		ic_log(IC_LOG_ERR, "cannot mount on %s (is /dev/fuse usable?)", o->mountpoint);
		fuse_session_destroy(se);
		return -EIO;
	}
	cfg->files.se = se;
	main_mounted(o, notify_fd);
	loop = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(loop, o->threads);
	fuse_loop_cfg_set_idle_threads(loop, o->threads / 2 + 1);
	rc = fuse_session_loop_mt(se, loop);
	fuse_loop_cfg_destroy(loop);
	if (main_signal)
		ic_log(IC_LOG_INFO, "%s: unmounting on %s", o->mountpoint, strsignal(main_signal));
	else if (rc == 0)
		ic_log(IC_LOG_INFO, "%s: unmounted (fusermount3 -u or umount)", o->mountpoint);
	else
		ic_log(IC_LOG_ERR, "%s: FUSE session failed: %s; unmounting", o->mountpoint,
		       strerror(rc < 0 ? -rc : rc));
	cfg->files.se = NULL;
	fuse_session_unmount(se);
	main_session = NULL;
	fuse_session_destroy(se);
	return rc;
}

int
main(int argc, char **argv)
{
	struct main_opts o = { 0 };
	struct fs_config cfg = { 0 };
	struct ic_frontend fe = { 0 };
	char store_dir[PATH_MAX];
	int notify_fd = -1, rc, failed;

	ic_log_set_program("isocache-fuse");
	rc = main_parse(argc, argv, &o);
	if (rc == 0)
		rc = main_check_mountpoint(o.mountpoint);
	if (rc < 0) {
		fuse_opt_free_args(&o.fuse);
		free(o.filters);
		return 2;
	}
	/* The daemon leaves its working directory: hold the store by its full path. */
	if (!realpath(ic_store_path(o.store), store_dir)) {
		ic_log(IC_LOG_ERR, "store %s: %m (make one with 'isocache-admin --store DIR init')",
		       ic_store_path(o.store));
		rc = -ENOENT;
		goto out;
	}
	o.store = store_dir;
	cfg.direct_io = o.direct_io;
	/* The store is opened after fork: an LMDB environment must not cross one. */
	if (!o.foreground && (notify_fd = rc = ic_daemon_fork()) < 0) {
		ic_log(IC_LOG_ERR, "cannot go to the background: %s", strerror(-rc));
		goto out;
	}
	{
		struct ic_frontend_config fc = {
			.store = o.store,
			.filters = o.filters,
			.cache = !o.no_cache,
			.cache_socket = o.cache_socket,
			.policy = o.release,
			.what = "mount",
		};

		rc = ic_frontend_open(&fc, &fe);
	}
	if (rc == 0)
		rc = files_init(&cfg.files, fe.store, fe.stack, o.direct ? IC_OPEN_DIRECT : 0, o.readonly);
	if (rc == 0)
		rc = files_metrics_start(&cfg.files, o.metrics);
	if (rc == 0)
		rc = main_serve(&o, &cfg, notify_fd);
out:
	failed = cfg.files.store ? files_fini(&cfg.files) : 0;
	ic_frontend_close(&fe); /* every vdisk is closed by now */
	if (rc == 0)
		ic_pidfile_remove(o.pid_file);
	fuse_opt_free_args(&o.fuse);
	free(o.filters);
	return rc < 0 || failed ? 1 : 0;
}
