/* Ownership of a vdisk (docs/OWNERSHIP.md): the record in the metadata
 * file, liveness, and acquiring — claim when nobody or a dead process owns
 * the vdisk, else ask the live owner to release it over its control socket,
 * refuse, or with force kill it first.
 *
 * Liveness is the kernel's: an owner holds an OFD lock on its vdisk's byte
 * of owners.lock for as long as it owns, and is dead exactly when that lock
 * can be taken (the kernel drops it when the owner's last descriptor of it
 * closes, at exit in any PID namespace, whatever /proc shows). A claim takes
 * the lock first, then changes the record by compare-and-swap on its
 * generation inside one LMDB write transaction; a release goes in reverse.
 * Pid, start time and boot id in the record are for people only. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "common/uuid.h"
#include "owner/ctlmsg.h"
#include "vdisk/internal.h"

#define OWNER_ATTEMPTS 5         /* owner gone mid-request: look again */
#define OWNER_UNLOCK_WAIT_MS 2000 /* its lock is free once it exited; margin */
#define OWNER_POLICY_WAIT_MS 500 /* owner show: how long to wait for its policy */
#define OWNER_RECORD_WAIT_MS 1000 /* a claimer writes its record right after its lock */
#define OWNER_LOCK_FILE "owners.lock"

/* ---- the kernel lock ---- */

/* The vdisk's byte of owners.lock: a 62-bit FNV-1a hash of its name. Two
 * names sharing a byte (odds 2^-62 per pair) would only make one wait for
 * the other, never let two own one vdisk. */
static off_t
owner_lock_byte(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return (off_t)(h >> 2);
}

/* A new open file description of owners.lock (each claim has its own, so
 * two claims of one process conflict too). O_CLOEXEC: helpers a server
 * starts must never hold an owner's lock. Whoever may write the metadata
 * may claim, so the file takes meta.mdb's owner and mode when we made it. */
static int
owner_lock_open(struct ic_store *store)
{
	char path[PATH_MAX];
	struct stat meta, st;
	int fd;

	snprintf(path, sizeof(path), "%s/" OWNER_LOCK_FILE, store->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int rc = -errno;

		ic_log(IC_LOG_ERR, "cannot open the ownership lock file %s: %s", path,
		       strerror(errno));
		return rc;
	}
	snprintf(path, sizeof(path), "%s/meta.mdb", store->dir);
	if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && stat(path, &meta) == 0 &&
	    (st.st_uid != meta.st_uid || (st.st_mode & 0666) != (meta.st_mode & 0666))) {
		if (fchown(fd, meta.st_uid, meta.st_gid) || fchmod(fd, meta.st_mode & 0666))
			ic_log(IC_LOG_WARN, "%s/" OWNER_LOCK_FILE ": cannot give it meta.mdb's owner "
			       "and mode: %s", store->dir, strerror(errno));
	}
	return fd;
}

static struct flock
owner_lock_range(const char *name, short type)
{
	return (struct flock){ .l_type = type, .l_whence = SEEK_SET,
			       .l_start = owner_lock_byte(name), .l_len = 1 };
}

/* Take name's lock on fd without waiting: 0, -EAGAIN when a live owner
 * holds it, or another -errno. */
static int
owner_lock_take(int fd, const char *name)
{
	struct flock fl = owner_lock_range(name, F_WRLCK);

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EACCES || errno == EAGAIN ? -EAGAIN : -errno;
}

/* Wait until deadline_ms (vd_now_ms) for name's lock on fd: its holder is
 * about to let go (it answered RELEASED, or was killed). */
static int
owner_lock_wait(int fd, const char *name, long long deadline_ms)
{
	for (;;) {
		int rc = owner_lock_take(fd, name);

		if (rc != -EAGAIN || vd_now_ms() >= deadline_ms)
			return rc;
		usleep(200);
	}
}

/* Does a live process hold name's lock? 1 yes, 0 no, or -errno. Asking
 * needs only read access (owner show by anyone who may read the store),
 * and no lock file yet means nobody ever claimed. */
