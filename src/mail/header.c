/* Header sections of a message (RFC 5322 2.2, 2.2.3, 3.6; obsolete syntax
 * 4.5): find where the header ends, walk its fields, unfold values.
 *
 * Works in place on the raw bytes: fields are slices into the caller's
 * message, nothing is copied until header_value_unfold() is asked.
 *
 * Line ends: CRLF or a bare LF (mail stored by others, or submitted by
 * sloppy clients, has both).  A field is its first line plus every
 * following line that starts with SP or HT (folding).  A field name is one
 * or more printable ASCII characters other than ":" (ftext, 3.6.8); the
 * obsolete "Name : value" form with WSP before the colon is accepted and
 * the WSP dropped from the name.  A line that is not a field (no colon, a
 * bad name character, a continuation with nothing to continue) is reported
 * as malformed and skipped together with its continuation lines.
 *
 * Invariant: nothing is read at or past msg + len. */
#include "mail/header.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* End of the line starting at p: the position after its LF, or end. */
static const char *line_next(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	return nl != NULL ? nl + 1 : end;
}

/* Is the line at p empty (CRLF or LF alone)? */
static size_t empty_line_len(const char *p, const char *end)
{
	if (p < end && *p == '\n')
		return 1;
	if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
		return 2;
	return 0;
}

size_t header_section_length(const char *msg, size_t len)
{
	const char *p = msg, *end = msg + len;

	while (p < end) {
		size_t n = empty_line_len(p, end);
		if (n > 0)
			return (size_t)(p + n - msg);
		p = line_next(p, end);
	}
	return len;
}

void header_iter_init(struct header_iter *it, const char *msg, size_t len)
{
	it->p = msg;
	it->end = msg + len;
	it->done = false;
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

int header_iter_next(struct header_iter *it, struct header_field *f)
{
	const char *start = it->p, *end = it->end, *p, *colon = NULL, *name_end, *value_end;
	bool bad = false;

	if (it->done || start >= end || empty_line_len(start, end) > 0) {
		it->done = true;
		return 0;
	}
	/* the field: its first line and all continuation lines */
	p = line_next(start, end);
	while (p < end && is_wsp(*p))
		p = line_next(p, end);
	it->p = p;

	/* value_end: before the final line end */
	value_end = p;
	if (value_end > start && value_end[-1] == '\n') {
		value_end--;
		if (value_end > start && value_end[-1] == '\r')
			value_end--;
	}

	/* name: ftext up to the colon, on the first line */
	if (is_wsp(*start))
		bad = true;  /* continuation with no field before it */
	for (const char *q = start; !bad && q < value_end; q++) {
		unsigned char c = (unsigned char)*q;
		if (c == ':') {
			colon = q;
			break;
		}
		if (c == '\n' || c == '\r' || c < 33 || c > 126) {
			if (!is_wsp((char)c))
				bad = true;
		}
	}
	if (!bad && colon != NULL) {
		name_end = colon;
		while (name_end > start && is_wsp(name_end[-1]))
			name_end--;
		/* WSP is allowed only between the name and the colon */
		for (const char *q = start; q < name_end; q++) {
			if (is_wsp(*q))
				bad = true;
		}
		if (name_end == start)
			bad = true;
	} else
		bad = true;
	if (bad) {
		memset(f, 0, sizeof(*f));
		f->raw = (struct slice){ start, (size_t)(p - start) };
		return -1;
	}
	f->name = (struct slice){ start, (size_t)(name_end - start) };
	f->value = (struct slice){ colon + 1, (size_t)(value_end - colon - 1) };
	f->raw = (struct slice){ start, (size_t)(p - start) };
	return 1;
}

char *header_value_unfold(struct slice value)
{
	const char *p = value.p, *end = value.p + value.len;
	char *out, *o;

	/* RFC 5322 2.2.3: unfolding removes each CRLF that precedes WSP.  We
	 * drop every CR and LF so none can ever reach a stored header or a
	 * log line, folded or not. */
	while (p < end && (is_wsp(*p) || *p == '\r' || *p == '\n'))
		p++;
	while (end > p && (is_wsp(end[-1]) || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	out = o = xmalloc((size_t)(end - p) + 1);
	for (; p < end; p++) {
		if (*p != '\r' && *p != '\n')
			*o++ = *p;
	}
	*o = '\0';
	return out;
}

int header_find(const char *msg, size_t len, const char *name, struct header_field *f,
		unsigned *count_r)
{
	struct header_iter it;
	struct header_field cur;
	unsigned count = 0;
	size_t name_len = strlen(name);
	int r;

	header_iter_init(&it, msg, len);
	while ((r = header_iter_next(&it, &cur)) != 0) {
		if (r < 0)
			continue;
		if (cur.name.len == name_len && strncasecmp(cur.name.p, name, name_len) == 0) {
			if (count == 0)
				*f = cur;
			count++;
			if (count_r == NULL)
				break;
		}
	}
	if (count_r != NULL)
		*count_r = count;
	return count > 0;
}
