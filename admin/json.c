#include "admin/json.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

struct json_parser {
	const char *p;
	struct json_doc *doc;
};

static void
json_space(struct json_parser *ps)
{
	while (isspace((unsigned char)*ps->p))
		ps->p++;
}

static int
json_new(struct json_parser *ps)
{
	struct json_doc *d = ps->doc;

	if (d->n == d->cap) {
		int cap = d->cap ? d->cap * 2 : 64;
		struct json_node *grown = realloc(d->nodes, (size_t)cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		d->nodes = grown;
		d->cap = cap;
	}
	d->nodes[d->n] = (struct json_node){ .child = -1, .next = -1 };
	return d->n++;
}

/* A string at ps->p (on its opening quote): its span, ps->p past it. */
static int
json_string(struct json_parser *ps, const char **s, size_t *len)
{
	const char *start = ++ps->p;

	while (*ps->p && *ps->p != '"') {
		if (*ps->p == '\\' && ps->p[1])
			ps->p++;
		ps->p++;
	}
	if (*ps->p != '"')
		return -EINVAL;
	*s = start;
	*len = (size_t)(ps->p - start);
	ps->p++;
	return 0;
}

static int json_value(struct json_parser *ps, int depth);

/* The elements of an array or members of an object, linked as children. */
static int
json_container(struct json_parser *ps, int node, int depth, bool object)
{
	char close = object ? '}' : ']';
	int last = -1;

	ps->p++;
	json_space(ps);
	if (*ps->p == close) {
		ps->p++;
		return 0;
	}
	for (;;) {
		const char *key = NULL;
		size_t key_len = 0;
		int child;

		json_space(ps);
		if (object) {
			if (*ps->p != '"' || json_string(ps, &key, &key_len))
				return -EINVAL;
			json_space(ps);
			if (*ps->p++ != ':')
				return -EINVAL;
		}
		child = json_value(ps, depth + 1);
		if (child < 0)
			return child;
		ps->doc->nodes[child].key = key;
		ps->doc->nodes[child].key_len = key_len;
		if (last < 0)
			ps->doc->nodes[node].child = child;
		else
			ps->doc->nodes[last].next = child;
		last = child;
		json_space(ps);
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p++ != close)
			return -EINVAL;
		return 0;
	}
}

static int
json_value(struct json_parser *ps, int depth)
{
	struct json_node *n;
	int node, rc = 0;
	char *end;

	if (depth > JSON_MAX_DEPTH)
		return -EINVAL;
	json_space(ps);
	node = json_new(ps);
	if (node < 0)
		return node;
	n = &ps->doc->nodes[node];
	switch (*ps->p) {
	case '{':
	case '[':
		n->type = *ps->p == '{' ? JSON_OBJECT : JSON_ARRAY;
		rc = json_container(ps, node, depth, n->type == JSON_OBJECT);
		break;
	case '"':
		n->type = JSON_STRING;
		rc = json_string(ps, &n->str, &n->len);
		break;
	case 't':
	case 'f':
	case 'n': {
		const char *word = *ps->p == 't' ? "true" : *ps->p == 'f' ? "false" : "null";

		n->type = *ps->p == 'n' ? JSON_NULL : JSON_BOOL;
		n->num = *ps->p == 't';
		rc = strncmp(ps->p, word, strlen(word)) ? -EINVAL : 0;
		if (rc == 0)
			ps->p += strlen(word);
		break;
	}
	default:
		n->type = JSON_NUMBER;
		n->num = strtod(ps->p, &end);
		rc = end == ps->p ? -EINVAL : 0;
		ps->p = end;
	}
	return rc ? rc : node;
}

int
json_parse(const char *text, struct json_doc *doc)
{
	struct json_parser ps = { text, doc };
	int rc;

	*doc = (struct json_doc){ 0 };
	rc = json_value(&ps, 0);
	json_space(&ps);
	if (rc >= 0 && *ps.p)
		rc = -EINVAL;
	if (rc < 0) {
		json_free(doc);
		return rc;
	}
	return 0;
}

void
json_free(struct json_doc *doc)
{
	free(doc->nodes);
	*doc = (struct json_doc){ 0 };
}

const struct json_node *
json_first(const struct json_doc *doc, const struct json_node *node)
{
	return node && node->child >= 0 ? &doc->nodes[node->child] : NULL;
}

const struct json_node *
json_next(const struct json_doc *doc, const struct json_node *node)
{
	return node->next >= 0 ? &doc->nodes[node->next] : NULL;
}

const struct json_node *
json_get(const struct json_doc *doc, const struct json_node *node, const char *key)
{
	size_t len = strlen(key);

	if (!node || node->type != JSON_OBJECT)
		return NULL;
	for (const struct json_node *c = json_first(doc, node); c; c = json_next(doc, c))
		if (c->key_len == len && memcmp(c->key, key, len) == 0)
			return c;
	return NULL;
}
