/* Pipes for spliced replies (common/pipe.h). */
#include "common/pipe.h"

#include <fcntl.h>
#include <unistd.h>

bool
ic_pipe_ready(struct ic_pipe *p, size_t size)
{
	if (p->state)
		return p->state > 0;
	p->state = -1;
	if (pipe2(p->fd, O_NONBLOCK | O_CLOEXEC) < 0)
		return false;
	if (fcntl(p->fd[1], F_SETPIPE_SZ, (int)size) < (int)size) {
		close(p->fd[0]);
		close(p->fd[1]);
		return false;
	}
	p->state = 1;
	return true;
}

void
ic_pipe_fini(struct ic_pipe *p)
{
	if (p->state > 0) {
		close(p->fd[0]);
		close(p->fd[1]);
	}
	p->state = 0;
}

void
ic_pipe_drain(const struct ic_pipe *p, void *scratch, size_t cap)
{
	while (read(p->fd[0], scratch, cap) > 0)
		;
}
