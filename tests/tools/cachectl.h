/* isocache-cachectl's shared pieces: options, failing, raw sessions. */
#ifndef IC_CACHED_CACHECTL_H
#define IC_CACHED_CACHECTL_H

extern const char *cachectl_socket;
extern unsigned cachectl_timeout;

/* Print what failed and why; returns 1, the exit status. */
int cachectl_fail(const char *what, int rc);
/* A raw SEQPACKET connection to the daemon (5 s timeouts), or -errno. */
int cachectl_connect_raw(void);
/* Exit 0 if the daemon ends the session (EOF or reset) within the timeout. */
int cachectl_expect_end(int sock);
/* The "shm KIND PATH" attacks (cachectl_shm.c). */
int cachectl_shm(const char *kind, const char *path);

#endif
