/* Base64 (RFC 4648, padded): the gateway carries every key and value so.
 * Ours rather than a library's: no library already linked offers it, and
 * it is forty lines tested by tests/unit/test_etcd_codec.c. */
#include "etcd/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
ic_etcd_b64_encode(const void *data, size_t len, char *out, size_t cap)
{
	const unsigned char *p = data;
	size_t need = IC_ETCD_B64_LEN(len), o = 0;

	if (need >= cap)
		return -ENOSPC;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return (int)o;
}

static int
b64_value(char c)
{
	const char *at = c ? strchr(b64_alphabet, c) : NULL;

	return at ? (int)(at - b64_alphabet) : -1;
}

int
ic_etcd_b64_decode(const char *text, size_t tlen, void **out, size_t *len)
{
	unsigned char *buf;
	size_t o = 0;

	if (tlen % 4)
		return -EINVAL;
	buf = malloc(tlen / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < tlen; i += 4) {
		bool last = i + 4 == tlen;
		int a = b64_value(text[i]), b = b64_value(text[i + 1]);
		int c = last && text[i + 2] == '=' && text[i + 3] == '=' ? 0 : b64_value(text[i + 2]);
		int d = last && text[i + 3] == '=' ? 0 : b64_value(text[i + 3]);
		uint32_t v;

		if (a < 0 || b < 0 || c < 0 || d < 0) {
			free(buf);
			return -EINVAL;
		}
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		buf[o++] = v >> 16;
		if (!last || text[i + 2] != '=')
			buf[o++] = (v >> 8) & 0xff;
		if (!last || text[i + 3] != '=')
			buf[o++] = v & 0xff;
	}
	buf[o] = '\0';
	*out = buf;
	*len = o;
	return 0;
}
