/* The etcd backend (docs/MULTI-HOST.md §2): not built yet. */
#include <errno.h>

#include "common/log.h"
#include "meta/backend.h"

int
meta_etcd_create(const char *url, const uint8_t store_uuid[16], uint32_t cluster_size)
{
	(void)store_uuid;
	(void)cluster_size;
	ic_log(IC_LOG_ERR, "%s: stores with metadata in etcd are not built yet", url);
	return -EPROTONOSUPPORT;
}

int
meta_etcd_open(const char *url, bool readonly, struct ic_meta **out)
{
	(void)readonly;
	(void)out;
	ic_log(IC_LOG_ERR, "%s: stores with metadata in etcd are not built yet", url);
	return -EPROTONOSUPPORT;
}
