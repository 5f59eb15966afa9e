/* Text extraction for the search index: a stored message becomes the
 * columns IMAP SEARCH looks into (RFC 3501 6.4.4 / RFC 9051 6.4.4).
 *
 *  - Header fields of the message (RFC 5322 2.2): each value is unfolded
 *    and its RFC 2047 encoded words decoded to UTF-8 (rfc2047.h); CR, LF
 *    and TAB become spaces so that one field is one line "name: value" of
 *    the headers column (the name lowercased, ASCII).  From, To, Cc, Bcc
 *    and Subject also get a column of their own.
 *  - Body: every text/ leaf of the MIME tree (RFC 2045, RFC 2046) decoded
 *    from its Content-Transfer-Encoding and converted from its charset to
 *    UTF-8 (mime-decode.h); the header fields of an embedded message/rfc822
 *    part, decoded the same way; other leaves (images, archives...) are
 *    not text and are skipped.
 *  - Everything is casefolded with search_fold(), the same function that
 *    folds a search key, so matching is plain substring search afterwards.
 *
 * Invariants: every column is valid UTF-8 without NUL bytes; the headers
 * column has exactly one '\n'-terminated line per field; a column never
 * grows past its limit (text beyond it is dropped, never an error). */
#include "store/search-private.h"
#include "mail/charset.h"
#include "mail/header.h"
#include "mail/mime-decode.h"
#include "mail/mime.h"
#include "mail/rfc2047.h"

#include <stdlib.h>
#include <string.h>

void search_doc_init(struct search_doc *d)
{
	buf_init(&d->from, SEARCH_MAX_HEADER_TEXT);
	buf_init(&d->to, SEARCH_MAX_HEADER_TEXT);
	buf_init(&d->cc, SEARCH_MAX_HEADER_TEXT);
	buf_init(&d->bcc, SEARCH_MAX_HEADER_TEXT);
	buf_init(&d->subject, SEARCH_MAX_HEADER_TEXT);
	buf_init(&d->headers, SEARCH_MAX_HEADER_TEXT);
	buf_init(&d->body, SEARCH_MAX_BODY_TEXT);
}

void search_doc_free(struct search_doc *d)
{
	buf_free(&d->from);
	buf_free(&d->to);
	buf_free(&d->cc);
	buf_free(&d->bcc);
	buf_free(&d->subject);
	buf_free(&d->headers);
	buf_free(&d->body);
}

/* Decode a header value (RFC 2047), flatten it to one line and append it
 * folded to out.  Leading and trailing white space is dropped. */
static int append_value(struct slice value, struct buf *out)
{
	struct buf dec;
	char *s;
	size_t len;
	int ret;

	buf_init(&dec, SEARCH_MAX_HEADER_TEXT);
	rfc2047_decode(value.p, value.len, &dec);   /* a cut value is still useful */
	s = dec.data ? dec.data : (char *)"";
	len = dec.len;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\t')
			s[i] = ' ';
	while (len > 0 && s[0] == ' ') {
		s++;
		len--;
	}
	while (len > 0 && s[len - 1] == ' ')
		len--;
	ret = search_fold(s, len, out);
	buf_free(&dec);
	return ret;
}

/* One column for a named field: several fields are joined by "\n". */
static void append_column(struct buf *col, struct slice value)
{
	size_t mark = col->len;

	if (col->len > 0 && buf_append(col, "\n", 1) < 0)
		return;
	if (append_value(value, col) < 0)
		col->len = mark;        /* drop a partial value */
	if (col->data != NULL)
		col->data[col->len] = '\0';
}

/* Every field of the header section at hdr[0..len) as "name: value\n"
 * lines appended to lines; with d, the message's own header, the named
 * columns are filled too. */
static void extract_header(const char *hdr, size_t len, struct buf *lines, struct search_doc *d)
{
	struct header_iter it;
	struct header_field f;
	int rc;

	header_iter_init(&it, hdr, len);
	while ((rc = header_iter_next(&it, &f)) != 0) {
		if (rc < 0)
			continue;
		size_t mark = lines->len;
		bool ok = true;
		for (size_t i = 0; i < f.name.len && ok; i++) {
			char c = f.name.p[i];
			if (c >= 'A' && c <= 'Z')
				c = (char)(c + ('a' - 'A'));
			ok = buf_append(lines, &c, 1) == 0;
		}
		if (!ok || buf_append(lines, ": ", 2) < 0 || append_value(f.value, lines) < 0 ||
		    buf_append(lines, "\n", 1) < 0) {
			lines->len = mark;      /* keep whole lines only */
			if (lines->data != NULL)
				lines->data[mark] = '\0';
			break;
		}
		if (d == NULL)
			continue;
		if (slice_eq_ci(f.name, "from"))
			append_column(&d->from, f.value);
		else if (slice_eq_ci(f.name, "to"))
			append_column(&d->to, f.value);
		else if (slice_eq_ci(f.name, "cc"))
			append_column(&d->cc, f.value);
		else if (slice_eq_ci(f.name, "bcc"))
			append_column(&d->bcc, f.value);
		else if (slice_eq_ci(f.name, "subject"))
			append_column(&d->subject, f.value);
	}
}

static void extract_part(const char *msg, const struct mime_part *part, struct search_doc *d)
{
	if (part->flags & MIME_PART_OPAQUE)
		return;
	if (part->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)) {
		for (const struct mime_part *c = part->children; c != NULL; c = c->next) {
			if (part->flags & MIME_PART_MESSAGE)
				extract_header(msg + c->header_offset, c->header_size, &d->body,
					       NULL);
			extract_part(msg, c, d);
		}
		return;
	}
	if (strcmp(part->type, "text") != 0)
		return;

	struct buf text;
	buf_init(&text, SEARCH_MAX_BODY_TEXT);
	mime_part_decoded_text(msg, part, &text);       /* a cut text is still indexed */
	if (d->body.len > 0 && d->body.data[d->body.len - 1] != '\n')
		buf_append(&d->body, "\n", 1);
	search_fold(buf_cstr(&text), text.len, &d->body);
	buf_free(&text);
}

void search_doc_extract(const char *msg, size_t len, struct search_doc *d)
{
	struct mime_part *root = NULL;
	const char *err;

	extract_header(msg, header_section_length(msg, len), &d->headers, d);
	if (mime_parse(msg, len, &root, &err) < 0)
		return;
	extract_part(msg, root, d);
	mime_part_free(&root);
}
