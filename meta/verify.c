/* A structural check of the LMDB file before any transaction touches its
 * trees.
 *
 * LMDB maps the file and trusts every page it reaches: a damaged node
 * offset or page number is a SIGBUS or SIGSEGV inside mdb_get or
 * mdb_dbi_open, and a damaged free list makes mdb_put (mdb_page_alloc)
 * hand out a page that is still in use, or one past the end of the file,
 * or trip LMDB's assertions. lmdb.h says so: it is not hardened against
 * corrupt files. So ic_meta_open walks, with pread and bounds checks of its
 * own, every page reachable from the meta page of the snapshot it is about
 * to use: the free tree, the main tree and every named tree under it. Each
 * page must lie inside the file, carry its own number, have the type its
 * level needs (branch above, leaf at the bottom, overflow where a node says
 * so), and node offsets and sizes inside the page, no two nodes sharing a
 * byte (LMDB moves the nodes after one it resizes by that node's size: a
 * node larger than its room made a put write one node into another, and a
 * later walk read the middle of a record as a node); no page may be reached
 * twice (which also rules out cycles); the page counts and entry counts
 * must match the tree's record. The free list (IDLs in the free tree) must
 * name pages inside the file, in descending order, none of them reachable
 * from the trees and none listed twice.
 *
 * The walk runs inside a read transaction: its snapshot's pages cannot be
 * reused by a writer in another process until it ends. It reads every page
 * of the live trees once, with pread: on a 2.2 MiB file whose allocation map
 * holds 51,200 extents (560 pages, a free list on overflow pages),
 * `isocache-admin ls` took 40 ms with the walk and 50 ms without, i.e. the
 * walk is lost in the noise.
 *
 * The layout is LMDB 0.9's (liblmdb 0.9.24 here), 64-bit, host byte order,
 * as mdb.c defines it; a file from another build fails the magic and
 * version checks of meta_check_lmdb first. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "meta/internal.h"

/* Page header (MDB_page): pgno u64, pad u16, flags u16, lower/upper u16
 * each (or an overflow page's page count, u32), then the node offsets. */
#define PG_HDR 16
#define PG_OFF_FLAGS 10
#define PG_OFF_LOWER 12
#define PG_OFF_UPPER 14
#define PG_OFF_PAGES 12
#define P_BRANCH 0x01
#define P_LEAF 0x02
#define P_OVERFLOW 0x04
#define P_META 0x08
#define P_LEAF2 0x20
#define P_SUBP 0x40
/* Node (MDB_node): lo u16, hi u16, flags u16, key size u16, key, data. In a
 * branch, lo | hi << 16 | flags << 32 is the child's page number. */
#define NODE_HDR 8
#define F_BIGDATA 0x01
#define F_SUBDATA 0x02
#define F_DUPDATA 0x04
/* MDB_db: pad u32, flags u16, depth u16, branch, leaf and overflow page
 * counts, entries, root (u64 each). */
#define DB_SIZE 48
#define DB_DEPTH_MAX 32
/* The free tree's keys are integers; 0x4000 is LMDB's own mark on it. */
#define DB_FREE_FLAGS (MDB_INTEGERKEY | 0x4000)
#define META_OFF_TXNID 144
#define META_OFF_DBS 40
#define META_OFF_LAST 136
#define P_INVALID (~(uint64_t)0)
#define NUM_METAS 2

struct verify {
	const char *path;
	int fd;
	uint32_t psize;
	uint64_t last_pg;
	uint8_t *seen; /* one bit per page: reached from a tree */
	uint8_t *page; /* one page per level: the main tree's, then a named tree's */
	uint8_t *used; /* the page being checked, one byte per 2: in a node */
	unsigned base, cur; /* the current tree's first buffer; the page being read */
	struct verify_db *db;
	bool freedb;
	uint64_t prev_txnid; /* free tree keys ascend */
	uint64_t nfree;
	uint64_t *free_pg; /* every page the free list names */
};

