/* The stack: filters between the vdisk core and the layer backend.
 *
 * The filters in use form a chain, rebuilt whenever the stack changes and
 * never modified while I/O may see it. For each point of the chain and each
 * op, the chain records which filter implements that op at or below it, so
 * a NULL op costs nothing per call and a call never walks the stack.
 *
 * Live changes (ic_stack_add/remove) follow drain, swap, resume: a data call
 * holds swap_lock for reading while it runs; a swap takes it for writing,
 * which waits for in-flight calls to finish and holds new ones back (the
 * lock prefers writers) until the new chain is in place. Filters keep their
 * instances across swaps, so their state survives the change.
 *
 * A read with IC_REQ_NOWAIT or IC_REQ_PIPE goes down only when every
 * filter of the chain that has a pread, and the bottom, honour the flags
 * (the chain says so);
 * otherwise, or while a swap holds swap_lock or waits for it, it returns
 * -EAGAIN at once and the caller reads again without the flag.
 *
 * Lock order: admin_mu (changes, open/close, reports) before swap_lock.
 * A filter must not call ic_stack_* of the stack it is in (swap_lock does
 * not nest when a swap waits).
 */
#include "filter/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"

struct stack_chain {
	unsigned n;                   /* filters above the bottom */
	uint32_t honours;             /* the pread flags every pread in it honours */
	struct stack_filter **levels; /* n + 1: top first, the bottom last */
	struct ic_next nodes[];       /* n + 2: nodes[i] is all below levels[i - 1] */
};

struct ic_stack {
	pthread_rwlock_t swap_lock;
	pthread_mutex_t admin_mu;
	struct stack_chain *chain; /* changed under both locks */
	struct stack_filter bottom;
	/* Layers opened through the stack (under admin_mu), so that a filter
	 * added live is opened on them and one removed is closed. */
	const struct ic_layer **open;
	unsigned nopen, capopen;
};

static void
stack_chain_free(struct stack_chain *c)
{
	if (c)
		free(c->levels);
	free(c);
}

/* Resolve the chain for filters fs[0..n) (top first) over the bottom. */
static int
stack_chain_new(struct ic_stack *stack, struct stack_filter *const *fs, unsigned n,
		struct stack_chain **out)
{
	struct stack_chain *c = calloc(1, sizeof(*c) + (n + 2) * sizeof(c->nodes[0]));

	if (!c || !(c->levels = calloc(n + 1, sizeof(*c->levels)))) {
		free(c);
		return -ENOMEM;
	}
	c->n = n;
	if (n)
		memcpy(c->levels, fs, n * sizeof(*fs));
	c->levels[n] = &stack->bottom;
	c->nodes[n + 1].caller = stack->bottom.ops.name;
	c->honours = IC_REQ_NOWAIT | IC_REQ_PIPE;
	/* Bottom up, so each point copies the hops of the point below it for
	 * the ops its own filter leaves NULL. */
	for (unsigned i = n + 1; i-- > 0;) {
		struct stack_filter *f = c->levels[i];
		struct ic_next *node = &c->nodes[i];
		void (*const fn[IC_OP_COUNT])(void) = {
			[IC_OP_CAPS] = (void (*)(void))f->ops.caps,
			[IC_OP_PREAD] = (void (*)(void))f->ops.pread,
			[IC_OP_PWRITE] = (void (*)(void))f->ops.pwrite,
			[IC_OP_TRIM] = (void (*)(void))f->ops.trim,
			[IC_OP_ZERO] = (void (*)(void))f->ops.zero,
			[IC_OP_CACHE] = (void (*)(void))f->ops.cache,
			[IC_OP_FLUSH] = (void (*)(void))f->ops.flush,
		};
		const struct stack_hop *caps = &node->hop[IC_OP_CAPS];

		if (f->ops.pread)
			c->honours &= f->ops.honours;

		for (unsigned op = 0; op < IC_OP_COUNT; op++)
			node->hop[op] =
			    fn[op] ? (struct stack_hop){ fn[op], f->inst, &c->nodes[i + 1], f }
				   : c->nodes[i + 1].hop[op];
		node->caller = i ? c->levels[i - 1]->ops.name : "stack";
		node->caps = ((stack_caps_fn)caps->fn)(caps->below, caps->inst);
	}
	*out = c;
	return 0;
}

