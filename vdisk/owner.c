/* The plain exclusive claim of a vdisk (DESIGN.md §6, steps 1-2): a writer
 * records itself as owner in the metadata file; a live owner makes a second
 * writer fail with -EBUSY naming it. The collaborative release protocol
 * builds on this record. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/uuid.h"
#include "vdisk/internal.h"

/* Start time of pid in clock ticks since boot (field 22 of /proc/PID/stat),
 * or 0 if the process does not exist. */
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

/* An owner is alive when it runs on this boot with the same pid and start time. */
static bool
owner_alive(const struct ic_owner_rec *rec)
{
	uint8_t boot[16];

	if (owner_none(rec))
		return false;
	owner_boot_id(boot);
	if (memcmp(boot, rec->boot_id, 16) != 0)
		return false;
	return rec->pid && owner_start_time((pid_t)rec->pid) == rec->start_time;
}

int
owner_claim(struct ic_store *store, const char *name, const char *who, struct owner_claim *out)
{
	struct ic_owner_rec rec = { 0 };
	struct ic_meta_txn *txn;
	int rc = ic_meta_begin(store->meta, true, &txn);

	if (rc)
		return rc;
	rc = ic_meta_owner_get(txn, name, &rec);
	if (rc && rc != -ENOENT)
		goto fail;
	if (owner_alive(&rec)) {
		char when[32];
		time_t t = (time_t)rec.acquired;

		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
		ic_log(IC_LOG_ERR, "%s is owned by %s (pid %u) since %s", name,
		       rec.who[0] ? rec.who : "another process", rec.pid, when);
		rc = -EBUSY;
		goto fail;
	}
	if (!owner_none(&rec))
		ic_log(IC_LOG_INFO, "%s: previous owner %s (pid %u) is gone; reclaiming", name,
		       rec.who, rec.pid);
	rc = ic_uuid_generate(rec.owner_id);
	if (rc)
		goto fail;
	owner_boot_id(rec.boot_id);
	rec.pid = (uint32_t)getpid();
	rec.start_time = owner_start_time(getpid());
	rec.acquired = (uint64_t)time(NULL);
	rec.generation++;
	rec.socket[0] = '\0';
	snprintf(rec.who, sizeof(rec.who), "%s", who);
	rc = ic_meta_owner_put(txn, name, &rec);
	if (rc)
		goto fail;
	rc = ic_meta_commit(txn);
	if (rc)
		return rc;
	snprintf(out->name, sizeof(out->name), "%s", name);
	memcpy(out->owner_id, rec.owner_id, 16);
	out->generation = rec.generation;
	return 0;
fail:
	ic_meta_abort(txn);
	return rc;
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
owner_release(struct ic_store *store, const struct owner_claim *claim)
{
	struct ic_owner_rec rec;
	struct ic_meta_txn *txn;

	if (ic_meta_begin(store->meta, true, &txn))
		return;
	if (ic_meta_owner_get(txn, claim->name, &rec) == 0 &&
	    rec.generation == claim->generation && memcmp(rec.owner_id, claim->owner_id, 16) == 0) {
		memset(rec.owner_id, 0, 16);
		rec.pid = 0;
		rec.generation++;
		if (ic_meta_owner_put(txn, claim->name, &rec) == 0) {
			ic_meta_commit(txn);
			return;
		}
	}
	ic_meta_abort(txn);
}
