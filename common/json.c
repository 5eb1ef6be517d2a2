/* JSON through json-c. Why a library rather than our own printf appender
 * and reader: escaping (a vdisk name with a quote broke the STATS answer),
 * 64-bit numbers and nesting other components' reports are done once, by
 * code that many projects exercise. */
#include "common/json.h"

#include <errno.h>
#include <string.h>

int
ic_json_emit(struct json_object *o, char *buf, size_t cap)
{
	const char *text;
	size_t len;

	if (!o)
		return -ENOMEM;
	text = json_object_to_json_string_ext(o, IC_JSON_FLAGS);
	len = text ? strlen(text) : 0;
	if (text && len < cap)
		memcpy(buf, text, len + 1);
	json_object_put(o);
	if (!text)
		return -ENOMEM;
	return len < cap ? (int)len : -ENOSPC;
}

void
ic_json_add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

void
ic_json_add_u64_array(struct json_object *o, const char *key, const _Atomic uint64_t *v,
		      unsigned n)
{
	struct json_object *a = json_object_new_array();
	unsigned last = 0;

	for (unsigned i = 0; i < n; i++)
		if (atomic_load_explicit(&v[i], memory_order_relaxed))
			last = i + 1;
	for (unsigned i = 0; a && i < last; i++)
		json_object_array_add(a, json_object_new_uint64(atomic_load_explicit(
						 &v[i], memory_order_relaxed)));
	json_object_object_add(o, key, a);
}
