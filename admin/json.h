/* isocache-admin's --json output, through json-c: a command builds a tree of
 * json_object and prints it here, indented, one document per run. */
#ifndef IC_ADMIN_JSON_H
#define IC_ADMIN_JSON_H

#include <json-c/json.h>

/* Print o on stdout, indented, with a newline; release o. Returns 0, or 1
 * (having said why) when o is NULL: building it ran out of memory. */
int admin_json_print(struct json_object *o);

#endif
