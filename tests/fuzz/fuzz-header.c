/* Fuzz target: mail/header on arbitrary bytes.  header_section_length(),
 * the field iterator to the end, header_value_unfold() of every value and
 * header_find().  Checks that every slice lies inside the input, that the
 * iterator always advances and stays inside the header section, and that
 * an unfolded value holds no CR or LF. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "mail/header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(struct slice s, const char *msg, size_t len)
{
	if (s.len > 0 && (s.p < msg || s.p + s.len > msg + len))
		panic("slice outside the message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *msg = xmalloc(size);   /* exact size: ASan sees over-reads */
	struct header_iter it;
	struct header_field f;
	size_t hl, covered = 0;
	unsigned count;
	int r;

	memcpy(msg, data, size);
	hl = header_section_length(msg, size);
	if (hl > size)
		panic("header section longer than the message");
	header_iter_init(&it, msg, size);
	while ((r = header_iter_next(&it, &f)) != 0) {
		if (f.raw.len == 0)
			panic("iterator did not advance");
		inside(f.raw, msg, size);
		covered += f.raw.len;
		if (r == 1) {
			inside(f.name, msg, size);
			inside(f.value, msg, size);
			if (f.name.len == 0)
				panic("empty field name");
			char *u = header_value_unfold(f.value);
			if (strchr(u, '\r') != NULL || strchr(u, '\n') != NULL)
				panic("line end left in an unfolded value");
			free(u);
		}
	}
	if (covered > hl)
		panic("fields past the header section");
	if (header_find(msg, size, "From", &f, &count) == 1) {
		inside(f.raw, msg, size);
		if (count == 0)
			panic("found with a count of 0");
	}
	free(msg);
	return 0;
}