/* Put chain c in place once in-flight calls have drained; returns the old one. */
static struct stack_chain *
stack_swap(struct ic_stack *stack, struct stack_chain *c)
{
	struct stack_chain *old;

	pthread_rwlock_wrlock(&stack->swap_lock);
	old = stack->chain;
	stack->chain = c;
	pthread_rwlock_unlock(&stack->swap_lock);
	return old;
}

/* Close levels [from, to) of chain c on layer, top first. */
static void
stack_close_levels(struct stack_chain *c, unsigned from, unsigned to, const struct ic_layer *layer)
{
	for (unsigned i = from; i < to; i++)
		if (c->levels[i]->ops.close)
			c->levels[i]->ops.close(&c->nodes[i + 1], c->levels[i]->inst, layer);
}

/* Open levels [from, to) of chain c on layer, bottom first; all or none. */
static int
stack_open_levels(struct stack_chain *c, unsigned from, unsigned to, const struct ic_layer *layer)
{
	for (unsigned i = to; i-- > from;) {
		struct stack_filter *f = c->levels[i];
		int rc = f->ops.open ? f->ops.open(&c->nodes[i + 1], f->inst, layer) : 0;

		if (rc < 0) {
			ic_log(IC_LOG_ERR, "filter %s: open of disk %llu: %s", f->ops.name,
			       (unsigned long long)layer->disk_id, strerror(-rc));
			stack_close_levels(c, i + 1, to, layer);
			return rc;
		}
	}
	return 0;
}

int
ic_stack_new(const struct ic_filter_ops *bottom, void *bottom_inst, struct ic_stack **out)
{
	IC_AUTOFREE struct ic_stack *s = calloc(1, sizeof(*s));
	pthread_rwlockattr_t attr;
	int rc;

	if (!s)
		return -ENOMEM;
	rc = ic_filter_ops_load(bottom, "(bottom)", &s->bottom.ops);
	if (rc < 0)
		return rc;
	if (!s->bottom.ops.caps || !s->bottom.ops.pread || !s->bottom.ops.pwrite ||
	    !s->bottom.ops.trim || !s->bottom.ops.zero || !s->bottom.ops.cache ||
	    !s->bottom.ops.flush) {
		ic_log(IC_LOG_ERR, "filter %s: a bottom needs caps and every data op",
		       s->bottom.ops.name);
		return -EINVAL;
	}
	s->bottom.inst = bottom_inst;
	rc = stack_chain_new(s, NULL, 0, &s->chain);
	if (rc < 0)
		return rc;
	/* Writers first, so that a swap is not starved by a steady stream of I/O. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->swap_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&s->admin_mu, NULL);
	*out = ic_steal(&s);
	return 0;
}

void
ic_stack_free(struct ic_stack *stack)
{
	if (!stack)
		return;
	for (unsigned i = 0; i < stack->chain->n; i++)
		ic_filter_spec_free(stack->chain->levels[i]);
	stack_chain_free(stack->chain);
	free(stack->open);
	pthread_rwlock_destroy(&stack->swap_lock);
	pthread_mutex_destroy(&stack->admin_mu);
	free(stack);
}

int
ic_stack_add(struct ic_stack *stack, const char *spec, int pos)
{
	IC_AUTOFREE struct stack_filter **add = NULL;
	IC_AUTOFREE struct stack_filter **fs = NULL;
	struct stack_chain *c = NULL, *cur;
	unsigned k = 0, n, at, j = 0;
	int rc;

	IC_LOCK_SCOPE(&stack->admin_mu);
	cur = stack->chain;
	n = cur->n;
	if (pos < -1 || pos > (int)n) {
		ic_log(IC_LOG_ERR, "filter stack: position %d outside [-1, %u]", pos, n);
		return -EINVAL;
	}
	at = pos == -1 ? n : (unsigned)pos;
	rc = ic_filter_spec_parse(spec, &add, &k);
	if (rc < 0)
		return rc;
	fs = calloc(n + k, sizeof(*fs));
	rc = fs ? 0 : -ENOMEM;
	for (unsigned i = 0; rc == 0 && i < n + k; i++)
		fs[i] = i < at ? cur->levels[i] : i < at + k ? add[i - at] : cur->levels[i - k];
	if (rc == 0)
		rc = stack_chain_new(stack, fs, n + k, &c);
	/* The new filters see the layers already open before they see I/O. */
	while (rc == 0 && j < stack->nopen) {
		rc = stack_open_levels(c, at, at + k, stack->open[j]);
		j += rc == 0;
	}
	if (rc < 0) {
		while (j-- > 0)
			stack_close_levels(c, at, at + k, stack->open[j]);
		stack_chain_free(c);
		while (k)
			ic_filter_spec_free(add[--k]);
		return rc;
	}
	stack_chain_free(stack_swap(stack, c));
	ic_log(IC_LOG_INFO, "filter stack: added \"%s\" at %u", spec, at);
	return 0;
}

