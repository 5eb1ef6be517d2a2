/* libFuzzer target: one boot trace file (ic_cached_trace_decode), the
 * bytes isocached and isocache-admin read from the trace directory.
 *
 * The checksum would stop almost every input at the door, so unless the
 * first byte is odd the target writes the right one into the copy it
 * decodes. Whatever the decoder accepts must describe runs inside the
 * layer its header names, whose lengths add up to its block count, and
 * must encode back to the very same bytes (one encoding per trace). */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "isocache/cached_trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf, *again;
	struct ic_cached_trace t;
	uint64_t blocks = 0, nblocks;
	int len;

	if (size > IC_CACHED_TRACE_MAX + 1)
		return 0;
	buf = malloc(size ? size : 1);
	again = malloc(size ? size : 1);
	if (!buf || !again)
		abort();
	memcpy(buf, data, size);
	if (size >= IC_CACHED_TRACE_HDR && !(data[0] & 1)) {
		uint64_t sum = XXH3_64bits_withSeed(buf + IC_CACHED_TRACE_HDR,
						    size - IC_CACHED_TRACE_HDR, XXH3_64bits(buf, 64));

		for (int i = 0; i < 8; i++)
			buf[64 + i] = (uint8_t)(sum >> (8 * i));
	}
	if (ic_cached_trace_decode(buf, size, &t) == 0) {
		nblocks = t.size / 4096 + (t.size % 4096 != 0);
		for (uint32_t i = 0; i < t.nruns; i++) {
			if (t.runs[i].len == 0 || t.runs[i].start >= nblocks ||
			    t.runs[i].len > nblocks - t.runs[i].start)
				abort();
			blocks += t.runs[i].len;
		}
		len = ic_cached_trace_encode(&t, again, size);
		if (blocks != t.blocks || len < 0 || (size_t)len != size || memcmp(again, buf, size))
			abort();
		ic_cached_trace_free(&t);
	}
	free(buf);
	free(again);
	return 0;
}