static int
owner_lock_held(struct ic_store *store, const char *name)
{
	char path[PATH_MAX];
	struct flock fl = owner_lock_range(name, F_WRLCK);
	IC_AUTOCLOSE int fd = -1;

	snprintf(path, sizeof(path), "%s/" OWNER_LOCK_FILE, store->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fcntl(fd, F_OFD_GETLK, &fl))
		return -errno;
	return fl.l_type != F_UNLCK;
}

void
owner_drop(struct owner_claim *claim)
{
	if (claim->lock_fd >= 0)
		close(claim->lock_fd);
	claim->lock_fd = -1;
}

/* ---- the record: information for people ---- */

/* Start time of pid in clock ticks since boot (field 22 of /proc/PID/stat),
 * or 0 when it cannot be read (another PID namespace, hidepid, gone). */
static uint64_t
owner_start_time(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long start = 0;
	FILE *f;
	char *p;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: skip past the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
				"%*d %*d %*d %llu",
			 &start) != 1)
		return 0;
	return start;
}

static void
owner_boot_id(uint8_t id[16])
{
	char text[64] = "";
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	unsigned j = 0;

	memset(id, 0, 16);
	if (!f)
		return;
	if (!fgets(text, sizeof(text), f))
		text[0] = '\0';
	fclose(f);
	for (const char *p = text; *p && j < 32; p++) {
		const char *hex = "0123456789abcdef", *d = strchr(hex, *p);

		if (!d || !*p)
			continue;
		id[j / 2] |= (uint8_t)(j % 2 ? d - hex : (d - hex) << 4);
		j++;
	}
}

static bool
owner_none(const struct ic_owner_rec *rec)
{
	static const uint8_t zero[16];

	return memcmp(rec->owner_id, zero, 16) == 0;
}

void
owner_describe(const struct ic_owner_rec *rec, char *buf, size_t cap)
{
	const char *space = strchr(rec->who, ' ');
	int prog = space ? (int)(space - rec->who) : (int)strlen(rec->who);
	char when[IC_TIME_STRLEN];

	ic_time_format(rec->acquired, when, sizeof(when));
	if (owner_none(rec))
		snprintf(buf, cap, "a process that holds its lock but has no record");
	else if (prog == 0)
		snprintf(buf, cap, "a process with pid %u since %s", rec->pid, when);
	else
		snprintf(buf, cap, "%.*s pid %u%s%s%s since %s", prog, rec->who, rec->pid,
			 space ? " (" : "", space ? space + 1 : "", space ? ")" : "", when);
}

int
owner_self(struct ic_store *store, pid_t pid, const char *who, const uint8_t *id,
	   struct ic_owner_rec *out)
{
	*out = (struct ic_owner_rec){ .pid = (uint32_t)pid, .acquired = (uint64_t)time(NULL) };
	if (id)
		memcpy(out->owner_id, id, 16);
	else if (ic_uuid_generate(out->owner_id))
		return -EIO;
	owner_boot_id(out->boot_id);
	out->start_time = pid ? owner_start_time(pid) : 0;
	snprintf(out->socket, sizeof(out->socket), "%s", control_socket(store));
	snprintf(out->who, sizeof(out->who), "%s", who);
	return 0;
}

static void
owner_claimed(struct owner_claim *out, const char *name, const struct ic_owner_rec *rec)
{
	snprintf(out->name, sizeof(out->name), "%s", name);
	memcpy(out->owner_id, rec->owner_id, 16);
	out->generation = rec->generation;
	snprintf(out->who, sizeof(out->who), "%s", rec->who);
}

/* Read name's record into *rec (all zero when there is none). */
static int
owner_read(struct ic_store *store, const char *name, struct ic_owner_rec *rec)
{
	struct ic_meta_txn *txn;
	int rc = ic_meta_begin(store->meta, false, &txn);

	if (rc)
		return rc;
	*rec = (struct ic_owner_rec){ 0 };
	rc = ic_meta_owner_get(txn, name, rec);
	ic_meta_abort(txn);
	return rc == -ENOENT ? 0 : rc;
}

