/* Private to owner/. */
#ifndef IC_OWNER_INTERNAL_H
#define IC_OWNER_INTERNAL_H

#include <sys/types.h>

#include "etcd/etcd.h"
#include "owner/owner.h"

#define OWNER_LOCK_FILE "owners.lock"

/* ---- lock.c: liveness, the kernel's OFD lock ---- */
/* A new open file description of owners.lock (O_CLOEXEC), made if missing. */
int owner_lock_open(struct owner_store *os);
/* Take name's lock on fd without waiting: 0, -EAGAIN when a live owner
 * holds it, or another -errno. */
int owner_lock_take(int fd, const char *name);
/* Wait until deadline_ms (ic_now_ms) for name's lock on fd: its holder is
 * about to let go (it answered RELEASED, or was killed). */
int owner_lock_wait(int fd, const char *name, long long deadline_ms);
/* Does a live process hold name's lock? 1 yes, 0 no, or -errno. */
int owner_lock_held(struct owner_store *os, const char *name);

/* ---- record.c: the record, information for people ---- */
/* Nobody in rec (owner id all zero)? */
bool owner_none(const struct ic_owner_rec *rec);
/* "isocache-nbd pid 4242 (open vm1) since 2026-11-21 10:00:00" into buf. */
void owner_describe(const struct ic_owner_rec *rec, char *buf, size_t cap);
/* The record a process writes for itself: a new owner id (or the given
 * one), pid, start time, boot id, its control socket (or ""), who. */
int owner_self(pid_t pid, const char *who, const uint8_t *id, const char *socket,
	       struct ic_owner_rec *out);
/* Fill out's name, owner id, generation and who from rec. */
void owner_claimed(struct owner_claim *out, const char *name, const struct ic_owner_rec *rec);
/* Read name's record into *rec (all zero when there is none). */
int owner_read(struct owner_store *os, const char *name, struct ic_owner_rec *rec);
/* Compare-and-swap: if claim still holds, make `to` the owner (its
 * generation becomes the claim's + 1, stored in *generation). -ESTALE when
 * the claim no longer holds. */
int owner_transfer(struct owner_store *os, const struct owner_claim *claim,
		   const struct ic_owner_rec *to, uint64_t *generation);

/* ---- acquire.c: claiming, and asking a live owner to release ---- */
/* owner_acquire's way beyond enum ic_takeover: claim only a vdisk nobody
 * owns, and when someone does return -EBUSY without a word (snap then
 * asks that owner for the snapshot instead). */
#define OWNER_TAKEOVER_IF_FREE ((enum ic_takeover)(IC_TAKEOVER_FORCE + 1))
/* Does how ask a live owner to release (ask, force)? */
static inline bool
owner_asks(enum ic_takeover how)
{
	return how == IC_TAKEOVER_ASK || how == IC_TAKEOVER_FORCE;
}
/* owner_claim with an explicit way: force ignores the owner's policy and,
 * when it does not answer, kills it (owner_kill). said (may be NULL) gets
 * the owner's last answer. */
int owner_acquire(struct owner_store *os, const char *name, const char *who,
		  unsigned timeout_ms, enum ic_takeover how, char *said, size_t cap,
		  struct owner_claim *out);

/* ---- control.c ---- */
/* This handle's control socket path, or "". */
const char *owner_socket(const struct owner_store *os);
/* Put s on ctl's list (answer RELEASE and SNAPSHOT for it); take it off
 * (no effect when it is on none), waiting for a handoff of it in progress. */
void owner_control_add(struct ic_control *ctl, struct owner_served *s);
void owner_control_remove(struct owner_served *s);
/* The release policy's verdict on releasing s: NULL = release, else why
 * not (in why). Always NULL for a vdisk served by no control socket. */
const char *owner_verdict(const struct owner_served *s, char *why, size_t cap);

/* ---- lease.c: a claim across hosts (docs/MULTI-HOST.md §4) ---- */
#define OWNER_ETCD_KEY_MAX 600
#define OWNER_LEASE_TTL_S 10u       /* default; ISOCACHE_LEASE_TTL overrides */
#define OWNER_ETCD_TIMEOUT_MS 2000u /* bound of one etcd call */

/* Where ownership of a store's vdisks lives when it is in etcd. */
struct owner_etcd {
	const struct ic_meta *meta; /* the store, when its metadata is in etcd */
	struct ic_etcd_url url;
	unsigned ttl_s;     /* the lease's TTL */
	unsigned margin_ms; /* validity ends this long before the TTL would */
};

/* Is ownership in os kept in etcd? 1 with *cfg filled, 0 when it is local
 * (the kernel lock and the metadata record), or -EINVAL (logged). It is
 * when the store's metadata is in etcd, or ISOCACHE_OWNER_ETCD names a
 * cluster for a local store's; ISOCACHE_LEASE_TTL gives the TTL. */
int owner_etcd_config(const struct owner_store *os, struct owner_etcd *cfg);
/* "/isocache/PREFIX/KIND/NAME" (kind "owners" or "release") into buf:
 * 0 or -ENAMETOOLONG. */
int owner_etcd_key(const struct owner_etcd *cfg, const char *kind, const char *name,
		   char *buf, size_t cap);
/* "/isocache/PREFIX/release/NAME/", under which each claimant puts its
 * release request at a key of its own: 0 or -ENAMETOOLONG. */
