/* The L2 tier: a local cache file of 4 KiB slots behind the RAM store.
 *
 * Layout (docs/CACHED.md): two index regions A and B, each a 4 KiB header
 * and the slot index, then the slots. An index entry names the layer
 * identity (cached_l2_ident: uuid, device, inode, size, mtime and ctime),
 * the block, and the XXH3 of the slot's data seeded with the hash of both,
 * so a slot is only ever returned for the (file generation, block) whose
 * bytes it holds: a stale or torn index, a corrupted slot or a replaced
 * file all end as a checksum mismatch or no match, that is a miss.
 *
 * Slots are written in FIFO order by one hand (docs/CACHED.md says why):
 * a backing fill is copied into a staging buffer and written at the hand
 * with one O_DIRECT write; its entries enter the index when the write
 * completes. The index is persisted by writing a whole region (header
 * and index, both checksummed) over the region the current one is not:
 * a crash mid-write leaves the older region valid. Everything at run time goes
 * through l2->write (the loop's ring); only open and close use pread and
 * pwrite, before and after the loop.
 */
#include "cached/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/log.h"

#define L2_MAGIC 0x31584449324c4349ull /* "ICL2IDX1" in memory order */
#define L2_VERSION 1
#define L2_HDR 4096u

struct l2_header {
	uint64_t magic;
	uint32_t version;
	uint32_t nslots;
	uint64_t seq;
	uint32_t hand;
	uint32_t pad;
	uint64_t secret;
	uint64_t index_sum;
	uint64_t sum; /* XXH3 of the fields above */
};

/* The hash of (identity, block): the table's bucket and the data's seed. */
static uint64_t
l2_key(uint64_t ident, uint64_t block)
{
	uint64_t key[2] = { ident, block };

	return XXH3_64bits(key, sizeof(key));
}

/* Seeded with the file's secret: anyone can choose a file's uuid, size
 * and mtime, so with a public hash a user could craft a file whose
 * identity collides with a layer they cannot read, register it, and be
 * served that layer's L2 blocks. The secret lives in the 0600 L2 file. */
uint64_t
cached_l2_ident(const struct cached_l2 *l2, const uint8_t uuid[16], const struct stat *sb)
{
	struct {
		uint8_t uuid[16];
		uint64_t dev, ino, size, mtime_s, mtime_ns, ctime_s, ctime_ns;
	} id = {
		.dev = sb->st_dev,
		.ino = sb->st_ino,
		.size = (uint64_t)sb->st_size,
		.mtime_s = (uint64_t)sb->st_mtim.tv_sec,
		.mtime_ns = (uint64_t)sb->st_mtim.tv_nsec,
		.ctime_s = (uint64_t)sb->st_ctim.tv_sec,
		.ctime_ns = (uint64_t)sb->st_ctim.tv_nsec,
	};
	uint64_t h;

	memcpy(id.uuid, uuid, 16);
	h = XXH3_64bits_withSeed(&id, sizeof(id), l2 ? l2->secret : 0);
	return h ? h : 1; /* 0 marks an empty slot */
}

uint32_t
cached_l2_lookup(const struct cached_l2 *l2, uint64_t ident, uint64_t block)
{
	uint32_t i;

	if (!l2)
		return CACHED_NIL;
	i = l2->buckets[l2_key(ident, block) & l2->bucket_mask];
	while (i != CACHED_NIL && (l2->slots[i].ident != ident || l2->slots[i].block != block))
		i = l2->hnext[i];
	return i;
}

static void
l2_hash(struct cached_l2 *l2, uint32_t i)
{
	uint32_t *b = &l2->buckets[l2_key(l2->slots[i].ident, l2->slots[i].block) & l2->bucket_mask];

	l2->hnext[i] = *b;
	*b = i;
	l2->used++;
}