/* With name's lock held on fd: any owner in the record is dead, so write
 * self (generation + 1); on success out holds the claim and fd. */
static int
owner_take(struct ic_store *store, const char *name, int fd, struct ic_owner_rec *self,
	   struct ic_owner_rec *seen, struct owner_claim *out)
{
	struct ic_meta_txn *txn;
	int rc = ic_meta_begin(store->meta, true, &txn);

	if (rc)
		return rc;
	*seen = (struct ic_owner_rec){ 0 };
	rc = ic_meta_owner_get(txn, name, seen);
	if (rc && rc != -ENOENT)
		goto fail;
	if (!owner_none(seen))
		ic_log(IC_LOG_WARN, "%s: previous owner %s (pid %u) is gone (its lock was free); "
		       "reclaiming", name, seen->who, seen->pid);
	self->generation = seen->generation + 1;
	self->acquired = (uint64_t)time(NULL);
	rc = ic_meta_owner_put(txn, name, self);
	if (rc)
		goto fail;
	rc = ic_meta_commit(txn);
	if (rc == 0) {
		owner_claimed(out, name, self);
		out->lock_fd = fd;
	}
	return rc;
fail:
	ic_meta_abort(txn);
	return rc;
}

/* Claim name as self unless a live process owns it: lock first, then the
 * record. -EBUSY and *seen when the lock is held. A holder whose record
 * is not written yet (it is between its lock and its CAS) is looked at
 * again for up to OWNER_RECORD_WAIT_MS, so that refusals can name it. */
static int
owner_try_claim(struct ic_store *store, const char *name, struct ic_owner_rec *self,
		struct ic_owner_rec *seen, struct owner_claim *out)
{
	long long until = vd_now_ms() + OWNER_RECORD_WAIT_MS;

	for (;;) {
		int fd = owner_lock_open(store);
		int rc = fd < 0 ? fd : owner_lock_take(fd, name);

		if (rc == 0)
			rc = owner_take(store, name, fd, self, seen, out);
		if (rc == 0)
			return 0;
		if (fd >= 0)
			close(fd);
		if (rc != -EAGAIN)
			return rc;
		rc = owner_read(store, name, seen);
		if (rc)
			return rc;
		if (!owner_none(seen) || vd_now_ms() >= until)
			return -EBUSY;
		usleep(1000);
	}
}

int
owner_transfer(struct ic_store *store, const struct owner_claim *claim,
	       const struct ic_owner_rec *to, uint64_t *generation)
{
	struct ic_owner_rec rec, next = *to;
	struct ic_meta_txn *txn;
	int rc = ic_meta_begin(store->meta, true, &txn);

	if (rc)
		return rc;
	rc = ic_meta_owner_get(txn, claim->name, &rec);
	if (rc == 0 && (rec.generation != claim->generation ||
			memcmp(rec.owner_id, claim->owner_id, 16) != 0))
		rc = -ESTALE;
	if (rc == -ENOENT)
		rc = -ESTALE;
	next.generation = claim->generation + 1;
	next.acquired = (uint64_t)time(NULL);
	if (rc == 0)
		rc = ic_meta_owner_put(txn, claim->name, &next);
	if (rc) {
		ic_meta_abort(txn);
		return rc;
	}
	rc = ic_meta_commit(txn);
	if (rc == 0)
		*generation = next.generation;
	return rc;
}

/* After a RELEASED reply: the old owner has fenced itself and drops its
 * lock right away. Take the lock (lock before record, as every claim),
 * check the record still names self at generation, and write our own pid
 * and start time into it when the old owner, from another PID namespace or
 * behind hidepid, could not describe us right. -EAGAIN: someone else got there first; look again. */