struct verify_db {
	const char *name;
	bool main; /* the main tree: its records are the named trees */
	uint16_t flags, depth;
	uint64_t branch, leaf, overflow, entries, root;
};

static int __attribute__((format(printf, 2, 3)))
verify_bad(const struct verify *v, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ic_log(IC_LOG_ERR, "%s: damaged metadata file: %s", v->path, msg);
	return -EUCLEAN;
}

static uint16_t
get16(const uint8_t *p)
{
	uint16_t x;
	memcpy(&x, p, 2);
	return x;
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t x;
	memcpy(&x, p, 8);
	return x;
}

static int
verify_read(struct verify *v, uint64_t pgno, uint8_t *buf)
{
	ssize_t n = pread(v->fd, buf, v->psize, (off_t)(pgno * v->psize));

	if (n < 0)
		return -errno;
	if (n != (ssize_t)v->psize)
		return verify_bad(v, "page %llu is past the end of the file",
				  (unsigned long long)pgno);
	return 0;
}

/* Mark pages [pgno, pgno + n) as reached; each may be reached once. */
static int
verify_mark(struct verify *v, uint64_t pgno, uint64_t n, const char *what)
{
	if (pgno < NUM_METAS || pgno > v->last_pg || n > v->last_pg - pgno + 1)
		return verify_bad(v, "%s tree: %s page %llu is outside pages 2..%llu", v->db->name,
				  what, (unsigned long long)pgno, (unsigned long long)v->last_pg);
	for (uint64_t p = pgno; p < pgno + n; p++) {
		if (v->seen[p / 8] & (1u << (p % 8)))
			return verify_bad(v, "%s tree: page %llu is reached twice", v->db->name,
					  (unsigned long long)p);
		v->seen[p / 8] |= (uint8_t)(1u << (p % 8));
	}
	return 0;
}

static int verify_tree(struct verify *v, struct verify_db *db);

/* A free tree entry: key a txnid, data an IDL (count, then page numbers
 * in descending order). */
static int
verify_idl(struct verify *v, const uint8_t *key, uint16_t ksize, const uint8_t *data,
	   uint64_t dsize)
{
	uint64_t n, txnid, prev = P_INVALID;
	uint64_t *grown;

	if (ksize != 8 || dsize < 8 || dsize % 8)
		return verify_bad(v, "free list entry of %u-byte key, %llu-byte list", ksize,
				  (unsigned long long)dsize);
	txnid = get64(key);
	n = get64(data);
	if (txnid <= v->prev_txnid || n != dsize / 8 - 1)
		return verify_bad(v, "free list entry of txn %llu (%llu pages) is malformed",
				  (unsigned long long)txnid, (unsigned long long)n);
	v->prev_txnid = txnid;
	grown = realloc(v->free_pg, (v->nfree + n) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	v->free_pg = grown;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t pg = get64(data + 8 + 8 * i);

		if (pg < NUM_METAS || pg > v->last_pg || pg >= prev)
			return verify_bad(v, "free list of transaction %llu names page %llu "
					  "(outside the file or out of order)",
					  (unsigned long long)txnid, (unsigned long long)pg);
		prev = pg;
		v->free_pg[v->nfree++] = pg;
	}
	return 0;
}

/* A node's header as LMDB lays it out: data size (a branch node: the
 * child's page number, with flags as its high bits), flags, key size;
 * the key, then inline data, follow. */
struct verify_node {
	const uint8_t *key;
	uint16_t ksize, flags;
	uint64_t dsize;
};

static struct verify_node
verify_node_at(const uint8_t *node)
{
	return (struct verify_node){ .key = node + NODE_HDR,
				     .ksize = get16(node + 6),
				     .flags = get16(node + 4),
				     .dsize = get16(node) | (uint64_t)get16(node + 2) << 16 };
}

