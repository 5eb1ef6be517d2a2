/* isocached's --metrics listener (metrics.c). */
#ifndef IC_CACHED_METRICS_H
#define IC_CACHED_METRICS_H

struct ic_metrics;

/* Serve the daemon's totals on where (HOST:PORT or unix:PATH; NULL: no
 * listener, *out NULL), asking them of the daemon listening on listen_fd.
 * Start it after the loop blocked its signals, so its thread inherits the
 * mask. Returns 0 or -errno (logged). Stop with ic_metrics_stop. */
int cached_metrics_start(const char *where, int listen_fd, struct ic_metrics **out);

#endif
