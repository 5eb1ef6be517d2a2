/* The control socket (docs/ARCHITECTURE.md §1, docs/CONTROL-PROTOCOL.md): one thread
 * polls the listening socket and up to CTL_CONNS connections, and answers
 * each request in turn. Requests are short, except a RELEASE or SNAPSHOT,
 * which waits (bounded by its deadline) for the vdisk's in-flight I/O to
 * drain; answering one at a time also serializes handoffs of this process.
 * A malformed message closes its connection and nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/clock.h"
#include "common/uuid.h"
#include "owner/ctlmsg.h"
#include "owner/internal.h"

#define CTL_CONNS 16 /* connections served at once; more are closed at accept */

struct ic_control {
	struct owner_store *os;
	struct ic_control_config cfg;
	char path[CTL_SOCKET_LEN];
	int listen_fd;
	int wake[2];          /* a byte on wake[1] stops the thread */
	pthread_t thread;
	pthread_mutex_t mu;   /* the list, and any vdisk of it being handed off */
	struct owner_served *served;
	int conns[CTL_CONNS]; /* -1 when free */
	uint8_t *out;         /* reply buffer, CTL_REPLY_BUF */
};

static const char *const ctl_policy_names[] = {
	[IC_RELEASE_WHEN_UNUSED] = "when-unused",
	[IC_RELEASE_WHEN_IDLE] = "when-idle",
	[IC_RELEASE_NEVER] = "never",
	[IC_RELEASE_ALWAYS] = "always",
};

int
ic_release_policy_parse(const char *text, enum ic_release_policy *out)
{
	for (unsigned i = 0; i < sizeof(ctl_policy_names) / sizeof(ctl_policy_names[0]); i++) {
		if (strcmp(text, ctl_policy_names[i]) == 0) {
			*out = (enum ic_release_policy)i;
			return 0;
		}
	}
	ic_log(IC_LOG_ERR, "release policy '%s': use when-unused, when-idle, never or always",
	       text);
	return -EINVAL;
}

const char *
ic_release_policy_name(enum ic_release_policy policy)
{
	return policy <= IC_RELEASE_ALWAYS ? ctl_policy_names[policy] : "?";
}

const char *
owner_socket(const struct owner_store *os)
{
	return os->control ? os->control->path : "";
}

const char *
ic_control_path(const struct ic_control *ctl)
{
	return ctl->path;
}

void
owner_control_add(struct ic_control *ctl, struct owner_served *s)
{
	IC_LOCK_SCOPE(&ctl->mu);
	s->ctl = ctl;
	s->next = ctl->served;
	ctl->served = s;
}

