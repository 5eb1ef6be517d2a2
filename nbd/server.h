/* isocache-nbd internals shared by main.c (command line), export.c (vdisks
 * behind exports) and server.c (sockets, clients, workers). */
#ifndef IC_NBD_SERVER_H
#define IC_NBD_SERVER_H

#include <stdbool.h>

#include "common/iostats.h"
#include "isocache/vdisk.h"
#include "nbd/nbd.h"

struct ic_metrics;
struct srv_tls;

/* An image served as one export. The vdisk is opened when the server
 * starts (images named on the command line) or when a client first selects
 * it (all images of the store), and stays open until the server exits,
 * unless it is released to another process: then the next client to
 * select it, once no earlier client is connected, claims it again. */
struct srv_export {
	char image[2 * IC_NAME_MAX + 2];
	char description[128];
	bool readonly;
	pthread_mutex_t mu;
	struct ic_vdisk *vd;
	unsigned clients;         /* connections in transmission on it */
	struct ic_vdisk **retired; /* released handles, closed at exit: a
				    * connection between select and enter may
				    * still hold one */
	size_t nretired;
	struct ic_iostats io;	   /* requests served on it, for --metrics */
	struct ic_nbd_reply_stats replies; /* replies and the sends that took
					    * them, over all its connections */
	_Atomic uint64_t handoffs; /* times its vdisk was released to another
				    * process and claimed back */
};

struct srv_exports {
	struct ic_store *store;
	struct ic_stack *stack; /* NULL: no filters */
	unsigned open_flags;	/* IC_OPEN_* */
	size_t count;
	struct srv_export *items;
	struct ic_nbd_export *pub; /* what the protocol engine sees, same order */
	struct ic_nbd_catalog catalog;
	struct ic_metrics *metrics; /* --metrics, reading the exports */
};

extern const struct ic_nbd_backend_ops srv_vdisk_ops;

/* Make one export per image named (images == NULL: every image of the
 * store), named after the image, or export_name when there is exactly one.
 * Named images are opened now; returns 0 or -errno after logging. */
int srv_exports_load(struct srv_exports *ex, char **images, int count, const char *export_name,
		     bool readonly);
/* A connection starts or ends transmission on e: counted as a client using
 * its vdisk (the default release policy keeps a vdisk while one is). */
void srv_export_enter(struct srv_export *e);
void srv_export_leave(struct srv_export *e);
/* Close every open vdisk (flushing); returns the first error. */
int srv_exports_close(struct srv_exports *ex);

struct srv_config {
	const char *socket_path; /* -k */
	const char *port;	 /* -p */
	const char *bind;	 /* -b */
	bool persistent;	 /* -t */
	unsigned slots;		 /* requests in flight per connection */
	uint64_t max_inflight;	 /* payload bytes in flight per connection */
	unsigned max_clients;	 /* -e: clients served at once, 0 = any number */
	struct srv_tls *tls;	 /* NULL: STARTTLS not offered */
	bool tls_required;	 /* --tls=require: no export without TLS */
	bool insecure;		 /* --insecure: plain TCP beyond loopback allowed */
};

/* Block SIGTERM and SIGINT before the first thread starts, so that every
 * thread (vdisk commits, the cache filter's) inherits the mask and only
 * srv_run's signal thread takes them: taken by any other, they kill the process. */
void srv_block_signals(void);
/* Serve until SIGTERM/SIGINT, srv_stop(), or (not persistent) the last
 * client leaving. Listening sockets are made by srv_listen first, so that
 * the caller can report readiness (pid file, --fork, --run) in between. */
int srv_listen(const struct srv_config *cfg);
int srv_run(const struct srv_config *cfg, struct srv_exports *ex);
/* Serve one client on stdin/stdout (-s). */
int srv_run_stdio(const struct srv_config *cfg, struct srv_exports *ex);
/* Serve ex's counters on --metrics ADDR (metrics.c; where NULL: no
 * listener), until srv_exports_close stops it first thing. */
int srv_metrics_start(const char *where, struct srv_exports *ex);

/* Ask srv_run to stop (any thread, async-signal-safe), with exit status rc. */
void srv_stop(int rc);

#endif
