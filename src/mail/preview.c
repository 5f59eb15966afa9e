/* Message previews (RFC 8970 3.1, PREVIEW fetch attribute).
 *
 * The preview is taken from the first text/plain part that is not an
 * attachment (RFC 2183), walking multiparts depth-first but not entering
 * embedded messages; failing that, from the first such text/html part with
 * its markup removed.  The part is transfer-decoded and converted to UTF-8
 * (mail/mime-decode.h, mail/charset.h), then white space is collapsed and
 * the result cut at PREVIEW_MAX_CHARS code points.
 *
 * Invariants: the output is valid UTF-8 without control characters, at
 * most PREVIEW_MAX_CHARS code points, never starts or ends with a space,
 * and is never cut inside a UTF-8 sequence.  Only the first
 * PREVIEW_PLAIN_SCAN / PREVIEW_HTML_SCAN encoded bytes of the part are
 * decoded, so a huge part costs no more than a small one.  The HTML
 * reader is a tolerant scanner, not a parser: it never fails, whatever the
 * markup. */
#include "mail/preview.h"
#include "mail/charset.h"
#include "mail/mime-decode.h"
#include "mail/mime.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Encoded bytes of a part looked at.  Plain text: 200 characters of even
 * base64-encoded 4-byte UTF-8 fit many times over.  HTML: markup (style
 * sheets above all) often comes long before the first word of text. */
#define PREVIEW_PLAIN_SCAN (16 * 1024)
#define PREVIEW_HTML_SCAN (256 * 1024)

/* ------------------------------------------------------------ normalize */

static bool is_space_byte(unsigned char c)
{
	return c < 0x20 || c == ' ' || c == 0x7f;
}

void preview_normalize(const char *in, size_t len, size_t max_chars, struct buf *out)
{
	struct buf clean;
	size_t chars = 0, i = 0;
	bool pending = false, emitted = false;

	buf_init(&clean, BUF_UNLIMITED);
	charset_utf8_sanitize(in, len, &clean);
	const unsigned char *p = (const unsigned char *)buf_cstr(&clean);
	size_t n = clean.len;

	while (i < n && chars < max_chars) {
		unsigned char c = p[i];
		size_t clen = 1;

		if (c >= 0xc0)
			clen = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (i + clen > n)
			break;          /* cannot happen after sanitizing */
		/* ASCII white space and controls, C1 controls and U+00A0 */
		if (is_space_byte(c) || (c == 0xc2 && (p[i + 1] < 0xa0 || p[i + 1] == 0xa0))) {
			pending = emitted;
			i += clen;
			continue;
		}
		if (pending) {
			/* a space only with room for the character after it */
			if (chars + 2 > max_chars)
				break;
			buf_append(out, " ", 1);
			pending = false;
			chars++;
		}
		buf_append(out, p + i, clen);
		emitted = true;
		chars++;
		i += clen;
	}
	buf_free(&clean);
}

/* ----------------------------------------------------------------- HTML */

/* Tags that separate words when rendered. */
static const char *const block_tags[] = {
	"br", "p", "div", "li", "ul", "ol", "tr", "td", "th", "table", "h1", "h2", "h3",
	"h4", "h5", "h6", "hr", "blockquote", "pre", "section", "article", "header",
	"footer", "dd", "dt", "dl", "center", "address", "tbody", "thead",
};
/* Tags whose content is not shown. */
static const char *const hidden_tags[] = { "head", "script", "style", "title" };

static bool tag_in(const char *name, size_t n, const char *const *list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (strlen(list[i]) == n && strncasecmp(list[i], name, n) == 0)
			return true;
	return false;
}

static void append_utf8(struct buf *out, uint32_t cp)
{
	unsigned char b[4];
	size_t n;

	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(out, b, n);
}

/* Decode the entity at in[0] == '&'; the bytes consumed (1 when it is not
 * one we know: the '&' is then literal text). */
static size_t html_entity(const char *in, size_t len, struct buf *out)
{
	static const struct { const char *name; const char *text; } named[] = {
		{ "amp", "&" }, { "lt", "<" }, { "gt", ">" }, { "quot", "\"" },
		{ "apos", "'" }, { "nbsp", " " },
	};
	size_t semi = 1;

	while (semi < len && semi < 12 && in[semi] != ';')
		semi++;
	if (semi >= len || in[semi] != ';' || semi == 1)
		goto literal;
	if (in[1] == '#') {
		uint32_t cp = 0;
		bool hex = semi > 2 && (in[2] == 'x' || in[2] == 'X');
		size_t i = hex ? 3 : 2;

		if (i >= semi)
			goto literal;
		for (; i < semi; i++) {
			char c = in[i];
			unsigned d;
			if (c >= '0' && c <= '9')
				d = (unsigned)(c - '0');
			else if (hex && c >= 'a' && c <= 'f')
				d = (unsigned)(c - 'a' + 10);
			else if (hex && c >= 'A' && c <= 'F')
				d = (unsigned)(c - 'A' + 10);
			else
				goto literal;
			cp = cp * (hex ? 16 : 10) + d;
			if (cp > 0x10ffff)
				cp = 0x110000;  /* stays out of range, no overflow */
		}
		/* NBSP shows as a space; C0/C1 controls are dropped by normalize */
		append_utf8(out, cp == 0xa0 ? ' ' : cp);
		return semi + 1;
	}
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		if (strlen(named[i].name) == semi - 1 && strncmp(named[i].name, in + 1, semi - 1) == 0) {
			buf_append_str(out, named[i].text);
			return semi + 1;
		}
	}
