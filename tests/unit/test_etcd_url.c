/* etcd/url.c: etcd://HOST:PORT[,HOST:PORT...]/PREFIX, the name of an etcd
 * store, parsed whole or refused with the part that was wrong. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "etcd/etcd.h"

static void
test_url_one(void **state)
{
	struct ic_etcd_url u;

	(void)state;
	assert_int_equal(ic_etcd_url_parse("etcd://127.0.0.1:2379/prod", &u), 0);
	assert_int_equal(u.n, 1);
	assert_string_equal(u.endpoint[0], "127.0.0.1:2379");
	assert_string_equal(u.prefix, "prod");
	assert_false(u.tls);
}

/* etcds:// is the same URL over TLS; the flag does not outlive a parse. */
static void
test_url_tls(void **state)
{
	struct ic_etcd_url u;

	(void)state;
	assert_int_equal(ic_etcd_url_parse("etcds://a:1,b:2/fleet", &u), 0);
	assert_true(u.tls);
	assert_int_equal(u.n, 2);
	assert_string_equal(u.endpoint[1], "b:2");
	assert_string_equal(u.prefix, "fleet");
	assert_int_equal(ic_etcd_url_parse("etcd://a:1/fleet", &u), 0);
	assert_false(u.tls);
	assert_true(ic_etcd_url_like("etcds://x"));
	assert_true(ic_etcd_url_like("etcd://x"));
	assert_false(ic_etcd_url_like("etcdx://x"));
	assert_false(ic_etcd_url_like("https://x"));
}

static void
test_url_many(void **state)
{
	struct ic_etcd_url u;

	(void)state;
	assert_int_equal(ic_etcd_url_parse("etcd://a:1,etcd-2.example_x.org:65535,[::1]:3//x.y//",
					   &u),
			 0);
	assert_int_equal(u.n, 3);
	assert_string_equal(u.endpoint[0], "a:1");
	assert_string_equal(u.endpoint[1], "etcd-2.example_x.org:65535");
	assert_string_equal(u.endpoint[2], "[::1]:3");
	assert_string_equal(u.prefix, "x.y");
}

static void
test_url_refused(void **state)
{
	static const char *const bad[] = {
		"http://a:1/x",   "etcd://a:1",     "etcd://a:1/",     "etcd://a:1///",
		"etcd://a/x",     "etcd://a:/x",    "etcd://a:0/x",    "etcd://a:65536/x",
		"etcd://a:1x/x",  "etcd://a:-1/x",  "etcd://:1/x",     "etcd://a:1,/x",
		"etcd://,a:1/x",  "etcd://a b:1/x", "etcd://[::1/x",   "etcd://[]:1/x",
		"etcd://[::1]/x", "etcd://[zz]:1/x", "etcd://a:1/x y", "etcd://a:1/x\ty",
		"etcd:///x",      "",               "etcds:/a:1/x",    "etcdss://a:1/x",
		"etcds://a:1",    "etcds://a/x",
		/* a store inside another's prefix */
		"etcd://a:1/x/y", "etcds://a:1//x/y/",
	};
	struct ic_etcd_url u;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = ic_etcd_url_parse(bad[i], &u);

		if (rc != -EINVAL)
			fail_msg("'%s': %d, not -EINVAL", bad[i], rc);
	}
}

static void
test_url_limits(void **state)
{
	char url[2048], prefix[IC_ETCD_PREFIX_MAX + 1], host[IC_ETCD_ENDPOINT_MAX];
	struct ic_etcd_url u;

	(void)state;
	/* IC_ETCD_ENDPOINTS_MAX endpoints fit; one more does not. */
	strcpy(url, "etcd://");
	for (int i = 1; i <= IC_ETCD_ENDPOINTS_MAX; i++)
		snprintf(url + strlen(url), sizeof(url) - strlen(url), "%sh%d:%d", i > 1 ? "," : "",
			 i, i);
	strcat(url, "/p");
	assert_int_equal(ic_etcd_url_parse(url, &u), 0);
	assert_int_equal(u.n, IC_ETCD_ENDPOINTS_MAX);
	assert_string_equal(u.endpoint[IC_ETCD_ENDPOINTS_MAX - 1], "h8:8");
	strcpy(strstr(url, "/p"), ",h9:9/p");
	assert_int_equal(ic_etcd_url_parse(url, &u), -E2BIG);

	memset(prefix, 'p', sizeof(prefix) - 1);
	prefix[sizeof(prefix) - 1] = '\0';
	snprintf(url, sizeof(url), "etcd://a:1/%s", prefix);
	assert_int_equal(ic_etcd_url_parse(url, &u), -E2BIG);
	prefix[IC_ETCD_PREFIX_MAX - 1] = '\0';
	snprintf(url, sizeof(url), "etcd://a:1/%s", prefix);
	assert_int_equal(ic_etcd_url_parse(url, &u), 0);

	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(url, sizeof(url), "etcd://%s:1/x", host);
	assert_int_equal(ic_etcd_url_parse(url, &u), -E2BIG);
}

static void
test_endpoints(void **state)
{
	struct ic_etcd_url u;

	(void)state;
	assert_int_equal(ic_etcd_endpoints_parse("127.0.0.1:1,127.0.0.1:2", &u), 0);
	assert_int_equal(u.n, 2);
	assert_string_equal(u.endpoint[1], "127.0.0.1:2");
	assert_string_equal(u.prefix, "");
	assert_int_equal(ic_etcd_endpoints_parse("127.0.0.1:1/x", &u), -EINVAL);
	assert_int_equal(ic_etcd_endpoints_parse("", &u), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_one),     cmocka_unit_test(test_url_tls),
		cmocka_unit_test(test_url_many),
		cmocka_unit_test(test_url_refused), cmocka_unit_test(test_url_limits),
		cmocka_unit_test(test_endpoints),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
