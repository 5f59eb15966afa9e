/* Fuzz target: Authentication-Results handling (src/mailauth/auth-results.c).
 * The input is a message; it is rewritten with our field inserted after
 * the first field and forged ones removed; with nothing removed the output
 * must be the input plus our field exactly.  The claim parser also reads
 * the whole input as a field value (ASan checks every read). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "mailauth/auth-results.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *msg = xmalloc(size > 0 ? size : 1);
	struct buf out;
	const char *error = NULL;
	unsigned removed = 0;

	memcpy(msg, data, size);
	(void)auth_results_claims(msg, size, "mx.example.test");
	buf_init(&out, 4 * size + 4096);
	if (auth_results_rewrite(msg, size, 1, "mx.example.test", "spf=pass smtp.helo=x",
				 &out, &removed, &error) < 0)
		panic("rewrite failed: %s", error);
	/* every byte kept, ours added, nothing else */
	if (removed == 0 && out.len != size + strlen("Authentication-Results: mx.example.test;"
						    "\r\n\tspf=pass smtp.helo=x\r\n"))
		panic("bytes lost or added: in=%zu out=%zu", size, out.len);
	buf_free(&out);
	free(msg);
	return 0;
}
