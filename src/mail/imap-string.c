/* IMAP string output, RFC 3501 4.3 and 9 (quoted, literal, nstring),
 * same rules in RFC 9051.  See imap-string.h.
 *
 * Why literals for 8-bit: a quoted string may carry UTF-8 only after
 * ENABLE UTF8=ACCEPT (RFC 6855); a literal is valid in every state, so
 * output that is computed once and cached never depends on the session.
 * Invariant: the output always parses as exactly one IMAP string. */
#include "mail/imap-string.h"

#include <string.h>

#define QUOTED_MAX 4096   /* longer values go as literals, easier for clients */

static bool needs_literal(const char *s, size_t len)
{
	if (len > QUOTED_MAX)
		return true;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n' || c == 0 || c >= 0x80)
			return true;
	}
	return false;
}

void imap_append_string(struct buf *out, const char *s, size_t len)
{
	if (!needs_literal(s, len)) {
		buf_append(out, "\"", 1);
		for (size_t i = 0; i < len;) {
			size_t j = i;
			while (j < len && s[j] != '"' && s[j] != '\\')
				j++;
			buf_append(out, s + i, j - i);
			if (j < len) {
				char esc[2] = { '\\', s[j] };
				buf_append(out, esc, 2);
				j++;
			}
			i = j;
		}
		buf_append(out, "\"", 1);
		return;
	}
	size_t n = len;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0')
			n--;
	}
	buf_printf(out, "{%zu}\r\n", n);
	for (size_t i = 0; i < len;) {
		const char *z = memchr(s + i, '\0', len - i);
		size_t j = z != NULL ? (size_t)(z - s) : len;
		buf_append(out, s + i, j - i);
		i = j + (z != NULL);
	}
}

void imap_append_nstring(struct buf *out, const char *s, size_t len)
{
	if (s == NULL)
		buf_append_str(out, "NIL");
	else
		imap_append_string(out, s, len);
}

void imap_append_nstr(struct buf *out, const char *s)
{
	imap_append_nstring(out, s, s != NULL ? strlen(s) : 0);
}

void imap_append_nstring_nolf(struct buf *out, const char *s, size_t len)
{
	struct buf tmp;

	if (s == NULL || (memchr(s, '\r', len) == NULL && memchr(s, '\n', len) == NULL)) {
		imap_append_nstring(out, s, len);
		return;
	}
	buf_init(&tmp, BUF_UNLIMITED);
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\r' && s[i] != '\n')
			buf_append(&tmp, s + i, 1);
	}
	imap_append_string(out, buf_cstr(&tmp), tmp.len);
	buf_free(&tmp);
}