static int
owner_settle(struct ic_store *store, const char *name, struct ic_owner_rec *self,
	     uint64_t generation, long long deadline_ms, struct owner_claim *out)
{
	struct owner_claim got = { .lock_fd = owner_lock_open(store) };
	struct ic_owner_rec rec;
	int rc = got.lock_fd < 0 ? got.lock_fd : owner_lock_wait(got.lock_fd, name, deadline_ms);

	if (rc == 0)
		rc = owner_read(store, name, &rec);
	if (rc == 0 && (memcmp(rec.owner_id, self->owner_id, 16) || rec.generation != generation))
		rc = -EAGAIN;
	if (rc == 0)
		owner_claimed(&got, name, &rec);
	/* Same namespace and a readable /proc: the record is right already. */
	if (rc == 0 && (rec.pid != self->pid || rec.start_time != self->start_time))
		rc = owner_transfer(store, &got, self, &got.generation);
	if (rc) {
		owner_drop(&got);
		return rc == -ESTALE || rc == -ETIMEDOUT ? -EAGAIN : rc;
	}
	self->generation = got.generation;
	*out = got;
	return 0;
}

/* We gave up on a RELEASE (no answer in time, connection lost), but the
 * owner may have written us as owner just before: then it either fenced
 * itself (its answer went out) or tries to take the vdisk back (it did
 * not). Clearing the record by CAS settles both: whichever CAS comes
 * second fails, and nobody is left believing it writes. */
static void
owner_disown(struct ic_store *store, const char *name, const struct ic_owner_rec *self)
{
	struct owner_claim claim;
	struct ic_owner_rec rec;
	struct ic_meta_txn *txn;
	int rc = ic_meta_begin(store->meta, false, &txn);

	if (rc)
		return;
	rc = ic_meta_owner_get(txn, name, &rec);
	ic_meta_abort(txn);
	if (rc || memcmp(rec.owner_id, self->owner_id, 16) != 0)
		return;
	owner_claimed(&claim, name, &rec);
	claim.lock_fd = -1;
	ic_log(IC_LOG_WARN, "%s: the owner released it after we stopped waiting; freeing it",
	       name);
	owner_release(store, &claim);
}

/* Send RELEASE to the live owner seen. Returns 0 (released to self, out
 * filled), -EBUSY (denied; said holds why), -ETIMEDOUT (no answer), or
 * -EAGAIN (the owner is gone or not serving name: look again). */
static int
owner_ask(struct ic_store *store, const char *name, struct ic_owner_rec *self,
	  const struct ic_owner_rec *seen, unsigned timeout_ms, bool force, char *said,
	  size_t cap, struct owner_claim *out)
{
	IC_AUTOFREE uint8_t *buf = malloc(CTL_REPLY_BUF);
	struct ctl_msg req = { .type = CTL_RELEASE, .seq = (uint32_t)getpid() }, reply;
	int rc;

	if (!buf)
		return -ENOMEM;
	snprintf(req.release.name, sizeof(req.release.name), "%s", name);
	memcpy(req.release.owner_id, self->owner_id, 16);
	req.release.deadline_ms = timeout_ms;
	req.release.flags = force ? CTL_RELEASE_FORCE : 0;
	snprintf(req.release.who, sizeof(req.release.who), "%s", self->who);
	snprintf(req.release.reason, sizeof(req.release.reason), "%s",
		 force ? "forced takeover" : "open for writing");
	snprintf(req.release.socket, sizeof(req.release.socket), "%s", self->socket);
	rc = ctl_call(seen->socket, &req, timeout_ms, buf, &reply);
	if (rc) {
		owner_disown(store, name, self);
		if (rc == -ECONNREFUSED || rc == -ENOENT || rc == -ECONNRESET)
			return -EAGAIN;
		return rc == -ETIMEDOUT ? rc : -EAGAIN;
	}
	snprintf(said, cap, "%s", reply.reply.text);
	switch (reply.reply.result) {
	case CTL_RELEASED:
		return owner_settle(store, name, self, reply.reply.generation,
				    vd_now_ms() + timeout_ms, out);
	case CTL_DENIED:
		return -EBUSY;
	default:
		return reply.reply.status == -ETIMEDOUT ? -ETIMEDOUT : -EAGAIN;
	}
}

