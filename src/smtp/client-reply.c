/* SMTP reply parser for the client (see client-reply.h).
 *
 * Invariants: the parser holds at most one unfinished line
 * (SMTP_REPLY_LINE_MAX bytes) and the lines of one unfinished reply
 * (SMTP_REPLY_LINES_MAX); nothing a peer sends leaves it without
 * sanitizing; an error is sticky, since the byte stream can no longer be
 * split into replies reliably.
 * RFC 5321 4.2 (reply syntax: "Reply-code [ SP textstring ] CRLF", the
 * code the same on every line of a multi-line reply), 4.5.3.1.5 (reply
 * line length; we allow more than 512, as real servers exceed it), RFC
 * 3463 2 (enhanced status code syntax), RFC 2034 4 (it prefixes the text
 * of each line). */
#include "smtp/client-reply.h"

#include <string.h>

#define REPLY_BUF_MAX ((size_t)SMTP_REPLY_LINES_MAX * (SMTP_REPLY_LINE_MAX + 1))

void smtp_client_reply_init(struct smtp_client_reply *r)
{
	r->code = 0;
	r->enhanced[0] = '\0';
	buf_init(&r->text, REPLY_BUF_MAX);
	buf_init(&r->lines, REPLY_BUF_MAX);
	r->n_lines = 0;
}

void smtp_client_reply_free(struct smtp_client_reply *r)
{
	buf_free(&r->text);
	buf_free(&r->lines);
	r->code = 0;
	r->enhanced[0] = '\0';
	r->n_lines = 0;
}

void smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	buf_init(&p->line, SMTP_REPLY_LINE_MAX);
	p->error = false;
	smtp_client_reply_init(&p->cur);
}

void smtp_reply_parser_free(struct smtp_reply_parser *p)
{
	buf_free(&p->line);
	smtp_client_reply_free(&p->cur);
}

bool smtp_reply_parser_busy(const struct smtp_reply_parser *p)
{
	return p->line.len > 0 || p->cur.n_lines > 0;
}

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

size_t smtp_reply_sanitize(struct buf *out, const char *src, size_t len, size_t max)
{
	size_t n = len, i;
	bool cut = false;

	if (n > max) {
		n = max >= 3 ? max - 3 : 0;
		cut = true;
	}
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)src[i];
		char o = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
		if (buf_append(out, &o, 1) < 0)
			return i;
	}
	if (cut && max >= 3 && buf_append(out, "...", 3) == 0)
		n += 3;
	return n;
}

/* Length of an RFC 3463 code at the start of s ("C.SSS.DDD" with C =
 * class, 1 to 3 digits for subject and detail) followed by a space or
 * the end; 0 when there is none. */
