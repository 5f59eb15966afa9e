/* 8-bit to 7-bit MIME downgrade (see downgrade.h).
 *
 * How: parse the MIME tree (mail/mime.h), collect edits in tree order
 * (header rewrites and body replacements, which never overlap and come in
 * increasing offset order), then copy the message with the edits applied.
 * The result is checked once more: if any 8-bit byte survived (preamble,
 * epilogue) the conversion fails rather than send 8-bit data to a server
 * that did not accept it.
 * RFC 6152 3 (conversion allowed), RFC 2045 6.7 (quoted-printable: lines
 * of at most 76 characters, soft line breaks, trailing white space
 * encoded), 6.8 (base64 in 76-character lines), 6.4 (composite types
 * must not be encoded; their label follows their content), RFC 1428
 * (unknown-8bit). */
#include "mail/downgrade.h"
#include "lib/base64.h"
#include "mail/mime.h"

#include <stdlib.h>
#include <string.h>

#define QP_LINE_MAX 76
#define B64_LINE_CHARS 76

struct edit {
	size_t off, len;
	struct buf repl;
};

struct edits {
	struct edit *v;
	size_t n, cap;
};

bool mail_has_8bit(const char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)msg[i] >= 0x80 || msg[i] == '\0')
			return true;
	return false;
}

static struct buf *edit_add(struct edits *e, size_t off, size_t len)
{
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 8;
		e->v = xrealloc(e->v, e->cap * sizeof(*e->v));
	}
	e->v[e->n].off = off;
	e->v[e->n].len = len;
	buf_init(&e->v[e->n].repl, BUF_UNLIMITED);
	return &e->v[e->n++].repl;
}

static bool valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		unsigned min;
		unsigned cp;
		if (c < 0x80) {
			if (c == 0)
				return false;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) { k = 1; min = 0x80; cp = c & 0x1f; }
		else if (c >= 0xe0 && c <= 0xef) { k = 2; min = 0x800; cp = c & 0x0f; }
		else if (c >= 0xf0 && c <= 0xf4) { k = 3; min = 0x10000; cp = c & 0x07; }
		else return false;
		if (n - i <= k)   /* the k continuation bytes are not all there */
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* Is the field starting at line l[0..n) named name (case-insensitive)? */
static bool field_is(const char *l, size_t n, const char *name)
{
	size_t k = strlen(name), i;

	if (n < k || strncasecmp(l, name, k) != 0)
		return false;
	for (i = k; i < n && (l[i] == ' ' || l[i] == '\t'); i++)
		;
	return i < n && l[i] == ':';
}

static bool header_has_field(const char *h, size_t n, const char *name)
{
	const char *p = h, *end = h + n;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl != NULL ? nl + 1 : end;
		if (field_is(p, (size_t)(e - p), name))
			return true;
		p = e;
	}
	return false;
}

/* The header h[0..n) without its Content-Transfer-Encoding field(s), with
 * extra (complete field lines) added before the empty line that ends it. */
static void header_rewrite(struct buf *out, const char *h, size_t n, const char *extra)
{
	const char *p = h, *end = h + n;
	bool skipping = false, ended = false;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl != NULL ? nl + 1 : end;
		size_t len = (size_t)(e - p);
		bool empty = (len == 2 && p[0] == '\r') || (len == 1 && p[0] == '\n');

		if (empty) {
			buf_append_str(out, extra);
			buf_append(out, p, len);
			ended = true;
			p = e;
			continue;
		}
		/* a continuation line (RFC 5322 2.2.3) belongs to the field above */
		if (p[0] != ' ' && p[0] != '\t')
			skipping = !ended && field_is(p, len, "Content-Transfer-Encoding");
		if (!skipping)
			buf_append(out, p, len);
		p = e;
	}
	if (!ended) {
		/* a header section without its empty line: the last line may
		 * lack its line end */
		if (n > 0 && h[n - 1] != '\n')
			buf_append_str(out, "\r\n");
		buf_append_str(out, extra);
	}
}

static void qp_token(struct buf *out, size_t *col, const char *tok, size_t n)
{
	if (*col + n > QP_LINE_MAX - 1) {
		buf_append_str(out, "=\r\n");
		*col = 0;
	}
	buf_append(out, tok, n);
	*col += n;
}

/* Quoted-printable of body[0..n): line breaks (CRLF, or a bare LF) stay
 * line breaks; a bare CR is encoded. */
static void qp_encode(struct buf *out, const char *body, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *p = body, *end = body + n;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl != NULL ? nl : end;   /* line content end */
		size_t col = 0;

		if (nl != NULL && e > p && e[-1] == '\r')
			e--;
		for (const char *q = p; q < e; q++) {
			unsigned char ch = (unsigned char)*q;
			bool last = q + 1 == e;
			if ((ch >= 33 && ch <= 126 && ch != '=') ||
			    ((ch == ' ' || ch == '\t') && !last)) {
				qp_token(out, &col, (const char *)q, 1);
			} else {
				char t[3] = { '=', hex[ch >> 4], hex[ch & 15] };
				qp_token(out, &col, t, 3);
			}
		}
		if (nl == NULL)
			break;
		buf_append_str(out, "\r\n");
		p = nl + 1;
	}
}

