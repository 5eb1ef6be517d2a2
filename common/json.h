/* JSON through json-c, for what isocache reports (filter reports, the
 * control socket's STATS): build a tree of json_object, then write it into a
 * caller's buffer. Trees are built on control paths only, never per I/O. */
#ifndef IC_COMMON_JSON_H
#define IC_COMMON_JSON_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* How reports are written: compact, and '/' left alone (paths are common). */
#define IC_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Write o into buf (cap bytes, NUL-terminated) and release o. Returns the
 * length, -ENOSPC if it does not fit (buf is then unchanged), or -ENOMEM
 * (o NULL: building it ran out of memory). */
int ic_json_emit(struct json_object *o, char *buf, size_t cap);
/* o[key] = v, an unsigned 64-bit number. */
void ic_json_add_u64(struct json_object *o, const char *key, uint64_t v);
/* o[key] = [v0, v1, ...] up to the last nonzero value. */
void ic_json_add_u64_array(struct json_object *o, const char *key, const _Atomic uint64_t *v,
			   unsigned n);

#endif