/* Move n slots of accounting slot uid in or out of its L2 charge. */
static void
l2_charge(struct cached_l2 *l2, uint16_t uid, int64_t n)
{
	if (l2->uids && uid != CACHED_NO_UID)
		l2->uids[uid].l2_used += (uint64_t)n;
}

/* Empty slot i (if it holds an entry) and take it out of the table. */
static bool
l2_forget(struct cached_l2 *l2, uint32_t i)
{
	struct cached_l2_entry *e = &l2->slots[i];
	uint32_t *p;

	if (!e->ident)
		return false;
	l2_charge(l2, l2->owner[i], -1);
	l2->owner[i] = CACHED_NO_UID;
	p = &l2->buckets[l2_key(e->ident, e->block) & l2->bucket_mask];
	while (*p != i)
		p = &l2->hnext[*p];
	*p = l2->hnext[i];
	memset(e, 0, sizeof(*e));
	l2->used--;
	l2->dirty = true;
	return true;
}

/* Region r's image in l2->snap: header, then the index of the slots. */
static void
l2_image(struct cached_l2 *l2, uint64_t seq)
{
	struct l2_header *h = (struct l2_header *)l2->snap;
	size_t len = (size_t)l2->nslots * sizeof(*l2->slots);

	memset(l2->snap, 0, L2_HDR);
	memcpy(l2->snap + L2_HDR, l2->slots, len);
	*h = (struct l2_header){
		.magic = L2_MAGIC,
		.version = L2_VERSION,
		.nslots = l2->nslots,
		.seq = seq,
		.hand = l2->hand,
		.secret = l2->secret,
		.index_sum = XXH3_64bits(l2->snap + L2_HDR, len),
	};
	h->sum = XXH3_64bits(h, offsetof(struct l2_header, sum));
}

/* Is l2->snap a valid image of this file's geometry? */
static bool
l2_image_valid(const struct cached_l2 *l2)
{
	const struct l2_header *h = (const struct l2_header *)l2->snap;

	return h->magic == L2_MAGIC && h->version == L2_VERSION && h->nslots == l2->nslots &&
	       h->hand < l2->nslots && h->sum == XXH3_64bits(h, offsetof(struct l2_header, sum)) &&
	       h->index_sum ==
		       XXH3_64bits(l2->snap + L2_HDR, (size_t)l2->nslots * sizeof(*l2->slots));
}

/* Load the newer valid region, if any; without one the tier starts empty,
 * under a new secret. */
static int
l2_load(struct cached_l2 *l2)
{
	const struct l2_header *h = (const struct l2_header *)l2->snap;
	bool found = false;

	for (uint64_t r = 0; r < 2; r++) {
		ssize_t n = pread(l2->fd, l2->snap, l2->region_size, (off_t)(r * l2->region_size));

		if (n != (ssize_t)l2->region_size || !l2_image_valid(l2) || (found && h->seq < l2->seq))
			continue;
		found = true;
		l2->seq = h->seq;
		l2->hand = h->hand;
		l2->secret = h->secret;
		memcpy(l2->slots, l2->snap + L2_HDR, (size_t)l2->nslots * sizeof(*l2->slots));
	}
	if (!found && getrandom(&l2->secret, sizeof(l2->secret), 0) != sizeof(l2->secret))
		return -errno;
	for (uint32_t i = 0; i < l2->nslots; i++)
		if (l2->slots[i].ident)
			l2_hash(l2, i);
	l2->dirty = false;
	return 0;
}

