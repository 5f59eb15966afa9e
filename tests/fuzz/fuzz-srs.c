/* Fuzz target: mail/srs on arbitrary bytes as an address.  srs_reverse()
 * must refuse or answer without crashing, and only with a known secret's
 * hash; srs_forward() of any accepted non-SRS sender must reverse to the
 * same sender (the round trip the forwarding path depends on). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "mail/srs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const secrets[] = { "fuzz-secret-new", "fuzz-secret-old" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *err = NULL;
	struct buf out, back;
	char *addr;

	if (size > 4096)
		return 0;
	addr = malloc(size + 1);
	memcpy(addr, data, size);
	addr[size] = '\0';
	buf_init(&out, BUF_UNLIMITED);
	buf_init(&back, BUF_UNLIMITED);

	int r = srs_reverse(secrets, 2, addr, 0, &out, &err);
	if (r < 0 && (err == NULL || out.len != 0))
		panic("srs_reverse failed without a reason or with output");
	if (r == 0 && !srs_is_srs(addr))
		panic("srs_reverse accepted a non-SRS address");
	buf_reset(&out);

	r = srs_forward(secrets, 2, "forward.example", addr, &out, &err);
	if (r == 0) {
		if (!srs_is_srs(buf_cstr(&out)))
			panic("srs_forward gave a non-SRS address");
		if (srs_reverse(secrets, 2, buf_cstr(&out), 0, &back, &err) != 0)
			panic("srs_forward result does not reverse");
		/* an SRS0 sender becomes SRS1, which reverses to it (tag case aside) */
		if (!srs_is_srs(addr) && strcmp(buf_cstr(&back), addr) != 0)
			panic("srs round trip changed the address");
		if (strncasecmp(addr, "SRS0", 4) == 0 && srs_is_srs(addr) &&
		    strcasecmp(buf_cstr(&back), addr) != 0)
			panic("srs SRS0 round trip changed the address");
	} else if (err == NULL || out.len != 0) {
		panic("srs_forward failed without a reason or with output");
	}
	buf_free(&back);
	buf_free(&out);
	free(addr);
	return 0;
}