static void b64_encode_lines(struct buf *out, const char *body, size_t n)
{
	size_t chunk = B64_LINE_CHARS / 4 * 3;

	for (size_t i = 0; i < n; i += chunk) {
		size_t k = n - i < chunk ? n - i : chunk;
		base64_encode(out, body + i, k);
		if (i + k < n)
			buf_append_str(out, "\r\n");
	}
}

static int convert_part(const char *msg, struct mime_part *part, struct edits *ed,
			const char **error_r)
{
	const char *h = msg + part->header_offset, *b = msg + part->body_offset;
	bool leaf = !(part->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE));
	const char *enc = part->encoding;

	if (mail_has_8bit(h, part->header_size)) {
		*error_r = "8-bit data in a header (needs SMTPUTF8)";
		return -1;
	}
	if ((part->flags & MIME_PART_OPAQUE) && mail_has_8bit(b, part->body_size)) {
		*error_r = "8-bit data in a part nested too deeply to convert";
		return -1;
	}
	if (!leaf || (part->flags & MIME_PART_OPAQUE)) {
		if (enc != NULL && (strcmp(enc, "8bit") == 0 || strcmp(enc, "binary") == 0))
			header_rewrite(edit_add(ed, part->header_offset, part->header_size), h,
				       part->header_size, "Content-Transfer-Encoding: 7bit\r\n");
		for (struct mime_part *c = part->children; c != NULL; c = c->next)
			if (convert_part(msg, c, ed, error_r) < 0)
				return -1;
		return 0;
	}
	if (!mail_has_8bit(b, part->body_size))
		return 0;
	if (enc != NULL && strcmp(enc, "7bit") != 0 && strcmp(enc, "8bit") != 0 &&
	    strcmp(enc, "binary") != 0) {
		*error_r = "8-bit data in a part already encoded (quoted-printable or base64)";
		return -1;
	}
	bool text = strcmp(part->type, "text") == 0;
	struct buf extra;
	buf_init(&extra, BUF_UNLIMITED);
	if (part->parent == NULL && !header_has_field(h, part->header_size, "MIME-Version"))
		buf_append_str(&extra, "MIME-Version: 1.0\r\n");
	if (!(part->flags & MIME_PART_HAS_CTYPE) &&
	    !header_has_field(h, part->header_size, "Content-Type") && text)
		buf_printf(&extra, "Content-Type: text/plain; charset=%s\r\n",
			   valid_utf8((const unsigned char *)b, part->body_size) ? "utf-8" :
			   "unknown-8bit");
	buf_printf(&extra, "Content-Transfer-Encoding: %s\r\n", text ? "quoted-printable" : "base64");
	header_rewrite(edit_add(ed, part->header_offset, part->header_size), h, part->header_size,
		       buf_cstr(&extra));
	buf_free(&extra);

	struct buf *out = edit_add(ed, part->body_offset, part->body_size);
	if (text) {
		qp_encode(out, b, part->body_size);
	} else {
		size_t n = part->body_size;
		bool crlf = n >= 2 && b[n - 2] == '\r' && b[n - 1] == '\n';
		b64_encode_lines(out, b, crlf ? n - 2 : n);
		if (crlf)
			buf_append_str(out, "\r\n");
	}
	return 0;
}

int mail_downgrade_7bit(const char *msg, size_t len, struct buf *out, const char **error_r)
{
	struct mime_part *root = NULL;
	struct edits ed = { NULL, 0, 0 };
	size_t start = out->len, cursor = 0;
	int ret = 0;

	if (!mail_has_8bit(msg, len)) {
		if (buf_append(out, msg, len) < 0) {
			*error_r = "message too big";
			return -1;
		}
		return 0;
	}
	if (mime_parse(msg, len, &root, error_r) < 0)
		return -1;
	if (convert_part(msg, root, &ed, error_r) < 0) {
		ret = -1;
		goto out;
	}
	for (size_t i = 0; i < ed.n && ret == 0; i++) {
		if (ed.v[i].off < cursor) {
			*error_r = "overlapping MIME parts";   /* cannot happen: tree order */
			ret = -1;
			break;
		}
		if (buf_append(out, msg + cursor, ed.v[i].off - cursor) < 0 ||
		    buf_append(out, buf_cstr(&ed.v[i].repl), ed.v[i].repl.len) < 0) {
			*error_r = "converted message too big";
			ret = -1;
		}
		cursor = ed.v[i].off + ed.v[i].len;
	}
	if (ret == 0 && buf_append(out, msg + cursor, len - cursor) < 0) {
		*error_r = "converted message too big";
		ret = -1;
	}
	if (ret == 0 && mail_has_8bit(out->data + start, out->len - start)) {
		*error_r = "8-bit data outside any MIME part (preamble or epilogue)";
		ret = -1;
	}
out:
	for (size_t i = 0; i < ed.n; i++)
		buf_free(&ed.v[i].repl);
	free(ed.v);
	mime_part_free(&root);
	return ret;
}
