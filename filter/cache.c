/* The cache filter: segments of frozen layers are read through isocached,
 * the host's shared block cache (docs/CACHED.md); everything else passes
 * down. By default a read waits for the daemon's fill of what is missing
 * (read-through), so fifty clones booting at once cost one backing read.
 *
 * Parameters: socket=PATH (default $ISOCACHE_SOCKET, else the host's),
 * wait=0|1 (1: read-through; 0: take what is cached, read the rest below),
 * timeout=DURATION a reply may take before the daemon counts as stalled
 * (default 2s), conns=N sessions shared by the calling threads (default 4),
 * shared=0|1 (1: map each layer's cached blocks read-only from the daemon
 * and serve hits from memory without a syscall; 0: every hit is a request),
 * splice=0|1 (1: a front end that asks, IC_REQ_PIPE, gets hits as the
 * arena's pages spliced into its pipe, not copied; 0: they are copied).
 *
 * The daemon is an accelerator, never a dependency: a segment it does not
 * serve whole, for any reason (not running, died, stalled, refused the
 * layer), is read from the layer below. Sessions are (re)connected by a
 * background thread once a second, so no read waits on a connect; the
 * thread starts with the first read, after any fork of the front end.
 *
 * Each session is a `cache_conn` with its own mutex, handle table and
 * bounce buffer, all allocated at create: the data path allocates nothing.
 *
 * A read with IC_REQ_NOWAIT (a front end serving a request on the thread
 * that reads the stream) takes only a session nobody holds, only layers
 * it registered and mapped before, and only blocks in their arenas; the
 * layers that are not frozen go down with the flag. Anything else is
 * -EAGAIN, before anything is counted: the read comes again without the
 * flag and takes the usual way, so a miss still reaches the daemon. A read
 * with IC_REQ_PIPE too is served only if every segment is such a hit.
 *
 * A session not used for CACHE_IDLE_MS gives back its reply slot's pages
 * (ic_cached_trim), from the reconnector's round: a front end keeps one
 * slot of up to 256 KiB per session, shared with the daemon, and a clone
 * whose misses had used all four held 1 MiB of them between the two for
 * as long as it was served, idle or not.
 */
#include "filter/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "isocache/cached.h"
#include "isocache/layer.h"

#define CACHE_LAYERS 256
#define CACHE_UNKNOWN (-1)
#define CACHE_REFUSED (-2)
#define CACHE_IDLE_MS 5000

struct cache_conn {
	pthread_mutex_t mu;
	struct ic_cached_client *c; /* NULL: down until the reconnector runs */
	long long used_ms; /* ic_now_ms of its last use */
	bool trimmed;	    /* its slot's pages given back since */
	int64_t handles[CACHE_LAYERS]; /* by layer table slot: a handle or CACHE_* */
	uint8_t bounce[IC_CACHED_MAX_BLOCKS * IC_CACHED_BLOCK];
};

struct cache_inst {
	char socket[108];
	bool wait;
	bool shared;
	bool splice;
	unsigned timeout_ms;
	unsigned nconns;
	struct ic_layer_table table;
	struct cache_conn *conns;
	_Atomic unsigned next_conn;
	_Atomic uint64_t hit_bytes, miss_bytes, spliced_bytes, connects;
	/* By layer table slot: the layer (its disk id + 1) whose refusal by
	 * the daemon was logged last (each of the nconns sessions asks, and
	 * is refused, on its own). */
	_Atomic uint64_t refusal_said[CACHE_LAYERS];
	/* The reconnector thread, and how destroy stops it. */
	pthread_mutex_t mu;
	pthread_cond_t wake;
	_Atomic bool started;
	bool stopping;
	pthread_t thread;
};

struct cache_params {
	char socket[108]; /* a copy: values live only during the callback */
	uint64_t wait, timeout_ns, conns, shared, splice;
};