void
owner_control_remove(struct owner_served *s)
{
	struct ic_control *ctl = s->ctl;

	if (!ctl)
		return;
	IC_LOCK_SCOPE(&ctl->mu);
	for (struct owner_served **p = &ctl->served; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	s->ctl = NULL;
}

/* The served vdisk name, still owned; ctl->mu held. */
static struct owner_served *
control_find(struct ic_control *ctl, const char *name)
{
	for (struct owner_served *s = ctl->served; s; s = s->next)
		if (strcmp(s->name, name) == 0 && owner_held(s->claim) && !owner_fenced(s->claim))
			return s;
	return NULL;
}

/* ---- answering ---- */

static int
control_send(int fd, const struct ctl_msg *m, uint8_t *buf)
{
	size_t len = ctl_encode(m, buf);

	return send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len ? 0 : -errno;
}

/* Fill reply as a failure with status rc and the message. */
static void
control_fail(struct ctl_msg *reply, int rc, char *text, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void
control_fail(struct ctl_msg *reply, int rc, char *text, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, cap, fmt, ap);
	va_end(ap);
	reply->reply.status = rc;
	reply->reply.result = CTL_FAILED;
}

/* Has the peer gone (closed its end, or reset)? */
static bool
control_peer_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

const char *
owner_verdict(const struct owner_served *s, char *why, size_t cap)
{
	const struct ic_control *ctl = s->ctl;
	unsigned window, users;
	long long last, idle;

	/* Served without a control socket (its run directory unusable): the
	 * process said at start that nobody can ask it to let go; a request
	 * through etcd is no different. */
	if (!ctl) {
		snprintf(why, cap, "it has no control socket, so no release policy");
		return why;
	}
	window = ctl->cfg.idle_ms ? ctl->cfg.idle_ms : IC_RELEASE_IDLE_MS;
	s->ops->usage(s->arg, &users, &last);
	idle = ic_now_ms() - last;

	switch (ctl->cfg.policy) {
	case IC_RELEASE_ALWAYS:
		return NULL;
	case IC_RELEASE_NEVER:
		snprintf(why, cap, "its release policy is never");
		return why;
	case IC_RELEASE_WHEN_UNUSED:
		if (users == 0)
			return NULL;
		snprintf(why, cap, "%u client%s %s using it (release policy when-unused)", users,
			 users == 1 ? "" : "s", users == 1 ? "is" : "are");
		return why;
	default:
		if (!last || idle >= window)
			return NULL;
		snprintf(why, cap, "it was written %lld ms ago (release policy when-idle: %u ms)",
			 idle, window);
		return why;
	}
}

/* RELEASE of s to the peer on fd: quiesce, flush, write the peer as owner
 * (CAS), answer RELEASED, and fence s. Should the peer be gone before the
 * record changes, or the answer not reach it, s stays ours and serving.
 * ctl->mu is held. */
static void
control_release(struct ic_control *ctl, int fd, const struct ctl_msg *m, struct ctl_msg *reply,
		char *text, size_t cap)
{
	struct owner_served *s = control_find(ctl, m->release.name);
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct ic_owner_rec to, back;
	struct owner_claim theirs;
	long long t0 = ic_now_ms();
	uint64_t generation;
	int rc;

	if (!s) {
		control_fail(reply, -ENOENT, text, cap, "%s is not open for writing here",
			     m->release.name);
		return;
	}
	if (!(m->release.flags & CTL_RELEASE_FORCE) && owner_verdict(s, text, cap)) {
		reply->reply.result = CTL_DENIED;
		ic_log(IC_LOG_INFO, "%s: denied a release to %s: %s", s->name, m->release.who,
		       text);
		return;
	}
	rc = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ? -errno : 0;
	if (rc == 0)
		rc = owner_self(cred.pid, m->release.who, m->release.owner_id, m->release.socket,
				&to);
	if (rc == 0)
		rc = owner_self(getpid(), s->claim->who, s->claim->owner_id, ctl->path, &back);
	if (rc) {
		control_fail(reply, rc, text, cap, "cannot describe the requester: %s",
			     strerror(-rc));
		return;
	}
	if (!owner_served_begin(s)) {
		control_fail(reply, -EBUSY, text, cap, "a release or snapshot of %s is under way",
			     s->name);
		return;
	}
	rc = s->ops->quiesce(s->arg, t0 + m->release.deadline_ms);
	if (rc) {
		owner_served_end(s);
		control_fail(reply, rc, text, cap, "in-flight I/O did not drain within %u ms",
			     m->release.deadline_ms);
		return;
	}
	rc = s->ops->flush(s->arg);
	if (rc == 0 && control_peer_gone(fd))
		rc = -ECONNABORTED;
	if (rc == 0)
		rc = owner_transfer(ctl->os, s->claim, &to, &generation);
	if (rc == 0) {
		reply->reply.result = CTL_RELEASED;
		reply->reply.generation = generation;
		snprintf(text, cap, "released after %lld ms", ic_now_ms() - t0);
		rc = control_send(fd, reply, ctl->out);
		if (rc == 0) {
			/* Fenced under the quiesce, then the lock goes: nothing of
			 * ours can write once the requester can take it. */
			owner_fence(s->claim, "released to another process");
			owner_let_go(s->claim);
			ic_log(IC_LOG_INFO, "%s: released to %s (pid %d, %s) in %lld ms; no longer "
			       "serving it", s->name, m->release.who, (int)cred.pid,
			       m->release.reason, ic_now_ms() - t0);
		} else {
			/* The requester never learns it owns the vdisk: take it back. */
			memcpy(theirs.owner_id, to.owner_id, 16);
			snprintf(theirs.name, sizeof(theirs.name), "%s", s->claim->name);
			theirs.generation = generation;
			if (owner_transfer(ctl->os, &theirs, &back, &generation) == 0) {
				s->claim->generation = generation;
				ic_log(IC_LOG_WARN, "%s: the requester (pid %d) left before our "
				       "answer; took it back", s->name, (int)cred.pid);
			} else { /* it cleared the record itself: nobody owns it now */
				owner_fence(s->claim, "released to a process that left at once");
				owner_let_go(s->claim);
			}
		}
		reply->reply.result = CTL_DONE; /* answered already */
	}
	s->ops->resume(s->arg);
	owner_served_end(s);
	if (rc == -ECONNABORTED)
		ic_log(IC_LOG_WARN, "%s: the requester (pid %d) left mid-handoff; keeping it",
		       s->name, (int)cred.pid);
	if (rc)
		control_fail(reply, rc, text, cap, "release failed: %s", strerror(-rc));
}

/* SNAPSHOT of a vdisk this process writes: quiesce, flush, freeze the leaf
 * and continue on a new one, all without closing the handle. */
static void
control_snapshot(struct ic_control *ctl, const struct ctl_msg *m, struct ctl_msg *reply,
		 char *text, size_t cap)
{
	const char *at = strchr(m->snapshot.image, '@');
	char name[CTL_NAME_LEN];
	struct owner_served *s = NULL;
	int rc = at ? 0 : -EINVAL;

	if (rc == 0) {
		snprintf(name, sizeof(name), "%.*s", (int)(at - m->snapshot.image),
			 m->snapshot.image);
		if (!(s = control_find(ctl, name)))
			rc = -ENOENT;
	}
	if (rc == 0)
		rc = owner_served_snapshot(s, m->snapshot.image);
	if (rc)
		control_fail(reply, rc, text, cap, "snapshot %s failed: %s", m->snapshot.image,
			     strerror(-rc));
}

/* STATS: who we are, our vdisks, and the stack's report. text doubles as
 * scratch space for the stack's report before the answer is written over
 * it; an answer too long for text goes without the stack. */
static void
control_stats(struct ic_control *ctl, char *text, size_t cap)
{
	struct json_object *o = json_object_new_object(), *vdisks = json_object_new_array();
	struct json_object *stack = NULL;

	if (ctl->cfg.stack && ic_stack_report(ctl->cfg.stack, text, cap) >= 0)
		stack = json_tokener_parse(text);
	if (!o || !vdisks) {
		json_object_put(o);
		json_object_put(vdisks);
		json_object_put(stack);
		snprintf(text, cap, "{}");
		return;
	}
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "program", json_object_new_string(program_invocation_short_name));
	json_object_object_add(o, "policy",
			       json_object_new_string(ic_release_policy_name(ctl->cfg.policy)));
	json_object_object_add(o, "socket", json_object_new_string(ctl->path));
	json_object_object_add(o, "vdisks", vdisks);
	for (struct owner_served *s = ctl->served; s; s = s->next) {
		struct json_object *v = json_object_new_object();
		unsigned users;
		long long last;

		if (!v)
			continue;
		s->ops->usage(s->arg, &users, &last);
		json_object_object_add(v, "name", json_object_new_string(s->name));
		json_object_object_add(v, "owned", json_object_new_boolean(
			owner_held(s->claim) && !owner_fenced(s->claim)));
		ic_json_add_u64(v, "generation", s->claim->generation);
		json_object_object_add(v, "idle_ms",
				       json_object_new_int64(last ? ic_now_ms() - last : -1));
		ic_json_add_u64(v, "clients", users);
		json_object_array_add(vdisks, v);
	}
	json_object_object_add(o, "stack", stack ? stack : json_object_new_array());
	if (ic_json_emit(json_object_get(o), text, cap) == -ENOSPC) {
		ic_log(IC_LOG_WARN, "STATS: the answer is over %zu bytes; sending it without the "
				    "filter stack", cap);
		json_object_object_add(o, "stack", json_object_new_array());
		if (ic_json_emit(json_object_get(o), text, cap) < 0)
			snprintf(text, cap, "{}");
	}
	json_object_put(o);
}

