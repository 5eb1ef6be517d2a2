/* TLS for isocache-nbd (GnuTLS), after NBD proto.md "TLS support" and the
 * way nbdkit's server/crypto.c sets GnuTLS up: credentials are loaded once;
 * each client that sends NBD_OPT_STARTTLS gets a session over its socket,
 * and the protocol engine then reads and writes through it.
 *
 * Threads: a connection has one reader at a time (conn.c's read lock) and
 * one sender at a time (its send lock), possibly in two threads at once;
 * GnuTLS allows one record_recv and one record_send in parallel on a
 * session. Nothing renegotiates after the handshake. */
#include "nbd/tls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/dynlib.h"
#include "common/log.h"

/* PSK needs its key exchanges named; x509 uses the library's defaults. */
#define TLS_PSK_PRIORITY "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK"
/* Pieces of replies below this size are corked into few records, this
 * many bytes at a time; larger payloads go out as they are, so a 32 MiB
 * read is not copied into a second buffer. */
#define TLS_CORK_MAX (64u << 10)

/* GnuTLS is loaded when TLS is first set up (common/dynlib.h): linked, it
 * and the seven libraries it brings (p11-kit, nettle, hogweed, gmp,
 * tasn1, idn2, unistring) were mapped and relocated in every isocache-nbd,
 * TLS or not: 244 KiB of private memory and 0.5 MiB of PSS in each one
 * serving a clone without TLS (smaps of 4 front ends, with libmicrohttpd,
 * which brought GnuTLS too). */
#define TLS_LIBGNUTLS "libgnutls.so.30"
#define TLS_CALLS(X) \
	X(bye) X(certificate_allocate_credentials) X(certificate_free_credentials) \
	X(certificate_server_set_request) X(certificate_set_x509_key_file) \
	X(certificate_set_x509_trust_file) X(credentials_set) X(deinit) X(error_is_fatal) \
	X(handshake) X(handshake_set_timeout) X(init) X(priority_set_direct) \
	X(psk_allocate_server_credentials) X(psk_free_server_credentials) \
	X(psk_server_get_username) X(psk_set_server_credentials_file) X(record_cork) \
	X(record_recv) X(record_send) X(record_uncork) X(session_set_verify_cert) \
	X(set_default_priority) X(strerror) X(transport_set_int2)
#define TLS_FIELD(name) __typeof__(&gnutls_##name) name;
#define TLS_SYM(name) { "gnutls_" #name, (void **)&gt.name },

/* The GnuTLS calls of this file, from the library loaded once. */
static struct {
	TLS_CALLS(TLS_FIELD)
} gt;

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_loaded; /* 0 once GnuTLS is loaded */

static void
tls_load(void)
{
	static const struct ic_dynsym syms[] = { TLS_CALLS(TLS_SYM) };

	tls_loaded = ic_dynlib_load("TLS", TLS_LIBGNUTLS, syms, sizeof(syms) / sizeof(syms[0]));
}

struct srv_tls {
	gnutls_certificate_credentials_t x509;
	gnutls_psk_server_credentials_t psk;
	bool verify_peer; /* x509: clients must show a certificate the CA signed */
};

static int
tls_fail(const char *what, const char *path, int grc)
{
	ic_log(IC_LOG_ERR, "TLS: %s %s: %s", what, path, gt.strerror(grc));
	return -EINVAL;
}

static int
tls_load_x509(struct srv_tls *t, const char *dir)
{
	char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
	int grc;

	snprintf(cert, sizeof(cert), "%s/server-cert.pem", dir);
	snprintf(key, sizeof(key), "%s/server-key.pem", dir);
	snprintf(ca, sizeof(ca), "%s/ca-cert.pem", dir);
	grc = gt.certificate_allocate_credentials(&t->x509);
	if (grc < 0)
		return tls_fail("cannot allocate credentials for", dir, grc);
	grc = gt.certificate_set_x509_key_file(t->x509, cert, key, GNUTLS_X509_FMT_PEM);
	if (grc < 0)
		return tls_fail("cannot load server-cert.pem and server-key.pem from", dir, grc);
	/* The CA checks clients' certificates (--tls-verify-peer); without that
	 * it is optional. */
	if (t->verify_peer && access(ca, R_OK) < 0) {
		ic_log(IC_LOG_ERR, "TLS: --tls-verify-peer needs %s: %m", ca);
		return -EINVAL;
	}
	if (access(ca, R_OK) == 0) {
		grc = gt.certificate_set_x509_trust_file(t->x509, ca, GNUTLS_X509_FMT_PEM);
		if (grc < 0)
			return tls_fail("cannot load", ca, grc);
	}
	return 0;
}