int
ic_stack_remove(struct ic_stack *stack, const char *name)
{
	IC_AUTOFREE struct stack_filter **fs = NULL;
	struct stack_chain *c, *old;
	struct stack_filter *gone;
	unsigned at = 0, n;
	int rc;

	IC_LOCK_SCOPE(&stack->admin_mu);
	n = stack->chain->n;
	while (at < n && strcmp(stack->chain->levels[at]->ops.name, name) != 0)
		at++;
	if (at == n) {
		ic_log(IC_LOG_ERR, "filter stack: no filter called \"%s\" to remove", name);
		return -ENOENT;
	}
	gone = stack->chain->levels[at];
	fs = calloc(n, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	memcpy(fs, stack->chain->levels, at * sizeof(*fs));
	memcpy(fs + at, stack->chain->levels + at + 1, (n - at - 1) * sizeof(*fs));
	rc = stack_chain_new(stack, fs, n - 1, &c);
	if (rc < 0)
		return rc;
	old = stack_swap(stack, c);
	/* No I/O reaches `gone` any more; close it over the old chain, whose
	 * filters below it are all still alive. */
	for (unsigned j = 0; j < stack->nopen; j++)
		stack_close_levels(old, at, at + 1, stack->open[j]);
	ic_filter_spec_free(gone);
	stack_chain_free(old);
	ic_log(IC_LOG_INFO, "filter stack: removed \"%s\"", name);
	return 0;
}

/* A filter's report as a tree (NULL, JSON's null, when it has none, fails or
 * writes what is not JSON: a plugin's text never breaks the whole answer).
 * buf is scratch space here; the caller writes the final answer over it. */
static struct json_object *
stack_filter_report(const struct stack_filter *f, char *buf, size_t cap)
{
	if (!f->ops.report || f->ops.report(f->inst, buf, cap) < 0)
		return NULL;
	return json_tokener_parse(buf);
}

int
ic_stack_report(struct ic_stack *stack, char *buf, size_t cap)
{
	struct json_object *a = json_object_new_array();

	IC_LOCK_SCOPE(&stack->admin_mu);
	for (unsigned i = 0; a && i <= stack->chain->n; i++) {
		const struct stack_filter *f = stack->chain->levels[i];
		struct json_object *o = json_object_new_object();

		if (!o)
			continue;
		json_object_object_add(o, "name", json_object_new_string(f->ops.name));
		json_object_object_add(o, "bottom", json_object_new_boolean(i == stack->chain->n));
		json_object_object_add(o, "spec",
				       json_object_new_string(f->spec ? f->spec : f->ops.name));
		json_object_object_add(o, "report", stack_filter_report(f, buf, cap));
		json_object_array_add(a, o);
	}
	return ic_json_emit(a, buf, cap);
}

int
ic_stack_open(struct ic_stack *stack, const struct ic_layer *layer)
{
	int rc;

	if (!layer)
		return -EINVAL;
	IC_LOCK_SCOPE(&stack->admin_mu);
	if (stack->nopen == stack->capopen) {
		unsigned cap = stack->capopen ? 2 * stack->capopen : 16;
		const struct ic_layer **open = realloc(stack->open, cap * sizeof(*open));

		if (!open)
			return -ENOMEM;
		stack->open = open;
		stack->capopen = cap;
	}
	rc = stack_open_levels(stack->chain, 0, stack->chain->n + 1, layer);
	if (rc < 0)
		return rc;
	stack->open[stack->nopen++] = layer;
	return 0;
}

void
ic_stack_close(struct ic_stack *stack, const struct ic_layer *layer)
{
	IC_LOCK_SCOPE(&stack->admin_mu);
	for (unsigned j = 0; j < stack->nopen; j++) {
		if (stack->open[j] != layer)
			continue;
		stack_close_levels(stack->chain, 0, stack->chain->n + 1, layer);
		stack->open[j] = stack->open[--stack->nopen];
		return;
	}
	ic_log(IC_LOG_WARN, "filter stack: close of disk %llu, which is not open",
	       (unsigned long long)layer->disk_id);
}

void
ic_stack_layer_moved(struct ic_stack *stack, const struct ic_layer *from, const struct ic_layer *to)
{
	IC_LOCK_SCOPE(&stack->admin_mu);
	for (unsigned j = 0; j < stack->nopen; j++)
		if (stack->open[j] == from)
			stack->open[j] = to;
}

/* One data call, from the top, while no swap runs. */
static int
stack_io(struct ic_stack *stack, enum ic_filter_op op, struct ic_seg *segs, unsigned n,
	 uint32_t flags, const struct ic_layer *layer)
{
	uint32_t asked = op == IC_OP_PREAD ? flags & (IC_REQ_NOWAIT | IC_REQ_PIPE) : 0;
	int rc;

	if (!(asked & IC_REQ_NOWAIT))
		pthread_rwlock_rdlock(&stack->swap_lock);
	else if (pthread_rwlock_tryrdlock(&stack->swap_lock) != 0)
		return -EAGAIN;
	if ((stack->chain->honours & asked) != asked) {
		pthread_rwlock_unlock(&stack->swap_lock);
		return -EAGAIN;
	}
	ic_filter_next_begin();
	rc = ic_filter_next_op(&stack->chain->nodes[0], op, segs, n, flags, layer);
	pthread_rwlock_unlock(&stack->swap_lock);
	return ic_filter_next_done(op, rc, flags, segs, layer);
}

uint32_t
ic_stack_caps(struct ic_stack *stack)
{
	uint32_t caps;

	pthread_rwlock_rdlock(&stack->swap_lock);
	caps = stack->chain->nodes[0].caps;
	pthread_rwlock_unlock(&stack->swap_lock);
	return caps;
}

int
ic_stack_pread(struct ic_stack *stack, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	return stack_io(stack, IC_OP_PREAD, segs, n, flags, NULL);
}

int
ic_stack_pwrite(struct ic_stack *stack, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	return stack_io(stack, IC_OP_PWRITE, segs, n, flags, NULL);
}

int
ic_stack_trim(struct ic_stack *stack, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	return stack_io(stack, IC_OP_TRIM, segs, n, flags, NULL);
}

int
ic_stack_zero(struct ic_stack *stack, struct ic_seg *segs, unsigned n, uint32_t flags)
{
	return stack_io(stack, IC_OP_ZERO, segs, n, flags, NULL);
}

int
ic_stack_cache(struct ic_stack *stack, struct ic_seg *segs, unsigned n)
{
	return stack_io(stack, IC_OP_CACHE, segs, n, 0, NULL);
}

int
ic_stack_flush(struct ic_stack *stack, const struct ic_layer *layer)
{
	return stack_io(stack, IC_OP_FLUSH, NULL, 0, 0, layer);
}