static void
control_filter(struct ic_control *ctl, const struct ctl_msg *m, struct ctl_msg *reply,
	       char *text, size_t cap)
{
	char why[256];
	int rc;

	if (!ctl->cfg.stack) {
		control_fail(reply, -ENOTSUP, text, cap, "this process has no filter stack");
		return;
	}
	/* The stack logs what was wrong (no such filter, which parameter);
	 * that, not strerror, is what the asker must read. */
	ic_log_capture(why, sizeof(why));
	switch (m->filter.op) {
	case IC_CONTROL_FILTER_LS:
		rc = ic_stack_report(ctl->cfg.stack, text, cap);
		break;
	case IC_CONTROL_FILTER_ADD:
		rc = ic_stack_add(ctl->cfg.stack, m->filter.arg, m->filter.pos);
		break;
	default:
		rc = ic_stack_remove(ctl->cfg.stack, m->filter.arg);
		break;
	}
	ic_log_capture(NULL, 0);
	if (rc == -ENOENT && m->filter.op == IC_CONTROL_FILTER_RM)
		control_fail(reply, rc, text, cap, "no filter called \"%s\" in the stack",
			     m->filter.arg);
	else if (rc < 0 && why[0])
		control_fail(reply, rc, text, cap, "%s", why);
	else if (rc < 0)
		control_fail(reply, rc, text, cap, "filter %s: %s", m->filter.arg, strerror(-rc));
}

