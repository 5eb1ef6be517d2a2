/* libFuzzer target: the small parsers of names and sizes given on command
 * lines and in control messages, ic_size_parse and ic_name_check. An
 * accepted size prints as a plain number that parses back to itself; an
 * accepted name is NAME or NAME@SNAP of the allowed characters. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/size.h"
#include "isocache/vdisk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fz_size(const char *text)
{
	char plain[32], human[32];
	uint64_t v, again;

	if (ic_size_parse(text, &v) < 0)
		return;
	snprintf(plain, sizeof(plain), "%" PRIu64, v);
	if (ic_size_parse(plain, &again) < 0 || again != v)
		abort();
	ic_size_format(v, human, sizeof(human));
}

static void
fz_name(const char *text)
{
	const char *at = strchr(text, '@');
	size_t len = strlen(text);

	if (ic_name_check(text) < 0)
		return;
	if (len == 0 || len > 2 * IC_NAME_MAX + 1 || (at && strchr(at + 1, '@')) ||
	    strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@") != len)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = strndup((const char *)data, size);

	if (!text)
		return 0;
	ic_log_level = IC_LOG_ERR;
	fz_size(text);
	fz_name(text);
	free(text);
	return 0;
}