static int
l2_alloc(struct cached_l2 *l2)
{
	size_t wsize = (size_t)CACHED_L2_WRITES * CACHED_FILL_MAX * IC_CACHED_BLOCK;
	uint32_t nb = 1;

	while (nb < l2->nslots)
		nb <<= 1;
	l2->bucket_mask = nb - 1;
	l2->slots = calloc(l2->nslots, sizeof(*l2->slots));
	l2->owner = malloc((size_t)l2->nslots * sizeof(*l2->owner));
	l2->hnext = malloc((size_t)l2->nslots * sizeof(*l2->hnext));
	l2->buckets = malloc((size_t)nb * sizeof(*l2->buckets));
	l2->snap = aligned_alloc(IC_CACHED_BLOCK, l2->region_size);
	l2->wbuf = aligned_alloc(IC_CACHED_BLOCK, wsize);
	l2->writes = calloc(CACHED_L2_WRITES, sizeof(*l2->writes));
	if (!l2->slots || !l2->owner || !l2->hnext || !l2->buckets || !l2->snap || !l2->wbuf || !l2->writes)
		return -ENOMEM;
	memset(l2->buckets, 0xff, (size_t)nb * sizeof(*l2->buckets));
	for (uint32_t i = 0; i < l2->nslots; i++)
		l2->owner[i] = CACHED_NO_UID;
	memset(l2->snap, 0, l2->region_size); /* the index's padding is written too */
	for (uint32_t i = 0; i < CACHED_L2_WRITES; i++) {
		l2->writes[i].l2 = l2;
		l2->writes[i].buf = l2->wbuf + (size_t)i * CACHED_FILL_MAX * IC_CACHED_BLOCK;
		l2->writes[i].next_free = i + 1 < CACHED_L2_WRITES ? i + 1 : CACHED_NIL;
	}
	l2->write_free = 0;
	return 0;
}

int
cached_l2_open(struct cached_l2 *l2, const char *path, uint64_t size)
{
	uint64_t nslots = size >> IC_CACHED_BLOCK_SHIFT, fsize;
	struct stat sb;
	int rc;

	memset(l2, 0, sizeof(*l2));
	l2->fd = -1;
	if (nslots < CACHED_L2_MIN_SLOTS || nslots > UINT32_MAX / 2)
		return -ERANGE;
	l2->nslots = (uint32_t)nslots;
	l2->region_size = (L2_HDR + nslots * sizeof(struct cached_l2_entry) + IC_CACHED_BLOCK - 1) &
			  ~(uint64_t)(IC_CACHED_BLOCK - 1);
	l2->data_off = 2 * l2->region_size;
	l2->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_DIRECT, 0600);
	if (l2->fd < 0 && errno == EINVAL) {
		ic_log(IC_LOG_WARN, "L2 %s: no O_DIRECT on this filesystem, using the page cache",
		       path);
		l2->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	}
	if (l2->fd < 0 || fstat(l2->fd, &sb) < 0) {
		rc = -errno;
		goto err;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = -EINVAL;
		goto err;
	}
	/* The header holds the identity secret: no one else may read it. */
	if ((sb.st_mode & 077) && fchmod(l2->fd, 0600) < 0) {
		rc = -errno;
		goto err;
	}
	fsize = l2->data_off + (nslots << IC_CACHED_BLOCK_SHIFT);
	if ((uint64_t)sb.st_size != fsize && ftruncate(l2->fd, (off_t)fsize) < 0) {
		rc = -errno;
		goto err;
	}
	/* Allocated up front: an O_DIRECT write into a hole allocates on the
	 * data path, which is slow and can fail with ENOSPC. */
	rc = fallocate(l2->fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)fsize);
	if (rc < 0 && errno != EOPNOTSUPP) {
		rc = -errno;
		goto err;
	}
	rc = l2_alloc(l2);
	if (rc == 0)
		rc = l2_load(l2);
	if (rc < 0)
		goto err;
	return 0;
err:
	cached_l2_close(l2);
	return rc;
}

