/* etcd://HOST:PORT[,HOST:PORT...]/PREFIX (etcds:// over TLS): how a user
 * names an etcd store (isocache-admin init --meta). Checked here, once, so
 * the transport may paste an endpoint into "http://%s/v3/..." without
 * surprises. */
#include "etcd/etcd.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define URL_SCHEME "etcd://"
#define URL_SCHEME_TLS "etcds://"

bool
ic_etcd_url_like(const char *text)
{
	return strncmp(text, URL_SCHEME, strlen(URL_SCHEME)) == 0 ||
	       strncmp(text, URL_SCHEME_TLS, strlen(URL_SCHEME_TLS)) == 0;
}

/* HOST:PORT, len characters at s: a name or IPv4 address of letters,
 * digits, '.', '-', '_', or a bracketed IPv6 address; PORT 1..65535. */
static int
url_endpoint(const char *s, size_t len, char *out)
{
	const char *colon = NULL, *host_end;
	unsigned long port;
	char *end;

	if (len == 0) {
		ic_log(IC_LOG_ERR, "etcd endpoint list: an empty endpoint");
		return -EINVAL;
	}
	if (len >= IC_ETCD_ENDPOINT_MAX) {
		ic_log(IC_LOG_ERR, "etcd endpoint '%.*s': longer than %d characters", (int)len, s,
		       IC_ETCD_ENDPOINT_MAX - 1);
		return -E2BIG;
	}
	if (s[0] == '[') {
		host_end = memchr(s, ']', len);
		if (!host_end || host_end == s + 1 || host_end + 1 == s + len || host_end[1] != ':')
			goto bad;
		for (const char *p = s + 1; p < host_end; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				goto bad;
		colon = host_end + 1;
	} else {
		for (const char *p = s; p < s + len; p++) {
			if (*p == ':') {
				colon = p;
				break;
			}
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
				goto bad;
		}
		if (!colon || colon == s)
			goto bad;
	}
	if (colon + 1 == s + len || !isdigit((unsigned char)colon[1]))
		goto bad;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (end != s + len || errno || port == 0 || port > 65535)
		goto bad;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
bad:
	ic_log(IC_LOG_ERR, "etcd endpoint '%.*s': not HOST:PORT (PORT 1..65535)", (int)len, s);
	return -EINVAL;
}

static int
url_endpoints(const char *s, size_t len, struct ic_etcd_url *out)
{
	const char *end = s + len;
	int rc;

	out->n = 0;
	out->prefix[0] = '\0';
	out->tls = false;
	for (const char *p = s; p <= end;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma ? comma : end;

		if (out->n == IC_ETCD_ENDPOINTS_MAX) {
			ic_log(IC_LOG_ERR, "etcd endpoint list '%.*s': more than %d endpoints",
			       (int)len, s, IC_ETCD_ENDPOINTS_MAX);
			return -E2BIG;
		}
		rc = url_endpoint(p, (size_t)(stop - p), out->endpoint[out->n]);
		if (rc < 0)
			return rc;
		out->n++;
		p = stop + 1;
	}
	return 0;
}

int
ic_etcd_endpoints_parse(const char *list, struct ic_etcd_url *out)
{
	return url_endpoints(list, strlen(list), out);
}

int
ic_etcd_url_parse(const char *url, struct ic_etcd_url *out)
{
	const char *hosts, *slash;
	size_t plen;
	int rc;

	if (!ic_etcd_url_like(url)) {
		ic_log(IC_LOG_ERR, "etcd URL '%s': does not start with %s or %s", url, URL_SCHEME,
		       URL_SCHEME_TLS);
		return -EINVAL;
	}
	hosts = strstr(url, "://") + 3;
	slash = strchr(hosts, '/');
	if (!slash) {
		ic_log(IC_LOG_ERR, "etcd URL '%s': no /PREFIX after the endpoints", url);
		return -EINVAL;
	}
	rc = url_endpoints(hosts, (size_t)(slash - hosts), out);
	if (rc < 0)
		return rc;
	while (*slash == '/')
		slash++;
	plen = strlen(slash);
	while (plen > 0 && slash[plen - 1] == '/')
		plen--;
	if (plen == 0) {
		ic_log(IC_LOG_ERR, "etcd URL '%s': the PREFIX is empty", url);
		return -EINVAL;
	}
	if (plen >= IC_ETCD_PREFIX_MAX) {
		ic_log(IC_LOG_ERR, "etcd URL '%s': PREFIX longer than %d characters", url,
		       IC_ETCD_PREFIX_MAX - 1);
		return -E2BIG;
	}
	for (size_t i = 0; i < plen; i++) {
		if (!isgraph((unsigned char)slash[i])) {
			ic_log(IC_LOG_ERR, "etcd URL '%s': PREFIX holds a space or control character",
			       url);
			return -EINVAL;
		}
		/* One level: a store under /isocache/a/ would otherwise hold the
		 * records of one under /isocache/a/b/, and destroy both. */
		if (slash[i] == '/') {
			ic_log(IC_LOG_ERR, "etcd URL '%s': PREFIX holds a '/' (one name only, such "
			       "as fleet1: one store may not lie inside another)", url);
			return -EINVAL;
		}
	}
	memcpy(out->prefix, slash, plen);
	out->prefix[plen] = '\0';
	out->tls = strncmp(url, URL_SCHEME_TLS, strlen(URL_SCHEME_TLS)) == 0;
	return 0;
}
