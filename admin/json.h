/* A small JSON reader for what isocache processes report (control-socket
 * STATS): parse text into a tree of nodes, look members up by key. Strings
 * are kept as spans of the text (escapes are not decoded; reports use
 * none in keys). */
#ifndef IC_ADMIN_JSON_H
#define IC_ADMIN_JSON_H

#include <stddef.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_node {
	enum json_type type;
	const char *key; /* member name in an object, else NULL */
	size_t key_len;
	const char *str; /* JSON_STRING: the characters between the quotes */
	size_t len;
	double num;      /* JSON_NUMBER; JSON_BOOL: 0 or 1 */
	int child;       /* first element or member, -1 if none */
	int next;        /* next sibling, -1 if none */
};

struct json_doc {
	struct json_node *nodes; /* nodes[0] is the root */
	int n, cap;
};

/* Parse text; returns 0 or -EINVAL (not JSON) / -ENOMEM. */
int json_parse(const char *text, struct json_doc *doc);
void json_free(struct json_doc *doc);
/* The member key of object node, or NULL. */
const struct json_node *json_get(const struct json_doc *doc, const struct json_node *node,
				 const char *key);
/* Children of node in order: for (c = json_first(d, n); c; c = json_next(d, c)). */
const struct json_node *json_first(const struct json_doc *doc, const struct json_node *node);
const struct json_node *json_next(const struct json_doc *doc, const struct json_node *node);

#endif
