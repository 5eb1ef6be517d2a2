/* isocache-admin's --json output. Indented, so a person can read it too;
 * scripts parse it (json.load, jq), so its shape, not its spacing, is the
 * interface. */
#include "admin/json.h"

#include <stdio.h>

#include "admin/admin.h"

int
admin_json_print(struct json_object *o)
{
	const char *text = o ? json_object_to_json_string_ext(
				       o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE)
			     : NULL;

	if (text)
		printf("%s\n", text);
	json_object_put(o);
	return text ? 0 : admin_fail("json", "out of memory");
}
