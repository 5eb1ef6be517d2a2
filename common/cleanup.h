/* Scope-based cleanup, after nbdkit's common/utils/cleanup.h.
 *
 *   IC_AUTOFREE char *p = malloc(n);   freed when p leaves scope
 *   IC_AUTOCLOSE int fd = open(...);   closed when fd leaves scope (if >= 0)
 *   IC_LOCK_SCOPE(&mu);                unlocked at the end of the enclosing block
 *   return ic_steal(&p);               hand ownership out; the cleanup sees NULL
 */
#ifndef IC_COMMON_CLEANUP_H
#define IC_COMMON_CLEANUP_H

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static inline void
ic_cleanup_free(void *p)
{
	free(*(void **)p);
}

static inline void
ic_cleanup_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static inline void
ic_cleanup_unlock(pthread_mutex_t **mu)
{
	pthread_mutex_unlock(*mu);
}

#define IC_AUTOFREE __attribute__((cleanup(ic_cleanup_free)))
#define IC_AUTOCLOSE __attribute__((cleanup(ic_cleanup_close)))

#define IC_CONCAT_(a, b) a##b
#define IC_CONCAT(a, b) IC_CONCAT_(a, b)
#define IC_LOCK_SCOPE(mu)                                                                 \
	pthread_mutex_t *IC_CONCAT(ic_lock_, __LINE__)                                    \
		__attribute__((cleanup(ic_cleanup_unlock))) = (mu);                       \
	pthread_mutex_lock(IC_CONCAT(ic_lock_, __LINE__))

/* Return *pp and leave NULL behind, so an IC_AUTOFREE variable can be returned. */
static inline void *
ic_steal(void *pp)
{
	void **p = pp;
	void *v = *p;
	*p = NULL;
	return v;
}

/* Same for an IC_AUTOCLOSE descriptor. */
static inline int
ic_steal_fd(int *fd)
{
	int v = *fd;
	*fd = -1;
	return v;
}

#endif