void
cached_l2_close(struct cached_l2 *l2)
{
	if (l2->fd >= 0 && l2->snap && l2->dirty && !l2->syncing) {
		l2_image(l2, l2->seq + 1);
		if (pwrite(l2->fd, l2->snap, l2->region_size,
			   (off_t)(((l2->seq + 1) & 1) * l2->region_size)) !=
			    (ssize_t)l2->region_size ||
		    fdatasync(l2->fd) < 0)
			ic_log(IC_LOG_WARN, "L2 index not saved: %s", strerror(errno));
	}
	if (l2->fd >= 0)
		close(l2->fd);
	free(l2->slots);
	free(l2->owner);
	free(l2->hnext);
	free(l2->buckets);
	free(l2->snap);
	free(l2->wbuf);
	free(l2->writes);
	memset(l2, 0, sizeof(*l2));
	l2->fd = -1;
}

bool
cached_l2_check(struct cached_l2 *l2, uint32_t slot, struct cached_layer *l, uint64_t block,
		const uint8_t *data)
{
	const struct cached_l2_entry *e = &l2->slots[slot];

	/* Rewritten while the read was in flight: a miss, not a fault. */
	if (e->ident != l->l2_ident || e->block != block)
		return false;
	if (data && XXH3_64bits_withSeed(data, IC_CACHED_BLOCK, l2_key(e->ident, block)) == e->sum) {
		l->stats[IC_CACHED_STAT_L2_HITS]++;
		return true;
	}
	if (data) {
		/* After a crash a stale index can name thousands: warn once. */
		l->stats[IC_CACHED_STAT_L2_CSUM_FAILS]++;
		ic_log(l2->csum_warned ? IC_LOG_DEBUG : IC_LOG_WARN,
		       "L2 slot %u (block %llu): checksum mismatch, dropped%s", slot,
		       (unsigned long long)block,
		       l2->csum_warned ? "" : " (further ones: the l2_csum_fails counter)");
		l2->csum_warned = true;
	}
	l2_forget(l2, slot);
	return false;
}

static void l2_on_write(struct ic_op *op, int res);

static int
l2_write_issue(struct cached_l2_write *w)
{
	struct cached_l2 *l2 = w->l2;

	w->op.done = l2_on_write;
	return l2->write(l2, &w->op, w->buf + w->done_bytes,
			 ((size_t)w->nblocks << IC_CACHED_BLOCK_SHIFT) - w->done_bytes,
			 cached_l2_offset(l2, w->slot) + w->done_bytes);
}

static void
l2_on_write(struct ic_op *op, int res)
{
	struct cached_l2_write *w = cached_container_of(op, struct cached_l2_write, op);
	struct cached_l2 *l2 = w->l2;
	uint32_t len = w->nblocks << IC_CACHED_BLOCK_SHIFT;

	if (res > 0)
		w->done_bytes += (uint32_t)res;
	if ((res > 0 && w->done_bytes < len) || res == -EAGAIN || res == -EINTR) {
		res = l2_write_issue(w);
		if (res == 0)
			return;
	}
	if (w->done_bytes == len) {
		for (uint32_t k = 0; k < w->nblocks; k++) {
			l2->slots[w->slot + k] = w->e[k];
			l2->owner[w->slot + k] = w->uid;
			l2_hash(l2, w->slot + k);
		}
		w->layer->stats[IC_CACHED_STAT_L2_BYTES_WRITTEN] += len;
		l2->dirty = true;
	} else {
		ic_log(IC_LOG_WARN, "L2 write of %u slots at %u: %s", w->nblocks, w->slot,
		       res < 0 ? strerror(-res) : "short write");
		l2_charge(l2, w->uid, -(int64_t)w->nblocks);
	}
	w->next_free = l2->write_free;
	l2->write_free = (uint32_t)(w - l2->writes);
}

/* A uid's quota holds in each tier: its slots count from the put until
 * they are overwritten or dropped, writes in flight included, so a burst
 * of fills cannot pass it either. */