static void
owner_refusal(const char *name, const struct ic_owner_rec *seen, int rc, unsigned timeout_ms,
	      const char *said, enum ic_takeover how)
{
	char desc[256];

	owner_describe(seen, desc, sizeof(desc));
	if (how == IC_TAKEOVER_NEVER)
		ic_log(IC_LOG_ERR, "%s is in use: owned by %s; use --force to take it from that "
		       "process (its clients then get errors)", name, desc);
	else if (!seen->socket[0])
		ic_log(IC_LOG_ERR, "%s is owned by %s, which cannot be asked to release it; "
		       "use --force to take it over", name, desc);
	else if (rc == -ETIMEDOUT)
		ic_log(IC_LOG_ERR, "%s is owned by %s; it did not answer a release request within "
		       "%u s; use --force to take it over", name, desc, (timeout_ms + 999) / 1000);
	else if (!said[0])
		ic_log(IC_LOG_ERR, "%s is owned by %s; its control socket %s hung up without an "
		       "answer (only its own uid or root may ask it)", name, desc, seen->socket);
	else
		ic_log(IC_LOG_ERR, "%s is owned by %s; it denied the release: %s", name, desc,
		       said);
}

/* The owner was killed: its lock must now be free (the kernel drops it as
 * the process exits). Still held means the process behind the socket was
 * not the only holder (a child kept the descriptor, or the socket was
 * another process's): refuse rather than claim beside a writer. */
static int
owner_after_kill(struct ic_store *store, const char *name, const struct ic_owner_rec *seen)
{
	long long until = vd_now_ms() + OWNER_UNLOCK_WAIT_MS;
	char desc[256];
	int rc;

	while ((rc = owner_lock_held(store, name)) == 1 && vd_now_ms() < until)
		usleep(1000);
	if (rc <= 0)
		return rc;
	owner_describe(seen, desc, sizeof(desc));
	ic_log(IC_LOG_ERR, "%s: its lock is still held after %s was killed: that process was not "
	       "the lock holder; not taking it over", name, desc);
	return -EBUSY;
}

int
owner_acquire(struct ic_store *store, const char *name, const char *who, unsigned timeout_ms,
	      enum ic_takeover how, char *said, size_t cap, struct owner_claim *out)
{
	struct ic_owner_rec self, seen;
	char answer[256] = "";
	bool force = how == IC_TAKEOVER_FORCE;
	int rc = owner_self(store, getpid(), who, NULL, &self);

	out->lock_fd = -1;
	if (timeout_ms == 0)
		timeout_ms = IC_RELEASE_TIMEOUT_MS;
	for (int attempt = 0; rc == 0 && attempt < OWNER_ATTEMPTS; attempt++) {
		long long t0 = vd_now_ms();

		rc = owner_try_claim(store, name, &self, &seen, out);
		if (rc != -EBUSY || how == IC_TAKEOVER_NEVER)
			break;
		rc = seen.socket[0] ? owner_ask(store, name, &self, &seen, timeout_ms, force,
						answer, sizeof(answer), out)
				    : -ETIMEDOUT;
		if (said && answer[0])
			snprintf(said, cap, "%s", answer);
		if (rc == 0) {
			ic_log(IC_LOG_INFO, "%s: released to us by %s (pid %u) in %lld ms", name,
			       seen.who, seen.pid, vd_now_ms() - t0);
			return 0;
		}
		/* With force, a denial means the owner could not quiesce in time:
		 * as good as no answer. */
		if ((rc == -ETIMEDOUT || rc == -EBUSY) && force) {
			rc = owner_kill(name, &seen, "it did not release on a forced request");
			if (rc == 0)
				rc = owner_after_kill(store, name, &seen);
			if (rc)
				return rc; /* owner_kill and owner_after_kill said why */
		} else if (rc == -EAGAIN) { /* the owner changed under us: look again */
			usleep(50000);
			rc = 0;
		}
	}
	if (rc == 0 && out->lock_fd >= 0)
		return 0;
	if (rc == 0) /* attempts exhausted: the owner kept changing */
		rc = -EBUSY;
	if (rc == -EBUSY || rc == -ETIMEDOUT) {
		owner_refusal(name, &seen, rc, timeout_ms, answer, how);
		rc = -EBUSY;
	}
	return rc;
}

