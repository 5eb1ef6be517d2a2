/* Prometheus metrics over HTTP: an opt-in listener (--metrics) that answers
 * every GET with the text exposition format (version 0.0.4), written by the
 * program's own callback at each scrape. The HTTP side is libmicrohttpd, on
 * a thread of its own: the callback runs on that thread, so it may only
 * read counters that are safe to read from another thread (atomics, or a
 * copy taken under a lock). */
#ifndef IC_COMMON_METRICS_H
#define IC_COMMON_METRICS_H

#include <stdint.h>
#include <stdio.h>

struct ic_metrics;

/* Write the exposition to out. Called once per scrape, on the listener's
 * thread. */
typedef void (*ic_metrics_fn)(FILE *out, void *arg);

/* Listen on where: "HOST:PORT" ("127.0.0.1:9273", "[::1]:9273") or
 * "unix:/path" (an existing socket file there is replaced), and serve
 * fn's exposition from then on. Returns 0 or -errno (logged: a bad address,
 * the port in use, ...). */
int ic_metrics_start(const char *where, ic_metrics_fn fn, void *arg, struct ic_metrics **out);
/* Stop listening (after the scrape in progress, if any) and free m; NULL is
 * ignored. A Unix socket file is removed. */
void ic_metrics_stop(struct ic_metrics *m);

/* "# HELP name help" and "# TYPE name type", before a family's samples. */
void ic_metrics_family(FILE *out, const char *name, const char *type, const char *help);
/* A label value, escaped as the format requires (\\, \" and \n). */
void ic_metrics_label(FILE *out, const char *value);

#endif