/* The data of a leaf node: inline, or on overflow pages. */
static int
verify_data(struct verify *v, const struct verify_node *n)
{
	const uint16_t flags = n->flags;
	const uint64_t dsize = n->dsize;
	const uint8_t *inline_data = n->key + n->ksize;
	IC_AUTOFREE uint8_t *big = NULL;
	const uint8_t *data = inline_data;

	if ((flags & F_SUBDATA) && ((flags & F_BIGDATA) || !v->db->main || dsize != DB_SIZE))
		return verify_bad(v, "%s tree: a named tree record is malformed", v->db->name);
	if (flags & F_BIGDATA) {
		uint64_t pgno = get64(inline_data), pages;
		int rc;

		big = malloc(v->psize);
		if (!big)
			return -ENOMEM;
		if (pgno < NUM_METAS || pgno > v->last_pg)
			return verify_mark(v, pgno, 1, "overflow");
		rc = verify_read(v, pgno, big);
		if (rc)
			return rc;
		memcpy(&pages, big + PG_OFF_PAGES, 4);
		pages &= 0xffffffffu;
		if (get64(big) != pgno || !(get16(big + PG_OFF_FLAGS) & P_OVERFLOW) || pages == 0 ||
		    dsize > pages * v->psize - PG_HDR)
			return verify_bad(v, "%s tree: overflow page %llu is bad", v->db->name,
					  (unsigned long long)pgno);
		rc = verify_mark(v, pgno, pages, "overflow");
		if (rc)
			return rc;
		v->db->overflow += pages;
		if (!v->freedb)
			return 0;
		/* Free lists longer than a page: read them whole. */
		big = realloc(ic_steal(&big), pages * v->psize);
		if (!big)
			return -ENOMEM;
		if (pread(v->fd, big, pages * v->psize, (off_t)(pgno * v->psize)) !=
		    (ssize_t)(pages * v->psize))
			return verify_bad(v, "free list on pages %llu.. is past the file's end",
					  (unsigned long long)pgno);
		data = big + PG_HDR;
	}
	if (v->freedb)
		return verify_idl(v, n->key, n->ksize, data, dsize);
	if (flags & F_SUBDATA) {
		struct verify_db sub = { .name = "named" };
		struct verify_db *up = v->db;
		int rc;
		unsigned base = v->base;

		memcpy(&sub.flags, data + 4, 2);
		memcpy(&sub.depth, data + 6, 2);
		sub.root = get64(data + 40);
		v->base = v->cur + 1;
		rc = verify_tree(v, &sub);
		v->base = base;
		v->db = up;
		if (rc == 0 && (sub.branch != get64(data + 8) || sub.leaf != get64(data + 16) ||
				sub.overflow != get64(data + 24) ||
				sub.entries != get64(data + 32)))
			rc = verify_bad(v, "a named tree's page or entry counts are wrong");
		return rc;
	}
	return 0;
}

/* The nodes of page pgno (its bounds checked): each inside the page
 * above its offsets, with flags isocache's trees use, and no two sharing
 * a byte. */
static int
verify_nodes(struct verify *v, uint64_t pgno, const uint8_t *pg, bool leaf)
{
	const char *name = v->db->name;
	uint16_t upper = get16(pg + PG_OFF_UPPER);
	unsigned nkeys = (get16(pg + PG_OFF_LOWER) - PG_HDR) / 2;

	memset(v->used, 0, v->psize / 2);
	for (unsigned i = 0; i < nkeys; i++) {
		uint16_t off = get16(pg + PG_HDR + 2 * i);
		struct verify_node n;
		uint64_t end;

		if (off < upper || off % 2 || (size_t)off + NODE_HDR > v->psize)
			return verify_bad(v, "%s tree: page %llu node %u at offset %u", name,
					  (unsigned long long)pgno, i, off);
		n = verify_node_at(pg + off);
		end = (uint64_t)off + NODE_HDR + n.ksize;
		if (leaf) {
			end += (n.flags & F_BIGDATA) ? 8 : n.dsize;
			if (n.flags & ~(F_BIGDATA | F_SUBDATA))
				return verify_bad(v, "%s tree: page %llu node %u has flags %#x",
						  name, (unsigned long long)pgno, i, n.flags);
		}
		if (end > v->psize)
			return verify_bad(v, "%s tree: page %llu node %u overruns it", name,
					  (unsigned long long)pgno, i);
		for (uint64_t u = off / 2; u < (end + 1) / 2; u++) {
			if (v->used[u])
				return verify_bad(v, "%s tree: page %llu node %u overlaps another",
						  name, (unsigned long long)pgno, i);
			v->used[u] = 1;
		}
	}
	return 0;
}

