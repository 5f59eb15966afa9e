/* Header sections (RFC 5322 2.2, 3.6): iterate fields, unfold values.
 * Works on the raw message bytes; nothing is copied until asked. */
#ifndef TERN_MAIL_HEADER_H
#define TERN_MAIL_HEADER_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

struct header_field {
	struct slice name;      /* without the colon, trailing WSP removed */
	struct slice value;     /* raw value after the colon, folding kept, without the final CRLF */
	struct slice raw;       /* the whole field including its final line end */
};

struct header_iter {
	const char *p, *end;
	bool done;
};

/* Length of the header section including the empty line that ends it (the
 * body starts at that offset); len when there is no body separator. */
size_t header_section_length(const char *msg, size_t len);

void header_iter_init(struct header_iter *it, const char *msg, size_t len);
/* 1 = a field in *f, 0 = end of the header section, -1 = a malformed line
 * (no colon, or a name with invalid characters); the iterator skips the bad
 * line so the caller may go on. */
int header_iter_next(struct header_iter *it, struct header_field *f);

/* Unfolded value: CRLF followed by WSP removed, leading/trailing WSP
 * trimmed (malloc'd). */
char *header_value_unfold(struct slice value);

/* The first field named name (case-insensitive) in the header section.
 * 1 found (*f filled), 0 not. count_r, if not NULL, gets how many there are. */
int header_find(const char *msg, size_t len, const char *name, struct header_field *f,
		unsigned *count_r);

#endif
