/* Fuzz target for the 8BITMIME downgrade (mail/downgrade.c): any message
 * bytes.  Invariants checked: a 7-bit input is copied unchanged; a
 * successful conversion has no 8-bit byte and no NUL left; a failure
 * always gives a reason. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/downgrade.h"

#define FUZZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz-downgrade: assertion failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data, *err = NULL;
	struct buf out;
	int rc;

	buf_init(&out, BUF_UNLIMITED);
	rc = mail_downgrade_7bit(msg, size, &out, &err);
	if (!mail_has_8bit(msg, size)) {
		FUZZ_ASSERT(rc == 0);
		FUZZ_ASSERT(out.len == size && memcmp(buf_cstr(&out), msg, size) == 0);
	} else if (rc == 0) {
		FUZZ_ASSERT(!mail_has_8bit(buf_cstr(&out), out.len));
	} else {
		FUZZ_ASSERT(rc == -1 && err != NULL);
	}
	buf_free(&out);
	return 0;
}
