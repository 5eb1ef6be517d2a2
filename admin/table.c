/* Text tables whose columns are as wide as their widest cell, so a long
 * name (up to 257 characters with its snapshot) never shifts the columns
 * after it. Cells are copied; the last column is not padded. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"

struct admin_table {
	unsigned ncols, nrows, cap; /* rows include the header */
	const char *align;          /* per column: 'l' or 'r' */
	char **cells;               /* nrows * ncols */
	int err;                    /* the first failure, reported by print */
};

struct admin_table *
admin_table_new(unsigned ncols, const char *align, ...)
{
	struct admin_table *t = calloc(1, sizeof(*t));
	va_list ap;

	if (!t)
		return NULL;
	t->ncols = ncols;
	t->align = align;
	va_start(ap, align);
	admin_table_vrow(t, ap);
	va_end(ap);
	return t;
}

void
admin_table_vrow(struct admin_table *t, va_list ap)
{
	if (t->nrows == t->cap) {
		unsigned cap = t->cap ? 2 * t->cap : 16;
		char **grown = realloc(t->cells, (size_t)cap * t->ncols * sizeof(*grown));

		if (!grown) {
			t->err = -ENOMEM;
			return;
		}
		t->cells = grown;
		t->cap = cap;
	}
	for (unsigned c = 0; c < t->ncols; c++) {
		const char *s = va_arg(ap, const char *);
		char *copy = strdup(s ? s : "-");

		if (!copy)
			t->err = -ENOMEM;
		t->cells[t->nrows * t->ncols + c] = copy;
	}
	t->nrows++;
}

void
admin_table_row(struct admin_table *t, ...)
{
	va_list ap;

	va_start(ap, t);
	admin_table_vrow(t, ap);
	va_end(ap);
}

int
admin_table_print(struct admin_table *t, FILE *out, const char *indent)
{
	size_t width[16] = { 0 };

	if (!t)
		return -ENOMEM;
	if (t->err || t->ncols > sizeof(width) / sizeof(width[0]))
		return t->err ? t->err : -EINVAL;
	for (unsigned r = 0; r < t->nrows; r++)
		for (unsigned c = 0; c < t->ncols; c++) {
			size_t n = strlen(t->cells[r * t->ncols + c]);

			width[c] = n > width[c] ? n : width[c];
		}
	for (unsigned r = 0; r < t->nrows; r++) {
		fputs(indent, out);
		for (unsigned c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			bool last = c + 1 == t->ncols;

			if (t->align[c] == 'r')
				fprintf(out, "%*s%s", (int)width[c], s, last ? "" : "  ");
			else if (last)
				fputs(s, out);
			else
				fprintf(out, "%-*s  ", (int)width[c], s);
		}
		fputc('\n', out);
	}
	return 0;
}

void
admin_table_free(struct admin_table *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}
