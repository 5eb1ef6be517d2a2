/* The public ownership API (isocache/control.h) on a store handle: each
 * call hands the store's ownership side, struct owner_store, to owner/,
 * which knows nothing of struct ic_store. */
#include "vdisk/internal.h"

int
ic_control_start(struct ic_store *store, const struct ic_control_config *cfg,
		 struct ic_control **out)
{
	return owner_control_start(&store->owners, cfg, out);
}

int
ic_owner_show(struct ic_store *store, const char *name, struct ic_owner_info *out)
{
	return owner_show(&store->owners, name, out);
}

int
ic_owner_list(struct ic_store *store,
	      int (*fn)(void *arg, const char *name, const struct ic_owner_info *info), void *arg)
{
	return owner_list(&store->owners, fn, arg);
}

int
ic_owner_release(struct ic_store *store, const char *name, unsigned timeout_ms, char *said,
		 size_t cap)
{
	return owner_release_request(&store->owners, name, timeout_ms, said, cap);
}

int
ic_owner_takeover(struct ic_store *store, const char *name, unsigned timeout_ms)
{
	return owner_takeover(&store->owners, name, timeout_ms);
}

void
ic_owner_set_timeout(struct ic_store *store, unsigned timeout_ms)
{
	store->owners.handoff_ms = timeout_ms;
}

void
ic_owner_set_takeover(struct ic_store *store, enum ic_takeover how)
{
	store->owners.takeover = how;
}