int
owner_claim(struct ic_store *store, const char *name, const char *who, struct owner_claim *out)
{
	return owner_acquire(store, name, who, store->handoff_ms, store->takeover, NULL, 0, out);
}

int
owner_check(struct ic_meta_txn *txn, const struct owner_claim *claim)
{
	struct ic_owner_rec rec;
	int rc = ic_meta_owner_get(txn, claim->name, &rec);

	if (rc == 0 && rec.generation == claim->generation &&
	    memcmp(rec.owner_id, claim->owner_id, 16) == 0)
		return 0;
	ic_log(IC_LOG_ERR, "%s: ownership was taken over by %s; not writing", claim->name,
	       rc == 0 && rec.who[0] ? rec.who : "another process");
	return -ESTALE;
}

void
owner_release(struct ic_store *store, struct owner_claim *claim)
{
	struct ic_owner_rec none = { 0 };
	uint64_t generation;

	owner_transfer(store, claim, &none, &generation);
	owner_drop(claim);
}

static int
owner_info(struct ic_store *store, struct ic_meta_txn *txn, const char *name,
	   struct ic_owner_info *out)
{
	int rc = ic_meta_owner_get(txn, name, &out->rec);

	if (rc == -ENOENT) {
		out->rec = (struct ic_owner_rec){ 0 };
		rc = 0;
	}
	out->alive = rc == 0 && owner_lock_held(store, name) == 1;
	out->policy[0] = '\0';
	return rc;
}

/* The record of vdisk name, quietly; -ENOENT when there is no such vdisk. */
static int
owner_lookup(struct ic_store *store, const char *name, struct ic_owner_info *out)
{
	struct ic_meta_txn *txn;
	uint64_t id;
	int rc = ic_meta_begin(store->meta, false, &txn);

	if (rc)
		return rc;
	rc = strchr(name, '@') ? -ENOENT : ic_meta_name_get(txn, name, &id);
	if (rc == 0)
		rc = owner_info(store, txn, name, out);
	ic_meta_abort(txn);
	return rc;
}

int
owner_remote_snapshot(struct ic_store *store, const char *name, const char *image)
{
	IC_AUTOFREE uint8_t *buf = NULL;
	struct ctl_msg req = { .type = CTL_SNAPSHOT, .seq = 1 }, reply;
	struct ic_owner_info info;
	int rc = owner_lookup(store, name, &info);

	if (rc || !info.alive || !info.rec.socket[0])
		return 1; /* errors are reported by the local path */
	buf = malloc(CTL_REPLY_BUF);
	if (!buf)
		return -ENOMEM;
	snprintf(req.snapshot.image, sizeof(req.snapshot.image), "%s", image);
	rc = ctl_call(info.rec.socket, &req, IC_RELEASE_TIMEOUT_MS * 6, buf, &reply);
	if (rc == -ECONNREFUSED || rc == -ENOENT)
		return 1; /* it exited meanwhile */
	if (rc) {
		ic_log(IC_LOG_ERR, "%s: the owner (pid %u) did not take the snapshot: %s", name,
		       info.rec.pid, strerror(-rc));
		return rc;
	}
	if (reply.reply.status)
		ic_log(IC_LOG_ERR, "%s: the owner (pid %u) could not take the snapshot: %s", name,
		       info.rec.pid, reply.reply.text);
	else
		ic_log(IC_LOG_INFO, "%s: taken live by the owner (pid %u)", image, info.rec.pid);
	return reply.reply.status;
}

/* ---- the public ownership API (isocache-admin owner) ---- */

/* The owner's policy, from its STATS answer ("policy":"when-idle"); left
 * empty, quietly, when the owner does not answer promptly. */
