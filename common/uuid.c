#include "common/uuid.h"

#include <errno.h>
#include <stdio.h>
#include <sys/random.h>

int
ic_uuid_generate(uint8_t id[16])
{
	if (getrandom(id, 16, 0) != 16)
		return -errno;
	id[6] = (id[6] & 0x0f) | 0x40;
	id[8] = (id[8] & 0x3f) | 0x80;
	return 0;
}

void
ic_uuid_format(const uint8_t id[16], char out[IC_UUID_STRLEN])
{
	snprintf(out, IC_UUID_STRLEN,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0],
		 id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11],
		 id[12], id[13], id[14], id[15]);
}