/* Read and answer one message on fd; non-zero closes the connection. */
static int
control_serve(struct ic_control *ctl, int fd)
{
	uint8_t in[CTL_REQ_MAX];
	IC_AUTOFREE char *text = calloc(1, CTL_TEXT_MAX);
	struct ctl_msg m, reply = { .type = CTL_REPLY };
	ssize_t n = recv(fd, in, sizeof(in), MSG_TRUNC | MSG_DONTWAIT);
	int rc;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0 || !text)
		return -1;
	rc = (size_t)n > sizeof(in) ? -EBADMSG : ctl_decode(in, (size_t)n, &m);
	if (rc == 0 && m.type == CTL_REPLY)
		rc = -EBADMSG;
	reply.seq = rc ? 0 : m.seq;
	reply.reply.text = text;
	if (rc) {
		ic_log(IC_LOG_WARN, "control socket: %s message (%zd bytes); closing that connection",
		       rc == -EPROTONOSUPPORT ? "unsupported version of a" : "malformed", n);
		control_fail(&reply, rc, text, CTL_TEXT_MAX, "%s", rc == -EPROTONOSUPPORT ?
			     "unsupported protocol version" : "malformed message");
		control_send(fd, &reply, ctl->out);
		return -1;
	}
	pthread_mutex_lock(&ctl->mu);
	switch (m.type) {
	case CTL_RELEASE:
		control_release(ctl, fd, &m, &reply, text, CTL_TEXT_MAX);
		break;
	case CTL_SNAPSHOT:
		control_snapshot(ctl, &m, &reply, text, CTL_TEXT_MAX);
		break;
	case CTL_STATS:
		control_stats(ctl, text, CTL_TEXT_MAX);
		break;
	default:
		control_filter(ctl, &m, &reply, text, CTL_TEXT_MAX);
		break;
	}
	pthread_mutex_unlock(&ctl->mu);
	if (m.type == CTL_RELEASE && reply.reply.result == CTL_DONE)
		return 0; /* RELEASED went out inside the handoff */
	return control_send(fd, &reply, ctl->out) ? -1 : 0;
}

/* Accept a connection from a peer of our uid (or root). */
static void
control_accept(struct ic_control *ctl)
{
	int fd = accept4(ctl->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
	    (cred.uid != 0 && cred.uid != getuid())) {
		ic_log(IC_LOG_WARN, "control socket: refused a connection from uid %u",
		       (unsigned)cred.uid);
		close(fd);
		return;
	}
	for (int i = 0; i < CTL_CONNS; i++) {
		if (ctl->conns[i] < 0) {
			ctl->conns[i] = fd;
			return;
		}
	}
	close(fd); /* too many at once */
}

static void *
control_thread(void *arg)
{
	struct ic_control *ctl = arg;

	for (;;) {
		struct pollfd p[2 + CTL_CONNS];
		int map[CTL_CONNS], n = 2;

		p[0] = (struct pollfd){ .fd = ctl->wake[0], .events = POLLIN };
		p[1] = (struct pollfd){ .fd = ctl->listen_fd, .events = POLLIN };
		for (int i = 0; i < CTL_CONNS; i++) {
			if (ctl->conns[i] >= 0) {
				map[n - 2] = i;
				p[n++] = (struct pollfd){ .fd = ctl->conns[i], .events = POLLIN };
			}
		}
		if (poll(p, (nfds_t)n, -1) < 0)
			continue;
		if (p[0].revents)
			return NULL;
		if (p[1].revents & POLLIN)
			control_accept(ctl);
		for (int j = 2; j < n; j++) {
			int i = map[j - 2];

			if (p[j].revents && control_serve(ctl, ctl->conns[i])) {
				close(ctl->conns[i]);
				ctl->conns[i] = -1;
			}
		}
	}
}