static int
cache_param(void *ctx, const char *key, const char *value)
{
	struct cache_params *p = ctx;
	int rc = -EINVAL;

	if (strcmp(key, "socket") == 0) {
		rc = *value && strlen(value) < sizeof(p->socket) ? 0 : -EINVAL;
		if (rc == 0)
			strcpy(p->socket, value);
	} else if (strcmp(key, "wait") == 0) {
		rc = ic_filter_parse_u64(value, &p->wait) == 0 && p->wait <= 1 ? 0 : -EINVAL;
	} else if (strcmp(key, "shared") == 0) {
		rc = ic_filter_parse_u64(value, &p->shared) == 0 && p->shared <= 1 ? 0 : -EINVAL;
	} else if (strcmp(key, "splice") == 0) {
		rc = ic_filter_parse_u64(value, &p->splice) == 0 && p->splice <= 1 ? 0 : -EINVAL;
	} else if (strcmp(key, "timeout") == 0) {
		rc = ic_filter_parse_duration(value, &p->timeout_ns) == 0 &&
				     p->timeout_ns >= 1000000 && p->timeout_ns <= 60000000000ull
			     ? 0
			     : -EINVAL;
	} else if (strcmp(key, "conns") == 0) {
		rc = ic_filter_parse_u64(value, &p->conns) == 0 && p->conns >= 1 && p->conns <= 64
			     ? 0
			     : -EINVAL;
	}
	if (rc < 0)
		ic_log(IC_LOG_ERR, "filter cache: bad parameter %s=%s", key, value);
	return rc;
}

static void
cache_destroy(void *inst)
{
	struct cache_inst *ci = inst;

	if (!ci)
		return;
	pthread_mutex_lock(&ci->mu);
	ci->stopping = true;
	pthread_cond_signal(&ci->wake);
	pthread_mutex_unlock(&ci->mu);
	if (ci->started)
		pthread_join(ci->thread, NULL);
	pthread_cond_destroy(&ci->wake);
	pthread_mutex_destroy(&ci->mu);
	for (unsigned i = 0; ci->conns && i < ci->nconns; i++) {
		ic_cached_disconnect(ci->conns[i].c);
		pthread_mutex_destroy(&ci->conns[i].mu);
	}
	free(ci->conns);
	ic_layer_table_fini(&ci->table);
	free(ci);
}

