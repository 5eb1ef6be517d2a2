/* The control socket and the ownership handoff (docs/ARCHITECTURE.md §1, §6;
 * docs/OWNERSHIP.md, docs/CONTROL-PROTOCOL.md).
 *
 * Every long-running isocache process (isocache-nbd, isocache-fuse) starts
 * a control socket on its store with ic_control_start. From then on:
 * - every vdisk it opens for writing records the socket's path in its
 *   ownership record, so another process can find it;
 * - a RELEASE request from another process makes the library quiesce that
 *   vdisk (no new writes, in-flight ones drained), flush it, write the
 *   requester as the new owner (compare-and-swap on the generation) and
 *   fence the local handle: its writes then fail with -ESTALE, which front
 *   ends map to EPERM (NBD) or EROFS (FUSE). The release policy may deny;
 * - a SNAPSHOT request freezes the leaf of an open vdisk and continues on a
 *   new leaf without closing the handle (a live snapshot);
 * - STATS and FILTER requests report on and change the filter stack given
 *   in the configuration.
 *
 * ic_vdisk_open (vdisk.h) acquires ownership through this protocol: a dead
 * owner is reclaimed at once, a live one is asked to release.
 *
 * Functions return 0 or a negative errno after logging what was wrong.
 */
#ifndef ISOCACHE_CONTROL_H
#define ISOCACHE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isocache/filter.h"
#include "isocache/meta.h"
#include "isocache/vdisk.h"

#define IC_DEFAULT_RUN_DIR "/run/isocache"
#define IC_RELEASE_TIMEOUT_MS 5000u /* default deadline of a RELEASE request */
#define IC_RELEASE_IDLE_MS 5000u    /* when-idle: no write for this long */

/* What an owner answers to RELEASE (a forced one is never denied). */
enum ic_release_policy {
	IC_RELEASE_WHEN_UNUSED, /* release when no client uses the vdisk
				 * (ic_vdisk_use); the default */
	IC_RELEASE_WHEN_IDLE, /* release when no write came in the last idle_ms */
	IC_RELEASE_NEVER,     /* always deny (a forced takeover still works) */
	IC_RELEASE_ALWAYS,    /* always release */
};

/* "when-unused", "when-idle", "never" or "always" → 0 and *out, else -EINVAL. */
int ic_release_policy_parse(const char *text, enum ic_release_policy *out);
const char *ic_release_policy_name(enum ic_release_policy policy);

struct ic_control_config {
	enum ic_release_policy policy;
	unsigned idle_ms;        /* when-idle window; 0 = IC_RELEASE_IDLE_MS */
	struct ic_stack *stack;  /* answered to STATS and FILTER; may be NULL */
};

struct ic_control;

/* Listen on $ISOCACHE_RUN_DIR/<store-uuid>/<pid>.sock (run dir default
 * IC_DEFAULT_RUN_DIR, made if missing) with one thread serving requests.
 * At most one control per store handle. Only peers of the same uid, or
 * root, are answered. */
int ic_control_start(struct ic_store *store, const struct ic_control_config *cfg,
		     struct ic_control **out);
/* Stop serving, remove the socket and free. Call after closing every vdisk
 * of the store (their handles refer to it); NULL is fine. */
void ic_control_stop(struct ic_control *ctl);
/* The socket's path. */
const char *ic_control_path(const struct ic_control *ctl);

/* ---- Ownership, as isocache-admin owner uses it ---- */

struct ic_owner_info {
	struct ic_owner_rec rec; /* owner_id all zero: nobody owns it */
	bool alive;              /* the owner process still runs */
	char policy[16];         /* its release policy, "" if it did not say */
};

/* The ownership record of vdisk name (-ENOENT: no such vdisk). */
int ic_owner_show(struct ic_store *store, const char *name, struct ic_owner_info *out);
/* fn for every vdisk of the store, owned or not; stops at fn's first
 * non-zero return, which is returned. */
int ic_owner_list(struct ic_store *store,
		  int (*fn)(void *arg, const char *name, const struct ic_owner_info *info),
		  void *arg);
/* Ask name's owner to let go within timeout_ms (0 = the default); on
 * success nobody owns name afterwards. said gets the owner's answer (cap
 * bytes). -EBUSY: denied, or no answer in time (message logged). */
int ic_owner_release(struct ic_store *store, const char *name, unsigned timeout_ms,
		     char *said, size_t cap);
/* Take name over by force: ask first (ignoring the owner's policy), and when
 * no answer comes within timeout_ms, kill the owner (SIGKILL through a
 * pidfd), wait for it to exit and claim with generation + 1. Nobody owns
 * name afterwards. */
int ic_owner_takeover(struct ic_store *store, const char *name, unsigned timeout_ms);
/* Deadline of the RELEASE requests ic_vdisk_open sends (0 = the default). */
void ic_owner_set_timeout(struct ic_store *store, unsigned timeout_ms);

/* What a writer on this store handle does when a live process owns the
 * vdisk it claims (ic_vdisk_open for writing, resize, rm, rollback, ...). */
enum ic_takeover {
	IC_TAKEOVER_ASK,   /* ask for a RELEASE; the owner's policy decides (default) */
	IC_TAKEOVER_NEVER, /* refuse at once, naming the owner (destructive admin
			    * commands without --force) */
	IC_TAKEOVER_FORCE, /* RELEASE ignoring the policy; an owner that does not
			    * answer is killed (ic_owner_takeover) */
};
void ic_owner_set_takeover(struct ic_store *store, enum ic_takeover how);

/* ---- Requests to a live process, by socket path ---- */

/* STATS: a JSON object (pid, who, policy, vdisks, stack) into buf. */
int ic_control_stats(const char *socket, char *buf, size_t cap);

enum ic_control_filter_cmd { IC_CONTROL_FILTER_LS, IC_CONTROL_FILTER_ADD, IC_CONTROL_FILTER_RM };
/* FILTER ls (arg unused), add (arg: a spec, at pos as ic_stack_add) or rm
 * (arg: a filter name). ls writes ic_stack_report's JSON into buf; the
 * others write the owner's message, if any. */
int ic_control_filter(const char *socket, enum ic_control_filter_cmd op, const char *arg, int pos,
		      char *buf, size_t cap);

#endif
