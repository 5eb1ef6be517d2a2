/* The pipes the front ends splice read replies through (docs/CACHED.md,
 * "Spliced reads"): one per worker, made at its first use, non-blocking,
 * sized to the largest reply it carries. */
#ifndef IC_COMMON_PIPE_H
#define IC_COMMON_PIPE_H

#include <stddef.h>
#include <stdbool.h>

/* Zeroed: not made yet. */
struct ic_pipe {
	int fd[2];	/* read end, write end, once state is 1 */
	int state;	/* 0: not made yet; 1: made; -1: could not be */
};

/* Whether p can be used, making it at the first call: non-blocking and
 * close-on-exec, holding at least size bytes. false, for good, when it
 * cannot be had: out of descriptors, past the user's
 * /proc/sys/fs/pipe-user-pages-soft (a user without CAP_SYS_RESOURCE), or
 * size past pipe-max-size. */
bool ic_pipe_ready(struct ic_pipe *p, size_t size);
void ic_pipe_fini(struct ic_pipe *p);
/* Empty p of what a reply that was not served, or not sent, left in it,
 * through scratch (cap bytes). */
void ic_pipe_drain(const struct ic_pipe *p, void *scratch, size_t cap);

#endif
