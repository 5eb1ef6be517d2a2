/* TLS for isocache-nbd with GnuTLS: the credentials loaded at start-up
 * (x509 certificates or pre-shared keys) and, per client, a TLS stream
 * behind the protocol engine's ic_nbd_io (see struct ic_nbd_tls). */
#ifndef IC_NBD_TLS_H
#define IC_NBD_TLS_H

#include "nbd/nbd.h"

struct srv_tls;

/* Load credentials: certdir holds server-cert.pem and server-key.pem (as
 * qemu's tls-creds-x509 dir), or pskfile is a psktool keys file
 * (username:hexkey lines). Exactly one of them. verify_peer (x509 only):
 * clients must present a certificate signed by certdir/ca-cert.pem.
 * Returns 0 or -errno after logging what is wrong. */
int srv_tls_new(const char *certdir, const char *pskfile, bool verify_peer,
		struct srv_tls **out);
void srv_tls_free(struct srv_tls *tls);

/* One client's TLS stream over fds, made by srv_tls_start. */
struct srv_tls_conn {
	struct srv_tls *tls;
	struct ic_nbd_fds *fds;
	void *session; /* gnutls_session_t once started */
};

/* ic_nbd_tls.start with arg a struct srv_tls_conn: the TLS handshake as
 * server on conn->fds, then io reads and writes through it. */
int srv_tls_start(void *arg, struct ic_nbd_io *io);
/* End the client's TLS stream (close_notify when possible) and free it. */
void srv_tls_conn_end(struct srv_tls_conn *conn);

#endif