int owner_etcd_requests(const struct owner_etcd *cfg, const char *name, char *buf, size_t cap);
/* The record a claim found: the lease it is attached to, and its
 * mod_revision, its owner's fencing token. */
struct owner_found {
	int64_t lease;
	int64_t token;
};
/* One attempt at claiming name as self: grant a lease, then in one txn put
 * the record attached to it if no record exists (and drop every release
 * request left under release/NAME/). 0: out holds the claim, its lease kept alive by a keeper thread
 * and etcd's client taken over (*etcd = NULL). -EBUSY: *seen is the record
 * found and *found its lease and token. Else -errno. */
int owner_lease_try(const struct owner_etcd *cfg, struct ic_etcd **etcd, const char *name,
		    const struct ic_owner_rec *self, struct owner_claim *out,
		    struct ic_owner_rec *seen, struct owner_found *found);
/* Inside write transaction txn: does the claim still stand in etcd, its
 * record's mod_revision still the fencing token and its lease valid? On a
 * store in etcd the commit of txn is made conditional on the token
 * (ic_meta_txn_fence: it then fails with -ESTALE); on a local store the
 * record is read now. 0, -ESTALE (logged), or the etcd call's -errno
 * (nothing known; do not commit). */
int owner_lease_check(struct owner_lease *lease, struct ic_meta_txn *txn);
/* End the claim: revoke the lease (the record, put on it, goes with it)
 * and stop renewing it. Fence the claim first. */
void owner_lease_release(struct owner_lease *lease);
/* After the keeper gave the lease up as lost (validity ran out while etcd
 * did not answer), revoke it, and the record with it: etcd may still hold
 * both, and keeps them past quorum's return (a new leader renews every
 * lease), so the next claimant would wait a TTL or more. One call (within
 * the etcd timeout, also while etcd is still away). Nothing otherwise.
 * The keeper must be stopped. */
void owner_lease_abandon(struct owner_lease *lease);
/* Stop renewing the lease (it expires within its TTL unless released);
 * owner_lease_valid is false from then on, and may still be asked. */
void owner_lease_stop(struct owner_lease *lease);
/* Free what owner_lease_try made (after owner_lease_release, or leaving
 * the lease to expire), once no other thread asks owner_lease_valid. */
void owner_lease_free(struct owner_lease *lease);
/* The record's key and the requests' prefix (release/NAME/), for the
 * release watcher. */
const char *owner_lease_key(const struct owner_lease *lease);
const char *owner_lease_release_key(const struct owner_lease *lease);
int64_t owner_lease_token(const struct owner_lease *lease);
const struct owner_etcd *owner_lease_etcd(const struct owner_lease *lease);

/* The key a store's destroy puts while it runs (its value names the
 * destroyer), /isocache/PREFIX/destroying/store: every claim through etcd
 * compares it absent. */
#define OWNER_SEAL_KIND "destroying"
#define OWNER_SEAL_NAME "store"
/* held/NAME: put by a claim through etcd, deleted by its release (lease.c) */
#define OWNER_HELD_KIND "held"

/* ---- remote.c: acquiring and releasing across hosts ---- */
/* owner_acquire for a store whose ownership is in etcd (socket: this
 * process's control socket, for the record, or ""): claim; a live
 * owner (a record) is asked to release through release/NAME/ID when
 * owner_asks(how), and the claimant waits for its record to go (its release, or
 * its lease expiring) for up to timeout_ms + the TTL. */
int owner_remote_acquire(const struct owner_etcd *cfg, const char *name, const char *who,
			 const char *socket, unsigned timeout_ms, enum ic_takeover how,
			 struct owner_claim *out);
/* Serving s to release requests through etcd, in two steps: prepare
 * copies what the watcher needs of the claim's lease (before anything
 * else can release the claim); serve starts the watcher with
 * it (a NULL w: -ENOMEM). */
struct owner_watch *owner_remote_prepare(struct owner_served *s);
int owner_remote_serve(struct owner_served *s, struct owner_watch *w);
/* Stop answering them (waits for a release in progress). */
void owner_remote_unserve(struct owner_served *s);
/* Ask the owner of name, through etcd, for a live snapshot as image
 * (NAME@SNAP): a "snap" request under release/NAME/, which the owner
 * answers in place. 1 when nobody owns name (or its owner went meanwhile):
 * snapshot here; else 0 or the owner's -errno (logged). */
int owner_remote_snapshot_ask(const struct owner_etcd *cfg, const char *name,
			      const char *image);
/* ---- snapshot.c ---- */
/* Begin a release or snapshot of served s: false (and nothing begun) while
 * another is under way, asked on the control socket or through etcd. End
 * it with owner_served_end. */
bool owner_served_begin(struct owner_served *s);
void owner_served_end(struct owner_served *s);
/* A live snapshot of served s as image: quiesce, flush, freeze the leaf
 * and go on with a new one, without closing anything. 0 or -errno;
 * -EBUSY while a release or another snapshot of s is under way. */
int owner_served_snapshot(struct owner_served *s, const char *image);

/* ---- takeover.c ---- */
/* Kill the process behind rec's control socket and wait for it to exit,
 * logging why (why: the reason for people). -EBUSY, logged and naming the
 * owner, when it cannot be reached, may not be signalled or does not exit. */
int owner_kill(const char *name, const struct ic_owner_rec *rec, const char *why);

#endif