void
cached_l2_put(struct cached_l2 *l2, struct cached_layer *l, uint64_t block, uint32_t n,
	      uint8_t *const *data, uint16_t uid)
{
	struct cached_l2_write *w;

	/* Best effort: with every staging buffer busy the blocks stay in L1 only. */
	if (!l2 || l2->write_free == CACHED_NIL)
		return;
	if (l2->uids && l2->uids[uid].capped && l2->uids[uid].l2_used + n > l2->uids[uid].quota)
		return;
	w = &l2->writes[l2->write_free];
	l2->write_free = w->next_free;
	if (l2->hand + n > l2->nslots)
		l2->hand = 0;
	w->slot = l2->hand;
	w->nblocks = n;
	w->done_bytes = 0;
	w->layer = l;
	w->uid = uid;
	l2->hand = (l2->hand + n) % l2->nslots;
	for (uint32_t k = 0; k < n; k++) {
		uint8_t *buf = w->buf + ((size_t)k << IC_CACHED_BLOCK_SHIFT);
		uint32_t old = cached_l2_lookup(l2, l->l2_ident, block + k);

		l2->evictions += l2_forget(l2, w->slot + k);
		if (old != CACHED_NIL)
			l2_forget(l2, old);
		memcpy(buf, data[k], IC_CACHED_BLOCK);
		w->e[k] = (struct cached_l2_entry){
			.ident = l->l2_ident,
			.block = block + k,
			.sum = XXH3_64bits_withSeed(buf, IC_CACHED_BLOCK, l2_key(l->l2_ident, block + k)),
		};
	}
	l2_charge(l2, uid, n);
	if (l2_write_issue(w) < 0) {
		l2_charge(l2, uid, -(int64_t)n);
		w->next_free = l2->write_free;
		l2->write_free = (uint32_t)(w - l2->writes);
	}
}

/* Whichever is fewer: a lookup per block of the layer, or a walk of the
 * slots. */
uint64_t
cached_l2_drop_layer(struct cached_l2 *l2, const struct cached_layer *l)
{
	uint64_t n = 0;

	if (!l2)
		return 0;
	if (l->nblocks < l2->nslots) {
		for (uint64_t b = 0; b < l->nblocks; b++) {
			uint32_t i = cached_l2_lookup(l2, l->l2_ident, b);

			if (i != CACHED_NIL)
				n += l2_forget(l2, i);
		}
		return n;
	}
	for (uint32_t i = 0; i < l2->nslots; i++)
		if (l2->slots[i].ident == l->l2_ident)
			n += l2_forget(l2, i);
	return n;
}

static void
l2_on_sync(struct ic_op *op, int res)
{
	struct cached_l2 *l2 = cached_container_of(op, struct cached_l2, sync_op);

	l2->syncing = false;
	if (res == (int)l2->region_size) {
		l2->seq++;
		return;
	}
	/* The region written is torn; the other still holds the previous index. */
	ic_log(IC_LOG_WARN, "L2 index write: %s", res < 0 ? strerror(-res) : "short write");
	l2->dirty = true;
}

int
cached_l2_sync(struct cached_l2 *l2)
{
	int rc;

	if (!l2 || !l2->dirty || l2->syncing)
		return 0;
	l2_image(l2, l2->seq + 1);
	l2->sync_op.done = l2_on_sync;
	l2->dirty = false;
	l2->syncing = true;
	rc = l2->write(l2, &l2->sync_op, l2->snap, l2->region_size,
		       ((l2->seq + 1) & 1) * l2->region_size);
	if (rc < 0) {
		l2->dirty = true;
		l2->syncing = false;
	}
	return rc;
}

void
cached_l2_totals(const struct cached_l2 *l2, uint64_t out[IC_CACHED_STAT_COUNT])
{
	if (!l2)
		return;
	out[IC_CACHED_STAT_L2_EVICTIONS] = l2->evictions;
	out[IC_CACHED_STAT_L2_BLOCKS] = l2->used;
	out[IC_CACHED_STAT_L2_LIMIT] = (uint64_t)l2->nslots << IC_CACHED_BLOCK_SHIFT;
}