static int
tls_load_psk(struct srv_tls *t, const char *file)
{
	int grc;

	/* GnuTLS reads the file only when a client names a user: check now. */
	if (access(file, R_OK) < 0) {
		int rc = -errno;

		ic_log(IC_LOG_ERR, "TLS: cannot read the PSK file %s: %s", file, strerror(-rc));
		return rc;
	}
	grc = gt.psk_allocate_server_credentials(&t->psk);
	if (grc < 0)
		return tls_fail("cannot allocate credentials for", file, grc);
	grc = gt.psk_set_server_credentials_file(t->psk, file);
	if (grc < 0)
		return tls_fail("cannot use the PSK file", file, grc);
	return 0;
}

int
srv_tls_new(const char *certdir, const char *pskfile, bool verify_peer, struct srv_tls **out)
{
	struct srv_tls *t;
	int rc;

	if (!certdir == !pskfile) {
		ic_log(IC_LOG_ERR, "TLS: give either --tls-certificates or --tls-psk");
		return -EINVAL;
	}
	if (verify_peer && !certdir) {
		ic_log(IC_LOG_ERR, "TLS: --tls-verify-peer checks x509 certificates: it needs "
		       "--tls-certificates (PSK always authenticates the client)");
		return -EINVAL;
	}
	pthread_once(&tls_once, tls_load);
	if (tls_loaded < 0)
		return tls_loaded;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->verify_peer = verify_peer;
	rc = certdir ? tls_load_x509(t, certdir) : tls_load_psk(t, pskfile);
	if (rc < 0) {
		srv_tls_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void
srv_tls_free(struct srv_tls *t)
{
	if (!t)
		return;
	if (t->x509)
		gt.certificate_free_credentials(t->x509);
	if (t->psk)
		gt.psk_free_server_credentials(t->psk);
	free(t);
}

/* A GnuTLS result as -errno: -ECONNRESET when the peer went away. */
static int
tls_errno(ssize_t grc)
{
	if (grc == 0 || grc == GNUTLS_E_PREMATURE_TERMINATION || grc == GNUTLS_E_PUSH_ERROR ||
	    grc == GNUTLS_E_PULL_ERROR)
		return -ECONNRESET;
	ic_log(IC_LOG_DEBUG, "nbd: TLS stream broken: %s", gt.strerror((int)grc));
	return -EPROTO;
}

static ssize_t
tls_recv_once(gnutls_session_t s, void *buf, size_t cap)
{
	ssize_t n;

	do {
		n = gt.record_recv(s, buf, cap);
	} while (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_AGAIN);
	return n;
}

static int
tls_recv_some(void *arg, void *buf, size_t cap)
{
	struct srv_tls_conn *c = arg;
	ssize_t n = tls_recv_once(c->session, buf, cap > INT_MAX ? INT_MAX : cap);

	return n > 0 ? (int)n : tls_errno(n);
}

static int
tls_recv(void *arg, void *buf, size_t len)
{
	struct srv_tls_conn *c = arg;
	uint8_t *p = buf;

	while (len) {
		ssize_t n = tls_recv_once(c->session, p, len);

		if (n <= 0)
			return tls_errno(n);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
tls_send_all(gnutls_session_t s, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = gt.record_send(s, p, len);

		if (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_AGAIN)
			continue;
		if (n < 0)
			return tls_errno(n);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Push what the record layer holds corked. */
static int
tls_uncork(gnutls_session_t s)
{
	int grc;

	do {
		grc = gt.record_uncork(s, GNUTLS_RECORD_WAIT);
	} while (grc == GNUTLS_E_INTERRUPTED || grc == GNUTLS_E_AGAIN);
	return grc < 0 ? tls_errno(grc) : 0;
}

/* A batch of replies (nbd/sendq.c): runs of small pieces (headers, 4 KiB
 * reads) are corked into full records, up to TLS_CORK_MAX at a time;
 * a larger piece goes out as it is. */
static int
tls_send(void *arg, const struct iovec *iov, int n)
{
	struct srv_tls_conn *c = arg;
	size_t corked = 0;
	bool cork = false;
	int i, rc = 0;

	for (i = 0; i < n && rc == 0; i++) {
		size_t len = iov[i].iov_len;

		if (cork && (len > TLS_CORK_MAX || corked + len > TLS_CORK_MAX)) {
			rc = tls_uncork(c->session);
			cork = false;
			corked = 0;
		}
		if (rc == 0 && len <= TLS_CORK_MAX && !cork) {
			gt.record_cork(c->session);
			cork = true;
		}
		if (rc == 0)
			rc = tls_send_all(c->session, iov[i].iov_base, len);
		corked += cork ? len : 0;
	}
	if (cork) {
		int urc = tls_uncork(c->session);

		rc = rc ? rc : urc;
	}
	return rc;
}

static void
tls_hangup(void *arg)
{
	struct srv_tls_conn *c = arg;

	shutdown(c->fds->in, SHUT_RDWR);
}

static int
tls_session(struct srv_tls_conn *c, gnutls_session_t *out)
{
	const struct srv_tls *t = c->tls;
	gnutls_session_t s;
	int grc = gt.init(&s, GNUTLS_SERVER);

	if (grc < 0)
		return grc;
	if (t->psk) {
		grc = gt.priority_set_direct(s, TLS_PSK_PRIORITY, NULL);
		if (grc == 0)
			grc = gt.credentials_set(s, GNUTLS_CRD_PSK, t->psk);
	} else {
		grc = gt.set_default_priority(s);
		if (grc == 0)
			grc = gt.credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->x509);
		gt.certificate_server_set_request(s, t->verify_peer ? GNUTLS_CERT_REQUIRE :
									 GNUTLS_CERT_IGNORE);
		/* The handshake then fails unless the chain leads to ca-cert.pem. */
		if (t->verify_peer)
			gt.session_set_verify_cert(s, NULL, 0);
	}
	if (grc < 0) {
		gt.deinit(s);
		return grc;
	}
	gt.transport_set_int2(s, c->fds->in, c->fds->out);
	gt.handshake_set_timeout(s, GNUTLS_DEFAULT_HANDSHAKE_TIMEOUT);
	*out = s;
	return 0;
}

int
srv_tls_start(void *arg, struct ic_nbd_io *io)
{
	struct srv_tls_conn *c = arg;
	gnutls_session_t s;
	int grc = tls_session(c, &s);

	if (grc < 0) {
		ic_log(IC_LOG_ERR, "nbd: cannot set up a TLS session: %s", gt.strerror(grc));
		return -ENOMEM;
	}
	do {
		grc = gt.handshake(s);
	} while (grc < 0 && !gt.error_is_fatal(grc));
	if (grc < 0) {
		ic_log(IC_LOG_INFO, "nbd: TLS handshake with a client failed: %s",
		       gt.strerror(grc));
		gt.deinit(s);
		return -ECONNRESET;
	}
	if (c->tls->psk)
		ic_log(IC_LOG_DEBUG, "nbd: TLS client %s", gt.psk_server_get_username(s));
	c->session = s;
	/* No wait: bytes GnuTLS has read but not yet decrypted are invisible
	 * to a poll of the socket, so a TLS connection keeps its pages. */
	*io = (struct ic_nbd_io){ .recv = tls_recv, .recv_some = tls_recv_some, .send = tls_send,
				  .hangup = tls_hangup, .arg = c };
	return 0;
}

void
srv_tls_conn_end(struct srv_tls_conn *c)
{
	struct timeval tv = { .tv_sec = 1 };

	if (!c->session)
		return;
	/* close_notify, but never wait long on a client that reads nothing. */
	setsockopt(c->fds->out, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	gt.bye(c->session, GNUTLS_SHUT_WR);
	gt.deinit(c->session);
	c->session = NULL;
}