/* $ISOCACHE_RUN_DIR/<store uuid>/<pid>-<random>.sock, making the
 * directories. Servers in different PID namespaces may share a pid, so the
 * pid alone does not make the name unique. */
static int
control_make_path(struct owner_store *os, char *path, size_t cap)
{
	const char *run = getenv("ISOCACHE_RUN_DIR");
	char uuid[IC_UUID_STRLEN], dir[PATH_MAX];
	uint8_t nonce[16];

	if (!run || !*run)
		run = IC_DEFAULT_RUN_DIR;
	ic_uuid_format(ic_meta_store_uuid(os->meta), uuid);
	snprintf(dir, sizeof(dir), "%s/%s", run, uuid);
	if ((mkdir(run, 0755) && errno != EEXIST) || (mkdir(dir, 0755) && errno != EEXIST)) {
		int rc = -errno;

		ic_log(IC_LOG_ERR, "cannot make the control socket directory %s: %s", dir,
		       strerror(errno));
		return rc;
	}
	if (ic_uuid_generate(nonce))
		return -EIO;
	if ((size_t)snprintf(path, cap, "%s/%d-%02x%02x%02x%02x.sock", dir, (int)getpid(),
			     nonce[0], nonce[1], nonce[2], nonce[3]) >= cap) {
		ic_log(IC_LOG_ERR, "control socket path under %s is too long (at most %zu bytes)",
		       dir, cap - 1);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int
control_listen(struct ic_control *ctl)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	ctl->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (ctl->listen_fd < 0)
		return -errno;
	memcpy(sa.sun_path, ctl->path, strlen(ctl->path) + 1);
	if (bind(ctl->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(ctl->listen_fd, 64)) {
		int rc = -errno;

		ic_log(IC_LOG_ERR, "control socket %s: %s", ctl->path, strerror(errno));
		return rc;
	}
	return 0;
}

int
owner_control_start(struct owner_store *os, const struct ic_control_config *cfg,
		    struct ic_control **out)
{
	struct ic_control *ctl = calloc(1, sizeof(*ctl));
	int rc;

	if (!ctl || !(ctl->out = malloc(CTL_REPLY_BUF))) {
		free(ctl);
		return -ENOMEM;
	}
	if (os->control) {
		ic_log(IC_LOG_ERR, "a control socket already serves store %s", os->dir);
		free(ctl->out);
		free(ctl);
		return -EEXIST;
	}
	ctl->os = os;
	ctl->cfg = *cfg;
	ctl->listen_fd = ctl->wake[0] = ctl->wake[1] = -1;
	for (int i = 0; i < CTL_CONNS; i++)
		ctl->conns[i] = -1;
	pthread_mutex_init(&ctl->mu, NULL);
	rc = control_make_path(os, ctl->path, sizeof(ctl->path));
	if (rc == 0)
		rc = control_listen(ctl);
	if (rc == 0 && pipe2(ctl->wake, O_CLOEXEC))
		rc = -errno;
	if (rc == 0) {
		/* The thread takes no signals: the front end decides who does. */
		sigset_t all, old;

		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		rc = -pthread_create(&ctl->thread, NULL, control_thread, ctl);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (rc) {
		if (ctl->listen_fd >= 0)
			unlink(ctl->path);
		ctl->thread = pthread_self();
		ic_control_stop(ctl);
		return rc;
	}
	os->control = ctl;
	ic_log(IC_LOG_DEBUG, "control socket %s (release policy %s)", ctl->path,
	       ic_release_policy_name(cfg->policy));
	*out = ctl;
	return 0;
}

void
ic_control_stop(struct ic_control *ctl)
{
	if (!ctl)
		return;
	if (!pthread_equal(ctl->thread, pthread_self())) {
		if (write(ctl->wake[1], "", 1) != 1)
			ic_log(IC_LOG_WARN, "control socket: cannot wake its thread: %m");
		pthread_join(ctl->thread, NULL);
		unlink(ctl->path);
	}
	for (int i = 0; i < CTL_CONNS; i++)
		if (ctl->conns[i] >= 0)
			close(ctl->conns[i]);
	for (int i = 0; i < 2; i++)
		if (ctl->wake[i] >= 0)
			close(ctl->wake[i]);
	if (ctl->listen_fd >= 0)
		close(ctl->listen_fd);
	if (ctl->os->control == ctl)
		ctl->os->control = NULL;
	pthread_mutex_destroy(&ctl->mu);
	free(ctl->out);
	free(ctl);
}