static size_t enhanced_len(const char *s, size_t len, char class)
{
	size_t i = 0, digits;

	if (len < 5 || s[0] != class || s[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		for (digits = 0; i < len && is_digit(s[i]) && digits < 4; i++)
			digits++;
		if (digits == 0 || digits > 3)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	return i;
}

/* One complete line l[0..n) (line end removed).  Returns 1 when it ended
 * the reply, 0 when more lines follow, -1 on a protocol error. */
static int reply_line(struct smtp_reply_parser *p, const char *l, size_t n, const char **error_r)
{
	struct smtp_client_reply *r = &p->cur;
	bool last;
	int code;
	size_t elen;

	if (n < 3 || !is_digit(l[0]) || !is_digit(l[1]) || !is_digit(l[2])) {
		*error_r = "reply line does not start with a 3-digit code";
		return -1;
	}
	if (l[0] < '2' || l[0] > '5') {
		*error_r = "reply code outside 2xx-5xx";
		return -1;
	}
	code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (n == 3 || l[3] == ' ') {
		last = true;
	} else if (l[3] == '-') {
		last = false;
	} else {
		*error_r = "reply code not followed by space or hyphen";
		return -1;
	}
	if (r->n_lines > 0 && code != r->code) {
		*error_r = "reply code changes within a multi-line reply";
		return -1;
	}
	if (r->n_lines >= SMTP_REPLY_LINES_MAX) {
		*error_r = "too many lines in a reply";
		return -1;
	}
	r->code = code;
	l = n > 4 ? l + 4 : l + n;
	n = n > 4 ? n - 4 : 0;
	elen = enhanced_len(l, n, (char)('0' + code / 100));
	if (elen > 0) {
		if (r->n_lines == 0) {
			memcpy(r->enhanced, l, elen);
			r->enhanced[elen] = '\0';
		}
		l += elen;
		n -= elen;
		while (n > 0 && *l == ' ') {
			l++;
			n--;
		}
	}
	/* both fit: the buffers hold LINES_MAX lines of LINE_MAX + 1 */
	smtp_reply_sanitize(&r->lines, l, n, n);
	buf_append(&r->lines, "\n", 1);
	if (n > 0) {
		if (r->text.len > 0)
			buf_append(&r->text, " ", 1);
		smtp_reply_sanitize(&r->text, l, n, n);
	}
	r->n_lines++;
	return last ? 1 : 0;
}

/* The reply is complete: cap its text and hand it over. */
static void reply_finish(struct smtp_reply_parser *p, struct smtp_client_reply *out)
{
	struct smtp_client_reply *r = &p->cur;

	if (r->text.len > SMTP_REPLY_TEXT_MAX) {
		r->text.len = SMTP_REPLY_TEXT_MAX - 3;
		buf_append(&r->text, "...", 3);
	}
	smtp_client_reply_free(out);
	*out = *r;
	smtp_client_reply_init(r);
}

enum smtp_reply_status smtp_reply_parse(struct smtp_reply_parser *p, const char *data,
					size_t len, size_t *consumed_r, struct smtp_client_reply *reply_r,
					const char **error_r)
{
	size_t pos = 0;

	*consumed_r = 0;
	if (p->error) {
		*error_r = "reply parser already failed";
		return SMTP_REPLY_ERROR;
	}
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t chunk = nl != NULL ? (size_t)(nl - (data + pos)) : len - pos;
		size_t n;
		int rc;

		/* the limit counts the line end: at most LINE_MAX - 1 bytes
		 * before the LF (a CR among them) */
		if (p->line.len + chunk > SMTP_REPLY_LINE_MAX - 1 ||
		    buf_append(&p->line, data + pos, chunk) < 0) {
			p->error = true;
			*consumed_r = pos;
			*error_r = "reply line too long";
			return SMTP_REPLY_ERROR;
		}
		pos += chunk;
		if (nl == NULL)
			break;
		pos++;  /* the LF */
		n = p->line.len;
		if (n > 0 && p->line.data[n - 1] == '\r')
			n--;
		rc = reply_line(p, buf_cstr(&p->line), n, error_r);
		buf_reset(&p->line);
		if (rc < 0) {
			p->error = true;
			*consumed_r = pos;
			return SMTP_REPLY_ERROR;
		}
		if (rc == 1) {
			reply_finish(p, reply_r);
			*consumed_r = pos;
			return SMTP_REPLY_OK;
		}
	}
	*consumed_r = pos;
	return SMTP_REPLY_NEED_MORE;
}

bool smtp_client_reply_has_keyword(const struct smtp_client_reply *r, const char *keyword,
			    struct slice *params_r)
{
	const char *s = buf_cstr(&r->lines), *end = s + r->lines.len;
	size_t klen = strlen(keyword);

	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl != NULL ? nl : end;
		size_t n = (size_t)(e - s);

		if (n >= klen && strncasecmp(s, keyword, klen) == 0 &&
		    (n == klen || s[klen] == ' ' || s[klen] == '=')) {
			if (params_r != NULL) {
				const char *a = s + klen;
				/* "AUTH=LOGIN PLAIN" (old servers) counts like "AUTH LOGIN PLAIN" */
				while (a < e && (*a == ' ' || *a == '='))
					a++;
				*params_r = (struct slice){ a, (size_t)(e - a) };
			}
			return true;
		}
		s = e + 1;
	}
	return false;
}