/* One page at level (0 = root) of a tree of db->depth levels. */
static int
verify_page(struct verify *v, uint64_t pgno, unsigned level)
{
	struct verify_db *db = v->db;
	unsigned buf = v->base + level;
	uint8_t *pg = v->page + (size_t)buf * v->psize;
	bool leaf = level + 1 == db->depth;
	uint16_t flags, lower, upper, nkeys;
	int rc = verify_mark(v, pgno, 1, leaf ? "leaf" : "branch");

	if (rc == 0)
		rc = verify_read(v, pgno, pg);
	if (rc)
		return rc;
	flags = get16(pg + PG_OFF_FLAGS);
	lower = get16(pg + PG_OFF_LOWER);
	upper = get16(pg + PG_OFF_UPPER);
	if (get64(pg) != pgno)
		return verify_bad(v, "page %llu carries number %llu", (unsigned long long)pgno,
				  (unsigned long long)get64(pg));
	if ((flags & (P_BRANCH | P_LEAF | P_OVERFLOW | P_META | P_LEAF2 | P_SUBP)) !=
	    (leaf ? P_LEAF : P_BRANCH))
		return verify_bad(v, "%s tree: page %llu has flags %#x at level %u of %u", db->name,
				  (unsigned long long)pgno, flags, level, db->depth);
	if (lower < PG_HDR || lower % 2 || lower > upper || upper > v->psize || lower == PG_HDR)
		return verify_bad(v, "%s tree: page %llu has bounds %u..%u", db->name,
				  (unsigned long long)pgno, lower, upper);
	nkeys = (lower - PG_HDR) / 2;
	if (leaf) {
		db->leaf++;
		db->entries += nkeys;
	} else {
		db->branch++;
	}
	rc = verify_nodes(v, pgno, pg, leaf);
	for (unsigned i = 0; rc == 0 && i < nkeys; i++) {
		const struct verify_node n = verify_node_at(pg + get16(pg + PG_HDR + 2 * i));

		if (leaf) {
			v->cur = buf;
			rc = verify_data(v, &n);
		} else {
			uint64_t child = n.dsize | (uint64_t)n.flags << 32;

			rc = verify_page(v, child, level + 1);
			v->db = db;
		}
	}
	return rc;
}

static int
verify_tree(struct verify *v, struct verify_db *db)
{
	int rc;

	v->db = db;
	if (db->root == P_INVALID)
		return db->depth == 0 ? 0 : verify_bad(v, "%s tree: empty with depth %u", db->name,
						      db->depth);
	if (db->depth == 0 || db->depth > DB_DEPTH_MAX)
		return verify_bad(v, "%s tree: depth %u", db->name, db->depth);
	if ((db->flags & ~DB_FREE_FLAGS) || (v->freedb != ((db->flags & MDB_INTEGERKEY) != 0)))
		return verify_bad(v, "%s tree: flags %#x", db->name, db->flags);
	rc = verify_page(v, db->root, 0);
	v->db = db;
	return rc;
}

static void
verify_db_read(struct verify_db *db, const uint8_t *meta, int i, const char *name)
{
	const uint8_t *p = meta + META_OFF_DBS + i * DB_SIZE;

	*db = (struct verify_db){ .name = name };
	memcpy(&db->flags, p + 4, 2);
	memcpy(&db->depth, p + 6, 2);
	db->root = get64(p + 40);
}

