/* 128-bit random identifiers (store, layer and owner ids) and their text form. */
#ifndef IC_COMMON_UUID_H
#define IC_COMMON_UUID_H

#include <stdint.h>

#define IC_UUID_STRLEN 37 /* 36 characters and the NUL */

/* Fill id with random bytes (version 4 layout). Returns 0 or -errno. */
int ic_uuid_generate(uint8_t id[16]);
void ic_uuid_format(const uint8_t id[16], char out[IC_UUID_STRLEN]);

#endif
