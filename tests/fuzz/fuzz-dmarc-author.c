/* libFuzzer target for the Author Domains of a message and the dmarc=
 * clause (src/mailauth/dmarc-author.c; RFC 7489 6.6.1, RFC 8601 2.2).
 *
 * The input is a message (header section and body, NULs and 8-bit bytes
 * included).  Its From domains are collected; each must be non-empty,
 * ASCII LDH and lower case, at most DMARC_MAX_AUTHORS of them, distinct;
 * then a clause is formatted for each with the input's first byte picking
 * the result and policies, and must hold no CR, LF or NUL.  Nothing may
 * crash, leak or read past the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mailauth/dmarc-author.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_authors a;
	unsigned pick = size > 0 ? data[0] : 0;

	dmarc_authors_collect((const char *)data, size, &a);
	if (a.count > DMARC_MAX_AUTHORS)
		abort();
	for (size_t i = 0; i < a.count; i++) {
		const char *d = a.domain[i];
		struct buf b;
		if (d[0] == '\0')
			abort();
		for (const char *p = d; *p != '\0'; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
			      *p == '.'))
				abort();
		for (size_t j = 0; j < i; j++)
			if (strcmp(a.domain[j], d) == 0)
				abort();
		struct dmarc_clause c = {
			.result = (enum dmarc_result)(pick % 5),
			.from_domain = d,
			.have_policy = (pick >> 3) & 1,
			.p = (enum dmarc_policy)((pick >> 4) % 3),
			.sp = (enum dmarc_policy)((pick >> 5) % 3),
			.dis = (enum dmarc_disposition)((pick >> 6) % 3),
			.comment = d,
		};
		buf_init(&b, 4096);
		if (dmarc_clause_format(&c, &b) < 0)
			abort();
		if (memchr(b.data, '\r', b.len) != NULL || memchr(b.data, '\n', b.len) != NULL ||
		    strlen(b.data) != b.len)
			abort();
		buf_free(&b);
	}
	dmarc_authors_clear(&a);
	return 0;
}
