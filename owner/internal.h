/* Private to owner/. */
#ifndef IC_OWNER_INTERNAL_H
#define IC_OWNER_INTERNAL_H

#include <sys/types.h>

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
/* owner_claim with an explicit way: force ignores the owner's policy and,
 * when it does not answer, kills it (owner_kill). said (may be NULL) gets
 * the owner's last answer. */
int owner_acquire(struct owner_store *os, const char *name, const char *who,
		  unsigned timeout_ms, enum ic_takeover how, char *said, size_t cap,
		  struct owner_claim *out);

/* ---- control.c ---- */
/* This handle's control socket path, or "". */
const char *owner_socket(const struct owner_store *os);

/* ---- takeover.c ---- */
/* Kill the process behind rec's control socket and wait for it to exit,
 * logging why (why: the reason for people). -EBUSY, logged and naming the
 * owner, when it cannot be reached, may not be signalled or does not exit. */
int owner_kill(const char *name, const struct ic_owner_rec *rec, const char *why);

#endif
