/* A small appender for the JSON of reports: the caller's buffer, no
 * allocation, and a sticky overflow so a report either fits or says -ENOSPC. */
#include "filter/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

void
ic_json_init(struct ic_json *j, char *buf, size_t cap)
{
	j->buf = buf;
	j->cap = cap;
	j->len = 0;
	j->overflow = cap == 0;
	if (cap)
		buf[0] = '\0';
}

void
ic_json_printf(struct ic_json *j, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (j->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(j->buf + j->len, j->cap - j->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= j->cap - j->len) {
		j->overflow = true;
		j->buf[j->len] = '\0';
		return;
	}
	j->len += (size_t)n;
}

void
ic_json_string(struct ic_json *j, const char *s)
{
	ic_json_printf(j, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			ic_json_printf(j, "\\%c", *p);
		else if (*p < 0x20)
			ic_json_printf(j, "\\u%04x", *p);
		else
			ic_json_printf(j, "%c", *p);
	}
	ic_json_printf(j, "\"");
}

void
ic_json_array(struct ic_json *j, const char *name, const _Atomic uint64_t *v, unsigned n)
{
	unsigned last = 0;

	for (unsigned i = 0; i < n; i++)
		if (atomic_load_explicit(&v[i], memory_order_relaxed))
			last = i + 1;
	ic_json_printf(j, "\"%s\":[", name);
	for (unsigned i = 0; i < last; i++)
		ic_json_printf(
		    j, "%s%llu", i ? "," : "",
		    (unsigned long long)atomic_load_explicit(&v[i], memory_order_relaxed));
	ic_json_printf(j, "]");
}

void
ic_json_report(struct ic_json *j, int (*report)(void *inst, char *buf, size_t cap), void *inst)
{
	int n;

	if (j->overflow)
		return;
	n = report ? report(inst, j->buf + j->len, j->cap - j->len) : -ENOENT;
	if (n == -ENOSPC || (n >= 0 && (size_t)n >= j->cap - j->len)) {
		j->overflow = true;
		j->buf[j->len] = '\0';
		return;
	}
	if (n < 0) {
		j->buf[j->len] = '\0';
		ic_json_printf(j, "null");
		return;
	}
	j->len += (size_t)n;
}

int
ic_json_finish(struct ic_json *j)
{
	return j->overflow ? -ENOSPC : (int)j->len;
}