static int
cache_create(const char *params, void **out)
{
	struct cache_params p = {
		.wait = 1, .timeout_ns = 2000000000ull, .conns = 4, .shared = 1, .splice = 1
	};
	pthread_condattr_t ca;
	struct cache_inst *ci;
	int rc = ic_filter_params_each("cache", params, cache_param, &p);

	if (rc < 0)
		return rc;
	ci = calloc(1, sizeof(*ci));
	if (!ci)
		return -ENOMEM;
	pthread_mutex_init(&ci->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ci->wake, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(ci->socket, sizeof(ci->socket), "%s",
		 ic_cached_socket_path(p.socket[0] ? p.socket : NULL));
	ci->wait = p.wait;
	ci->shared = p.shared;
	ci->splice = p.shared && p.splice;
	ci->timeout_ms = (unsigned)(p.timeout_ns / 1000000);
	ci->nconns = (unsigned)p.conns;
	ci->conns = calloc(ci->nconns, sizeof(*ci->conns));
	if (!ci->conns || ic_layer_table_init(&ci->table, CACHE_LAYERS) < 0) {
		cache_destroy(ci);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < ci->nconns; i++) {
		pthread_mutex_init(&ci->conns[i].mu, NULL);
		for (unsigned s = 0; s < CACHE_LAYERS; s++)
			ci->conns[i].handles[s] = CACHE_UNKNOWN;
	}
	*out = ci;
	return 0;
}

/* Forget the session: its handles die with it. The reconnector makes a new one. */
static void
cache_conn_drop(struct cache_conn *cc, int rc)
{
	ic_log(IC_LOG_DEBUG, "filter cache: daemon session lost: %s", strerror(-rc));
	ic_cached_disconnect(cc->c);
	cc->c = NULL;
}

/* Connect the sessions that are down, without holding their locks while
 * connecting, so readers of a stalled daemon's socket never wait here.
 * With first, give up at the first failure (a dead daemon fails at once, a
 * hung one costs one timeout). */
static void
cache_reconnect(struct cache_inst *ci, bool first)
{
	for (unsigned i = 0; i < ci->nconns; i++) {
		struct cache_conn *cc = &ci->conns[i];
		struct ic_cached_client *c;
		bool down;

		pthread_mutex_lock(&cc->mu);
		down = !cc->c;
		pthread_mutex_unlock(&cc->mu);
		if (!down)
			continue;
		if (ic_cached_connect(ci->socket, ci->timeout_ms, &c) < 0) {
			if (first)
				return;
			continue;
		}
		pthread_mutex_lock(&cc->mu);
		cc->c = c;
		for (unsigned s = 0; s < CACHE_LAYERS; s++)
			cc->handles[s] = CACHE_UNKNOWN;
		pthread_mutex_unlock(&cc->mu);
		atomic_fetch_add_explicit(&ci->connects, 1, memory_order_relaxed);
	}
}

/* Give back the slot pages of the sessions quiet for CACHE_IDLE_MS. A
 * session in use is busy, not idle: it is skipped, never waited for. */
static void
cache_trim_idle(struct cache_inst *ci)
{
	long long now = ic_now_ms();

	for (unsigned i = 0; i < ci->nconns; i++) {
		struct cache_conn *cc = &ci->conns[i];

		if (pthread_mutex_trylock(&cc->mu) != 0)
			continue;
		if (cc->c && !cc->trimmed && now - cc->used_ms >= CACHE_IDLE_MS) {
			ic_cached_trim(cc->c);
			cc->trimmed = true;
		}
		pthread_mutex_unlock(&cc->mu);
	}
}

static void *
cache_reconnector(void *arg)
{
	struct cache_inst *ci = arg;
	struct timespec until;

	pthread_mutex_lock(&ci->mu);
	while (!ci->stopping) {
		pthread_mutex_unlock(&ci->mu);
		cache_reconnect(ci, false);
		cache_trim_idle(ci);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += 1;
		pthread_mutex_lock(&ci->mu);
		while (!ci->stopping && pthread_cond_timedwait(&ci->wake, &ci->mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&ci->mu);
	return NULL;
}

/* A session, locked; its client is NULL while the daemon is away. The
 * first call connects, so the first reads already use the daemon, and
 * starts the reconnector; both then belong to the serving process. */
static struct cache_conn *
cache_conn_get(struct cache_inst *ci)
{
	unsigned i = atomic_fetch_add_explicit(&ci->next_conn, 1, memory_order_relaxed);
	struct cache_conn *cc = &ci->conns[i % ci->nconns];

	if (!atomic_load_explicit(&ci->started, memory_order_acquire)) {
		pthread_mutex_lock(&ci->mu);
		if (!ci->started && !ci->stopping) {
			sigset_t all, old;

			cache_reconnect(ci, true);
			/* The front end's signals are not the reconnector's to take. */
			sigfillset(&all);
			pthread_sigmask(SIG_BLOCK, &all, &old);
			atomic_store_explicit(&ci->started,
					      pthread_create(&ci->thread, NULL, cache_reconnector,
							     ci) == 0,
					      memory_order_release);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
		}
		pthread_mutex_unlock(&ci->mu);
	}
	pthread_mutex_lock(&cc->mu);
	cc->used_ms = ic_now_ms();
	cc->trimmed = false;
	return cc;
}

/* Under IC_REQ_NOWAIT: a session nobody holds, locked, or NULL; then
 * *away says that none is connected (the daemon is away: the layers below
 * serve, as they do without the flag). Nothing connects here: before the
 * first read without the flag, none is up, and none counts as away. */
static struct cache_conn *
cache_conn_try(struct cache_inst *ci, bool *away)
{
	unsigned first = atomic_load_explicit(&ci->next_conn, memory_order_relaxed);
	bool held = false;

	*away = false;
	if (!atomic_load_explicit(&ci->started, memory_order_acquire))
		return NULL;
	for (unsigned i = 0; i < ci->nconns; i++) {
		struct cache_conn *cc = &ci->conns[(first + i) % ci->nconns];

		if (pthread_mutex_trylock(&cc->mu) != 0) {
			held = true; /* in use: it may be up */
			continue;
		}
		if (cc->c) {
			cc->used_ms = ic_now_ms();
			cc->trimmed = false;
			return cc;
		}
		pthread_mutex_unlock(&cc->mu);
	}
	*away = !held;
	return NULL;
}

/* The session's handle for layer l, registering it on first use; < 0 when
 * the daemon will not cache it. The daemon gets a read-only fd of its own
 * file and checks it; the uuid it reads from the file must be ours. */
static int64_t
cache_handle(struct cache_inst *ci, struct cache_conn *cc, const struct ic_layer *l)
{
	int slot = ic_layer_table_slot(&ci->table, l->disk_id);
	char path[64];
	uint8_t uuid[16];
	uint32_t h;
	int fd, rc;

	if (slot < 0)
		return CACHE_REFUSED;
	if (cc->handles[slot] != CACHE_UNKNOWN)
		return cc->handles[slot];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", l->fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return CACHE_REFUSED;
	rc = ic_cached_register(cc->c, fd, &h, NULL, uuid);
	close(fd);
	if (rc == -EBADF || rc == -EACCES || rc == -EPERM || rc == -ENODATA || rc == -ENOSPC ||
	    (rc == 0 && memcmp(uuid, l->uuid, 16))) {
		const char *why = rc == 0 ? "uuid differs" : strerror(-rc);

		if (rc == -ENODATA)
			why = "its file has no " IC_LAYER_XATTR " mark (a filesystem without "
			      "extended attributes?)";
		if (atomic_exchange(&ci->refusal_said[slot], l->disk_id + 1) != l->disk_id + 1)
			ic_log(IC_LOG_WARN, "filter cache: the daemon does not cache layer %llu: %s",
			       (unsigned long long)l->disk_id, why);
		cc->handles[slot] = CACHE_REFUSED;
	} else if (rc < 0) {
		cache_conn_drop(cc, rc);
		return CACHE_REFUSED;
	} else {
		cc->handles[slot] = h;
		/* Without the arena (--no-shared, a refusal) hits take the socket. */
		rc = ci->shared ? ic_cached_map(cc->c, h) : 0;
		if (rc < 0 && rc != -EOPNOTSUPP)
			ic_log(IC_LOG_DEBUG, "filter cache: layer %llu not mapped: %s",
			       (unsigned long long)l->disk_id, strerror(-rc));
	}
	return cc->handles[slot];
}

/* Serve s whole from the daemon into s->buf: 1, or 0 to leave it to the
 * layer below. With nowait, only from the arena of a layer this session
 * mapped before, and -EAGAIN where the read without it would ask the
 * daemon (a block not in the arena, a layer not yet registered). */
/* The run of segment bytes [pos, end) that starts at pos and one call to
 * the daemon covers: its blocks from *b0, *nb of them (at most
 * IC_CACHED_MAX_BLOCKS), all set in *all; returns where the run stops. */
static uint64_t
cache_run(uint64_t pos, uint64_t end, uint64_t *b0, uint32_t *nb, uint64_t *all)
{
	uint64_t bend = (end + IC_CACHED_BLOCK - 1) / IC_CACHED_BLOCK, stop;

	*b0 = pos / IC_CACHED_BLOCK;
	*nb = bend - *b0 < IC_CACHED_MAX_BLOCKS ? (uint32_t)(bend - *b0) : IC_CACHED_MAX_BLOCKS;
	*all = *nb == 64 ? UINT64_MAX : (1ull << *nb) - 1;
	stop = (*b0 + *nb) * IC_CACHED_BLOCK;
	return stop < end ? stop : end;
}

/* After a call to the daemon for a run: a session whose connection failed
 * is dropped (-EINVAL is a range past the layer's end, not the session's
 * fault); whether every block of the run (all) came. */
static bool
cache_call_whole(struct cache_conn *cc, int rc, uint64_t hits, uint64_t all)
{
	if (rc < 0 && rc != -EINVAL)
		cache_conn_drop(cc, rc);
	return rc == 0 && (hits & all) == all;
}

/* Session cc's handle for the layer of segment s (frozen): registered at
 * first use, or under nowait only one it has already (else CACHE_UNKNOWN);
 * CACHE_REFUSED when the daemon will not cache it or no session is up. */
static int64_t
cache_seg_handle(struct cache_inst *ci, struct cache_conn *cc, const struct ic_seg *s, bool nowait)
{
	int slot;

	if (!nowait)
		return cc->c ? cache_handle(ci, cc, s->layer) : CACHE_REFUSED;
	slot = ic_layer_table_slot(&ci->table, s->layer->disk_id);
	return slot >= 0 && cc->c ? cc->handles[slot] : CACHE_REFUSED;
}

static int
cache_read_seg(struct cache_inst *ci, struct cache_conn *cc, const struct ic_seg *s, bool nowait)
{
	uint64_t pos = s->off, end = s->off + s->len, hits = 0;
	int64_t h = cache_seg_handle(ci, cc, s, nowait);

	if (h == CACHE_UNKNOWN && nowait)
		return -EAGAIN;
	while (h >= 0 && pos < end) {
		uint64_t b0, all;
		uint32_t nb;
		uint64_t stop = cache_run(pos, end, &b0, &nb, &all);
		/* Whole blocks go straight to the caller's buffer; edges bounce. */
		bool whole = pos % IC_CACHED_BLOCK == 0 && stop % IC_CACHED_BLOCK == 0;
		uint8_t *dst = whole ? (uint8_t *)s->buf + (pos - s->off) : cc->bounce;

		if (nowait) {
			if (!ic_cached_read_mapped(cc->c, (uint32_t)h, b0, nb, dst))
				return -EAGAIN;
		} else {
			int rc = ic_cached_read(cc->c, (uint32_t)h, b0, nb,
						ci->wait ? IC_CACHED_F_WAIT : 0, dst, &hits);

			if (!cache_call_whole(cc, rc, hits, all))
				return 0;
		}
		if (!whole)
			memcpy((uint8_t *)s->buf + (pos - s->off),
			       cc->bounce + (pos - b0 * IC_CACHED_BLOCK), stop - pos);
		pos = stop;
	}
	return h >= 0;
}

/* Under IC_REQ_PIPE: splice segment s (handle h) into the pipe its buf
 * names, from the layer's arena, run by run of up to 64 blocks. Without
 * nowait, a run whose blocks are not all there is filled first, waiting,
 * counted as a read and copying nothing (ic_cached_fill); a run that was
 * there is reported in the hit ring, as a copied hit is. false when a run
 * is still not whole (a failed fill, a block kept in another layer's
 * memory, an eviction meanwhile) or the arena is not mapped. */
static bool
cache_splice_seg(struct cache_conn *cc, uint32_t h, const struct ic_seg *s, bool nowait)
{
	uint64_t pos = s->off, end = s->off + s->len;
	int pipe = *(const int *)s->buf;

	while (pos < end) {
		uint64_t b0, all, hits = 0;
		uint32_t nb;
		uint64_t stop = cache_run(pos, end, &b0, &nb, &all);
		bool fill = !nowait && ic_cached_mapped_has(cc->c, h, pos, (uint32_t)(stop - pos)) == 0;

		if (fill) {
			int rc = ic_cached_fill(cc->c, h, b0, nb, &hits);

			if (!cache_call_whole(cc, rc, hits, all))
				return false;
		}
		if (!ic_cached_splice_mapped(cc->c, h, pos, (uint32_t)(stop - pos), pipe, !fill))
			return false;
		pos = stop;
	}
	return true;
}

/* IC_REQ_PIPE: every segment spliced into the pipe in order from its
 * layer's arena (cache_splice_seg), or -EAGAIN: not frozen, not
 * registered, not mapped, or not whole there; the read then comes again
 * without the flag. */
static int
cache_pread_pipe(struct cache_inst *ci, struct ic_seg *segs, unsigned n, bool nowait)
{
	struct cache_conn *cc;
	uint64_t bytes = 0;
	bool away;
	int rc = 0;

	if (!ci->splice || !(cc = nowait ? cache_conn_try(ci, &away) : cache_conn_get(ci)))
		return -EAGAIN;
	for (unsigned i = 0; i < n && rc == 0; i++) {
		const struct ic_seg *s = &segs[i];
		int64_t h = s->layer->frozen ? cache_seg_handle(ci, cc, s, nowait) : CACHE_REFUSED;

		if (h < 0 || !cc->c || !cache_splice_seg(cc, (uint32_t)h, s, nowait))
			rc = -EAGAIN;
		bytes += s->len;
	}
	pthread_mutex_unlock(&cc->mu);
	if (rc == 0) {
		atomic_fetch_add_explicit(&ci->hit_bytes, bytes, memory_order_relaxed);
		atomic_fetch_add_explicit(&ci->spliced_bytes, bytes, memory_order_relaxed);
	}
	return rc;
}

static int
cache_pread(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	struct cache_inst *ci = inst;
	struct ic_seg below[IC_MAX_SEGS];
	struct cache_conn *cc = NULL;
	bool nowait = flags & IC_REQ_NOWAIT, away = false;
	uint64_t hit = 0, miss = 0;
	unsigned k = 0;
	int rc = 0;

	if (flags & IC_REQ_PIPE)
		return cache_pread_pipe(ci, segs, n, nowait);

	for (unsigned i = 0; i < n && i < IC_MAX_SEGS && rc == 0; i++) {
		if (!segs[i].layer->frozen) {
			below[k++] = segs[i];
			continue;
		}
		if (!cc && !away)
			cc = nowait ? cache_conn_try(ci, &away) : cache_conn_get(ci);
		if (!cc && !away) {
			rc = -EAGAIN;
			break;
		}
		rc = cc ? cache_read_seg(ci, cc, &segs[i], nowait) : 0;
		if (rc == 1) {
			hit += segs[i].len;
			rc = 0;
		} else if (rc == 0) {
			miss += segs[i].len;
			below[k++] = segs[i];
		}
	}
	if (cc)
		pthread_mutex_unlock(&cc->mu);
	if (rc < 0)
		return rc; /* -EAGAIN: read again without nowait, counted then */
	atomic_fetch_add_explicit(&ci->hit_bytes, hit, memory_order_relaxed);
	atomic_fetch_add_explicit(&ci->miss_bytes, miss, memory_order_relaxed);
	return k ? ic_next_pread(next, below, k, flags) : 0;
}

/* Prefetch hints on frozen layers become daemon fills; others pass down. */
static int
cache_cache(struct ic_next *next, void *inst, struct ic_seg *segs, unsigned n)
{
	struct cache_inst *ci = inst;
	struct ic_seg below[IC_MAX_SEGS];
	struct cache_conn *cc = NULL;
	unsigned k = 0;

	for (unsigned i = 0; i < n && i < IC_MAX_SEGS; i++) {
		const struct ic_seg *s = &segs[i];
		int64_t h = CACHE_REFUSED;
		int rc = 0;

		if (s->layer->frozen && !cc)
			cc = cache_conn_get(ci);
		if (s->layer->frozen && cc->c)
			h = cache_handle(ci, cc, s->layer);
		if (h < 0) {
			below[k++] = *s;
			continue;
		}
		for (uint64_t b = s->off / IC_CACHED_BLOCK,
			      bend = (s->off + s->len + IC_CACHED_BLOCK - 1) / IC_CACHED_BLOCK;
		     rc == 0 && b < bend; b += IC_CACHED_MAX_BLOCKS)
			rc = ic_cached_prefetch(cc->c, (uint32_t)h, b,
						bend - b < IC_CACHED_MAX_BLOCKS ? (uint32_t)(bend - b)
										: IC_CACHED_MAX_BLOCKS,
						NULL);
		if (rc < 0 && rc != -EINVAL)
			cache_conn_drop(cc, rc);
	}
	if (cc)
		pthread_mutex_unlock(&cc->mu);
	return k ? ic_next_cache(next, below, k) : 0;
}

static uint32_t
cache_caps(struct ic_next *next, void *inst)
{
	(void)inst;
	return ic_next_caps(next) | IC_CAP_CACHE;
}

/* A frozen layer enters use (a vdisk opened, a server starting): register
 * it now, not at its first read, so that the daemon begins a boot trace's
 * replay while the client is still starting (a VM's firmware and loader
 * run before its first read). Never fails the open: the reads register it
 * in any case. */
static int
cache_open(struct ic_next *next, void *inst, const struct ic_layer *layer)
{
	struct cache_inst *ci = inst;
	struct cache_conn *cc;

	(void)next;
	if (!layer->frozen)
		return 0;
	cc = cache_conn_get(ci);
	if (cc->c)
		cache_handle(ci, cc, layer);
	pthread_mutex_unlock(&cc->mu);
	return 0;
}

/* The layer leaves use: its disk_id slot may later name a reopened file. */
static void
cache_close(struct ic_next *next, void *inst, const struct ic_layer *layer)
{
	struct cache_inst *ci = inst;
	int slot = ic_layer_table_slot(&ci->table, layer->disk_id);

	(void)next;
	for (unsigned i = 0; slot >= 0 && i < ci->nconns; i++) {
		pthread_mutex_lock(&ci->conns[i].mu);
		ci->conns[i].handles[slot] = CACHE_UNKNOWN;
		pthread_mutex_unlock(&ci->conns[i].mu);
	}
}

static int
cache_report(void *inst, char *buf, size_t cap)
{
	struct cache_inst *ci = inst;
	unsigned up = 0;
	struct json_object *o = json_object_new_object();

	for (unsigned i = 0; i < ci->nconns; i++) {
		pthread_mutex_lock(&ci->conns[i].mu);
		up += ci->conns[i].c != NULL;
		pthread_mutex_unlock(&ci->conns[i].mu);
	}
	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "socket", json_object_new_string(ci->socket));
	json_object_object_add(o, "wait", json_object_new_boolean(ci->wait));
	json_object_object_add(o, "shared", json_object_new_boolean(ci->shared));
	json_object_object_add(o, "splice", json_object_new_boolean(ci->splice));
	ic_json_add_u64(o, "sessions", ci->nconns);
	ic_json_add_u64(o, "connected", up);
	ic_json_add_u64(o, "connects", atomic_load(&ci->connects));
	ic_json_add_u64(o, "hit_bytes", atomic_load(&ci->hit_bytes));
	ic_json_add_u64(o, "miss_bytes", atomic_load(&ci->miss_bytes));
	ic_json_add_u64(o, "spliced_bytes", atomic_load(&ci->spliced_bytes));
	return ic_json_emit(o, buf, cap);
}

const struct ic_filter_ops ic_filter_cache_ops = {
	IC_FILTER_OPS_INIT,
	.name = "cache",
	.usage = "socket=PATH ($ISOCACHE_SOCKET) wait=0|1 (1) timeout=DURATION (2s) conns=N (4) "
		 "shared=0|1 (1) splice=0|1 (1)",
	.create = cache_create,
	.destroy = cache_destroy,
	.open = cache_open,
	.close = cache_close,
	.caps = cache_caps,
	.pread = cache_pread,
	.cache = cache_cache,
	.report = cache_report,
	.honours = IC_REQ_NOWAIT | IC_REQ_PIPE,
};
