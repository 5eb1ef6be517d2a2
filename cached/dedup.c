/* Content dedup: equal blocks of the layers of one dedup domain are held
 * once (docs/CACHED.md, "Dedup").
 *
 * When a fill completes, the daemon hashes each block it read itself (from
 * the layer file, or from L2 after its checksum) with XXH3-128 keyed by a
 * secret drawn from getrandom at start and never stored anywhere, and looks
 * the digest up among the valid data entries. No digest is ever taken from
 * a tenant (metadata, xattrs, the wire): what a client could write is not
 * even read.
 *
 * The digest is an index, never a proof. A candidate is accepted only if
 * (1) its layer is of the same dedup domain — the same file owner, group
 * and filesystem: every layer is mode 0444, so whoever may read one of an
 * owner's layers there is no stranger to the rest, and a tenant cannot make
 * a file owned by anyone else, so her blocks are never matched against
 * another owner's (no poisoning, and no oracle telling her whether someone
 * else's image holds a block she guessed) — and (2) its 4 KiB equal the new
 * block's byte for byte. A collision of the keyed hash, which nobody without
 * the secret can aim, would therefore only cost a memcmp; the secret keeps
 * anyone from filling one bucket on purpose to slow the loop.
 *
 * A secret kept only in memory is enough because nothing keyed by it
 * outlives the daemon: the table is rebuilt as blocks are filled, and L2
 * keeps per-layer entries under its own secret (in its 0600 file).
 */
#include "cached/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/log.h"

int
cached_dedup_init(struct cached_dedup *dd, uint32_t nentries)
{
	uint32_t nb = 1;
	ssize_t got;

	memset(dd, 0, sizeof(*dd));
	got = getrandom(dd->secret, sizeof(dd->secret), 0);
	if (got != (ssize_t)sizeof(dd->secret)) {
		int rc = got < 0 ? -errno : -EIO;

		ic_log(IC_LOG_ERR, "dedup: no secret from getrandom: %s", strerror(-rc));
		return rc;
	}
	while (nb < nentries)
		nb <<= 1;
	dd->bucket_mask = nb - 1;
	dd->buckets = malloc((size_t)nb * sizeof(*dd->buckets));
	dd->digest = calloc(nentries, sizeof(*dd->digest));
	if (!dd->buckets || !dd->digest) {
		cached_dedup_fini(dd);
		return -ENOMEM;
	}
	memset(dd->buckets, 0xff, (size_t)nb * sizeof(*dd->buckets));
	return 0;
}

void
cached_dedup_fini(struct cached_dedup *dd)
{
	free(dd->buckets);
	free(dd->digest);
	memset(dd, 0, sizeof(*dd));
}

static uint32_t *
dedup_bucket(struct cached_dedup *dd, XXH128_hash_t h)
{
	return &dd->buckets[(uint32_t)h.low64 & dd->bucket_mask];
}

static bool
dedup_same_domain(const struct cached_layer *a, const struct cached_layer *b)
{
	return a->owner == b->owner && a->group == b->group && a->dev == b->dev;
}

uint32_t
cached_dedup_find(struct cached_store *st, uint32_t i)
{
	struct cached_dedup *dd = st->dd;
	const uint8_t *data = cached_store_data(st, i);
	const struct cached_layer *l = st->layers[st->e[i].layer];
	XXH128_hash_t h = XXH3_128bits_withSecret(data, IC_CACHED_BLOCK, dd->secret,
						  sizeof(dd->secret));

	dd->digest[i] = h;
	for (uint32_t c = *dedup_bucket(dd, h); c != CACHED_NIL; c = st->e[c].dnext)
		if (XXH128_isEqual(dd->digest[c], h) &&
		    dedup_same_domain(st->layers[st->e[c].layer], l) &&
		    !memcmp(cached_store_data(st, c), data, IC_CACHED_BLOCK))
			return c;
	return CACHED_NIL;
}

void
cached_dedup_insert(struct cached_store *st, uint32_t i)
{
	uint32_t *b = dedup_bucket(st->dd, st->dd->digest[i]);

	st->e[i].dnext = *b;
	*b = i;
}

void
cached_dedup_remove(struct cached_store *st, uint32_t i)
{
	uint32_t *p = dedup_bucket(st->dd, st->dd->digest[i]);

	while (*p != i)
		p = &st->e[*p].dnext;
	*p = st->e[i].dnext;
}