literal:
	buf_append(out, "&", 1);
	return 1;
}

/* End of the tag starting at in[i] == '<': the index after its '>' (quoted
 * attribute values may hold '>'), or len when it never ends. */
static size_t tag_end(const char *in, size_t len, size_t i)
{
	char quote = 0;

	for (i++; i < len; i++) {
		char c = in[i];
		if (quote) {
			if (c == quote)
				quote = 0;
		} else if (c == '"' || c == '\'') {
			quote = c;
		} else if (c == '>') {
			return i + 1;
		}
	}
	return len;
}

void preview_html_to_text(const char *in, size_t len, struct buf *out)
{
	const char *hidden = NULL;  /* inside <script> etc.: its name */
	size_t hidden_len = 0, i = 0;

	while (i < len) {
		char c = in[i];

		if (c == '<' && i + 3 < len && memcmp(in + i, "<!--", 4) == 0) {
			const char *e = memmem(in + i + 4, len - i - 4, "-->", 3);
			i = e ? (size_t)(e - in) + 3 : len;
			continue;
		}
		if (c == '<') {
			size_t j = i + 1, name_start;
			bool closing = false;

			if (j < len && in[j] == '/') {
				closing = true;
				j++;
			}
			name_start = j;
			while (j < len && ((in[j] >= 'a' && in[j] <= 'z') ||
					   (in[j] >= 'A' && in[j] <= 'Z') ||
					   (in[j] >= '0' && in[j] <= '9')))
				j++;
			size_t name_len = j - name_start;
			const char *name = in + name_start;
			bool markup = name_len > 0 ||
				(j < len && !closing && (in[j] == '!' || in[j] == '?'));

			if (!markup) {
				/* "a < b": a literal '<' */
				if (hidden == NULL)
					buf_append(out, "<", 1);
				i++;
				continue;
			}
			i = tag_end(in, len, i);
			if (hidden != NULL) {
				if (closing && name_len == hidden_len &&
				    strncasecmp(name, hidden, name_len) == 0)
					hidden = NULL;
				continue;
			}
			if (!closing && tag_in(name, name_len, hidden_tags,
					       sizeof(hidden_tags) / sizeof(hidden_tags[0]))) {
				/* a self-closing <script .../> hides nothing */
				if (i >= 2 && in[i - 1] == '>' && in[i - 2] == '/')
					continue;
				hidden = name;
				hidden_len = name_len;
				continue;
			}
			if (tag_in(name, name_len, block_tags,
				   sizeof(block_tags) / sizeof(block_tags[0])))
				buf_append(out, " ", 1);
			continue;
		}
		if (hidden != NULL) {
			i++;
			continue;
		}
		if (c == '&') {
			i += html_entity(in + i, len - i, out);
			continue;
		}
		size_t run = i + 1;
		while (run < len && in[run] != '<' && in[run] != '&')
			run++;
		buf_append(out, in + i, run - i);
		i = run;
	}
}

/* -------------------------------------------------------------- message */

static bool is_attachment(const struct mime_part *p)
{
	return p->disposition != NULL && strcmp(p->disposition, "attachment") == 0;
}

/* The first leaf text/<subtype> part under p that is not an attachment,
 * through multiparts only. */
static const struct mime_part *find_text(const struct mime_part *p, const char *subtype)
{
	if (p->flags & MIME_PART_OPAQUE)
		return NULL;
	if (p->flags & MIME_PART_MULTIPART) {
		for (const struct mime_part *c = p->children; c != NULL; c = c->next) {
			const struct mime_part *f = find_text(c, subtype);
			if (f != NULL)
				return f;
		}
		return NULL;
	}
	if (p->flags & MIME_PART_MESSAGE)
		return NULL;
	if (strcmp(p->type, "text") == 0 && strcmp(p->subtype, subtype) == 0 &&
	    !is_attachment(p))
		return p;
	return NULL;
}

char *preview_from_message(const char *msg, size_t len)
{
	struct mime_part *root = NULL;
	const struct mime_part *part;
	const char *err;
	struct buf text, out;
	bool html = false;

	if (mime_parse(msg, len, &root, &err) < 0)
		return xstrdup("");
	if ((part = find_text(root, "plain")) == NULL) {
		part = find_text(root, "html");
		html = true;
	}
	if (part == NULL) {
		mime_part_free(&root);
		return xstrdup("");
	}
	struct mime_part head = *part;
	size_t scan = html ? PREVIEW_HTML_SCAN : PREVIEW_PLAIN_SCAN;
	if (head.body_size > scan)
		head.body_size = scan;
	buf_init(&text, BUF_UNLIMITED);
	buf_init(&out, BUF_UNLIMITED);
	mime_part_decoded_text(msg, &head, &text);
	mime_part_free(&root);
	if (html) {
		struct buf plain;
		buf_init(&plain, BUF_UNLIMITED);
		preview_html_to_text(buf_cstr(&text), text.len, &plain);
		preview_normalize(buf_cstr(&plain), plain.len, PREVIEW_MAX_CHARS, &out);
		buf_free(&plain);
	} else {
		preview_normalize(buf_cstr(&text), text.len, PREVIEW_MAX_CHARS, &out);
	}
	buf_free(&text);
	char *s = xstrdup(buf_cstr(&out));
	buf_free(&out);
	return s;
}
