/* libFuzzer target: one control-socket record (ctl_decode). Whatever the
 * decoder accepts must encode to a record of the same length that decodes
 * again and encodes to the same bytes: the encoder's output is canonical
 * (string fields zero-padded), so encode ∘ decode is a fixed point. */
#include <stdlib.h>
#include <string.h>

#include "owner/ctlmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t fz_out[CTL_REPLY_BUF], fz_again[CTL_REPLY_BUF];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_msg m, back;
	size_t len;

	memset(&m, 0, sizeof(m));
	if (ctl_decode(data, size, &m) < 0)
		return 0;
	if (ctl_size(&m) != size)
		abort();
	len = ctl_encode(&m, fz_out);
	memset(&back, 0, sizeof(back));
	if (len != size || ctl_decode(fz_out, len, &back) < 0 || back.type != m.type ||
	    back.seq != m.seq)
		abort();
	if (ctl_encode(&back, fz_again) != len || memcmp(fz_out, fz_again, len))
		abort();
	return 0;
}
