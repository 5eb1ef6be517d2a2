/* The ownership record of a vdisk in the metadata file (docs/OWNERSHIP.md):
 * owner id and generation, changed only by compare-and-swap inside one
 * LMDB write transaction; pid, start time, boot id and who are there for
 * people, never as evidence of life or death (lock.c is that). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timefmt.h"
#include "common/uuid.h"
#include "owner/internal.h"


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

bool
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
owner_self(pid_t pid, const char *who, const uint8_t *id, const char *socket,
	   struct ic_owner_rec *out)
{
	*out = (struct ic_owner_rec){ .pid = (uint32_t)pid, .acquired = (uint64_t)time(NULL) };
	if (id)
		memcpy(out->owner_id, id, 16);
	else if (ic_uuid_generate(out->owner_id))
		return -EIO;
	owner_boot_id(out->boot_id);
	out->start_time = pid ? owner_start_time(pid) : 0;
	snprintf(out->socket, sizeof(out->socket), "%s", socket);
	snprintf(out->who, sizeof(out->who), "%s", who);
	return 0;
}

void
owner_claimed(struct owner_claim *out, const char *name, const struct ic_owner_rec *rec)
{
	snprintf(out->name, sizeof(out->name), "%s", name);
	memcpy(out->owner_id, rec->owner_id, 16);
	out->generation = rec->generation;
	snprintf(out->who, sizeof(out->who), "%s", rec->who);
}

/* Read name's record into *rec (all zero when there is none). */
int
owner_read(struct owner_store *os, const char *name, struct ic_owner_rec *rec)
{
	struct ic_meta_txn *txn;
	int rc = ic_meta_begin(os->meta, false, &txn);

	if (rc)
		return rc;
	*rec = (struct ic_owner_rec){ 0 };
	rc = ic_meta_owner_get(txn, name, rec);
	ic_meta_abort(txn);
	return rc == -ENOENT ? 0 : rc;
}

int
owner_transfer(struct owner_store *os, const struct owner_claim *claim,
	       const struct ic_owner_rec *to, uint64_t *generation)
{
	struct ic_owner_rec rec, next = *to;
	struct ic_meta_txn *txn;
	int rc = ic_meta_begin(os->meta, true, &txn);

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

int
owner_check(struct ic_meta_txn *txn, const struct owner_claim *claim)
{
	struct ic_owner_rec rec;
	int rc;

	/* Across hosts the record in etcd must still be the one we wrote. */
	if (claim->lease)
		return owner_lease_check(claim->lease, txn);
	rc = ic_meta_owner_get(txn, claim->name, &rec);
	if (rc == 0 && rec.generation == claim->generation &&
	    memcmp(rec.owner_id, claim->owner_id, 16) == 0)
		return 0;
	ic_log(IC_LOG_ERR, "%s: ownership was taken over by %s; not writing", claim->name,
	       rc == 0 && rec.who[0] ? rec.who : "another process");
	return -ESTALE;
}

int
owner_release(struct owner_store *os, struct owner_claim *claim)
{
	struct ic_owner_rec none = { 0 };
	uint64_t generation;
	int rc = 0;

	/* A record left behind in etcd goes with its lease, revoked here or
	 * expiring within the TTL: only a local record can stay. */
	if (claim->lease) {
		owner_fence(claim, "released");
		owner_lease_release(claim->lease);
	} else {
		rc = owner_transfer(os, claim, &none, &generation);
	}
	owner_drop(claim);
	if (rc == -ESTALE)
		return 0; /* taken over: the record is another's now */
	if (rc)
		ic_log(IC_LOG_ERR, "%s: could not clear its ownership record (%s); it names a "
		       "process that no longer holds the vdisk, and the next claim takes it over",
		       claim->name, strerror(-rc));
	return rc;
}

int
owner_release_after(struct owner_store *os, struct owner_claim *claim, int rc)
{
	int released = owner_release(os, claim);

	return rc ? rc : released;
}