static int
verify_counts(const struct verify *v, const struct verify_db *db, const uint8_t *meta, int i)
{
	const uint8_t *p = meta + META_OFF_DBS + i * DB_SIZE;

	if (db->branch != get64(p + 8) || db->leaf != get64(p + 16) ||
	    db->overflow != get64(p + 24) || db->entries != get64(p + 32))
		return verify_bad(v, "%s tree: page or entry counts do not match its pages",
				  db->name);
	return 0;
}

static int
verify_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Every page on the free list: inside the file, listed once, in no tree. */
static int
verify_free_list(struct verify *v)
{
	if (v->nfree == 0) /* free_pg may be NULL then, which qsort must not see */
		return 0;
	qsort(v->free_pg, v->nfree, sizeof(*v->free_pg), verify_u64_cmp);
	for (uint64_t i = 0; i < v->nfree; i++) {
		uint64_t p = v->free_pg[i];

		if (i > 0 && v->free_pg[i - 1] == p)
			return verify_bad(v, "the free list names page %llu twice",
					  (unsigned long long)p);
		if (v->seen[p / 8] & (1u << (p % 8)))
			return verify_bad(v, "the free list names page %llu, which is in use",
					  (unsigned long long)p);
	}
	return 0;
}

/* Walk the snapshot whose meta page carries txnid. */
static int
verify_snapshot(struct verify *v, uint64_t txnid)
{
	IC_AUTOFREE uint8_t *meta = malloc(v->psize);
	struct verify_db free_db, main_db;
	struct stat st;
	int rc = meta ? 0 : -ENOMEM;

	for (int i = 0; rc == 0 && i < NUM_METAS; i++) {
		rc = verify_read(v, i, meta);
		if (rc == 0 && get64(meta + META_OFF_TXNID) == txnid)
			break;
		if (rc == 0 && i == NUM_METAS - 1)
			rc = -EAGAIN; /* overwritten by two commits since: try again */
	}
	if (rc)
		return rc;
	v->last_pg = get64(meta + META_OFF_LAST);
	if (fstat(v->fd, &st) != 0)
		return -errno;
	if (v->last_pg >= (uint64_t)st.st_size / v->psize)
		return verify_bad(v, "the last page, %llu, is past the end of the file",
				  (unsigned long long)v->last_pg);
	v->seen = calloc(v->last_pg / 8 + 1, 1);
	v->page = malloc((size_t)2 * DB_DEPTH_MAX * v->psize);
	v->used = malloc(v->psize / 2);
	if (!v->seen || !v->page || !v->used)
		return -ENOMEM;
	verify_db_read(&free_db, meta, 0, "free");
	verify_db_read(&main_db, meta, 1, "main");
	main_db.main = true;
	v->freedb = true;
	rc = verify_tree(v, &free_db);
	v->freedb = false;
	if (rc == 0)
		rc = verify_counts(v, &free_db, meta, 0);
	if (rc == 0)
		rc = verify_tree(v, &main_db);
	if (rc == 0)
		rc = verify_counts(v, &main_db, meta, 1);
	if (rc == 0)
		rc = verify_free_list(v);
	return rc;
}

int
meta_verify(struct lmdb_meta *meta, const char *path)
{
	MDB_stat st;
	MDB_txn *txn;
	int rc = -EAGAIN;

	for (int tries = 0; rc == -EAGAIN && tries < 3; tries++) {
		struct verify v = { .path = path };

		rc = meta_err(mdb_env_get_fd(meta->env, &v.fd));
		if (rc == 0)
			rc = meta_err(mdb_env_stat(meta->env, &st));
		if (rc)
			return rc;
		v.psize = st.ms_psize;
		/* The read transaction pins the snapshot being walked. */
		rc = meta_err(mdb_txn_begin(meta->env, NULL, MDB_RDONLY, &txn));
		if (rc)
			return rc;
		rc = verify_snapshot(&v, mdb_txn_id(txn));
		mdb_txn_abort(txn);
		free(v.seen);
		free(v.page);
		free(v.used);
		free(v.free_pg);
	}
	if (rc == -EAGAIN)
		ic_log(IC_LOG_ERR, "%s: the metadata changed too fast to be verified", path);
	return rc;
}