static void
owner_policy(struct ic_owner_info *info)
{
	IC_AUTOFREE uint8_t *buf = NULL;
	struct ctl_msg req = { .type = CTL_STATS, .seq = 1 }, reply;
	struct json_object *stats, *policy;

	if (!info->alive || !info->rec.socket[0] || !(buf = malloc(CTL_REPLY_BUF)) ||
	    ctl_call(info->rec.socket, &req, OWNER_POLICY_WAIT_MS, buf, &reply) ||
	    reply.reply.status)
		return;
	stats = json_tokener_parse(reply.reply.text);
	if (json_object_object_get_ex(stats, "policy", &policy) &&
	    json_object_is_type(policy, json_type_string))
		snprintf(info->policy, sizeof(info->policy), "%s", json_object_get_string(policy));
	json_object_put(stats);
}

/* owner_lookup, saying so when there is no such vdisk. */
static int
owner_find(struct ic_store *store, const char *name, struct ic_owner_info *out)
{
	int rc = owner_lookup(store, name, out);

	if (rc == -ENOENT)
		ic_log(IC_LOG_ERR, "%s: no such vdisk in %s", name, store->dir);
	return rc;
}

int
ic_owner_show(struct ic_store *store, const char *name, struct ic_owner_info *out)
{
	int rc = owner_find(store, name, out);

	if (rc == 0)
		owner_policy(out);
	return rc;
}

struct owner_list_ctx {
	struct ic_meta_txn *txn;
	char (*names)[IC_NAME_MAX + 1];
	size_t n;
};

static int
owner_list_one(void *arg, const char *name, uint64_t id)
{
	struct owner_list_ctx *c = arg;
	void *grown;

	(void)id;
	if (strchr(name, '@') || strlen(name) > IC_NAME_MAX)
		return 0;
	grown = realloc(c->names, (c->n + 1) * sizeof(*c->names));
	if (!grown)
		return -ENOMEM;
	c->names = grown;
	snprintf(c->names[c->n++], IC_NAME_MAX + 1, "%s", name);
	return 0;
}

int
ic_owner_list(struct ic_store *store,
	      int (*fn)(void *arg, const char *name, const struct ic_owner_info *info), void *arg)
{
	struct owner_list_ctx c = { 0 };
	int rc = ic_meta_begin(store->meta, false, &c.txn);

	if (rc)
		return rc;
	rc = ic_meta_name_foreach(c.txn, owner_list_one, &c);
	ic_meta_abort(c.txn);
	/* Ask each live owner its policy outside any transaction. */
	for (size_t i = 0; rc == 0 && i < c.n; i++) {
		struct ic_owner_info info;

		rc = ic_owner_show(store, c.names[i], &info);
		if (rc == 0)
			rc = fn(arg, c.names[i], &info);
	}
	free(c.names);
	return rc;
}

int
ic_owner_release(struct ic_store *store, const char *name, unsigned timeout_ms, char *said,
		 size_t cap)
{
	struct owner_claim claim;
	struct ic_owner_info info;
	int rc = owner_find(store, name, &info);

	if (rc)
		return rc;
	snprintf(said, cap, "%s", info.alive ? "released" : "nobody owned it");
	rc = owner_acquire(store, name, "isocache-admin owner release", timeout_ms, IC_TAKEOVER_ASK, said,
			   cap, &claim);
	if (rc == 0)
		owner_release(store, &claim);
	return rc;
}

int
ic_owner_takeover(struct ic_store *store, const char *name, unsigned timeout_ms)
{
	struct owner_claim claim;
	struct ic_owner_info info;
	int rc = owner_find(store, name, &info);

	if (rc == 0)
		rc = owner_acquire(store, name, "isocache-admin owner takeover", timeout_ms, IC_TAKEOVER_FORCE,
				   NULL, 0, &claim);
	if (rc == 0)
		owner_release(store, &claim);
	return rc;
}

void
ic_owner_set_timeout(struct ic_store *store, unsigned timeout_ms)
{
	store->handoff_ms = timeout_ms;
}

void
ic_owner_set_takeover(struct ic_store *store, enum ic_takeover how)
{
	store->takeover = how;
}
