/* RFC 2047 encoded-word decoding to UTF-8 (sections 2, 4, 5, 6.2; RFC 2231
 * section 5 language suffix), see rfc2047.h.
 *
 * encoded-word = "=?" charset ["*" language] "?" encoding "?" text "?="
 * The scan is linear: at each "=?" we try to read one word (no nested
 * backtracking beyond it); a malformed word is copied as text.  Decoded
 * bytes of consecutive words in one charset are gathered and converted in
 * one go, because encoders split multi-byte characters between words.
 * Invariant: output is valid UTF-8 and holds no CR or LF. */
#include "mail/rfc2047.h"
#include "mail/charset.h"
#include "mail/mime-decode.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct word {
	const char *charset;
	size_t charset_len;
	char enc;             /* 'B' or 'Q' */
	const char *text;
	size_t text_len;
	size_t total;         /* bytes of the whole word */
};

/* An encoded word at p?  RFC 2047 2 allows no white space or '?' inside
 * the charset and encoding, and no '?' or white space in the text. */
static bool parse_word(const char *p, const char *end, struct word *w)
{
	const char *q = p + 2, *cs = q, *t;

	if (end - p < 8 || p[0] != '=' || p[1] != '?')
		return false;
	while (q < end && *q != '?' && *q != ' ' && *q != '\t' && *q != '\r' && *q != '\n')
		q++;
	if (q >= end || *q != '?' || q == cs)
		return false;
	w->charset = cs;
	w->charset_len = (size_t)(q - cs);
	/* RFC 2231 5: charset*language */
	const char *star = memchr(cs, '*', w->charset_len);
	if (star != NULL)
		w->charset_len = (size_t)(star - cs);
	if (w->charset_len == 0 || end - q < 4 || q[2] != '?')
		return false;
	w->enc = q[1] == 'b' ? 'B' : q[1] == 'q' ? 'Q' : q[1];
	if (w->enc != 'B' && w->enc != 'Q')
		return false;
	t = q + 3;
	q = t;
	while (q + 1 < end && !(q[0] == '?' && q[1] == '=')) {
		if (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')
			return false;
		q++;
	}
	if (q + 1 >= end)
		return false;
	w->text = t;
	w->text_len = (size_t)(q - t);
	w->total = (size_t)(q + 2 - p);
	return true;
}

static bool only_lwsp(const char *p, const char *end)
{
	for (; p < end; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			return false;
	}
	return true;
}

/* Append plain text: line breaks dropped (unfolding), the rest as UTF-8. */
static int plain(const char *p, const char *end, struct buf *out)
{
	while (p < end) {
		const char *q = p;
		while (q < end && *q != '\r' && *q != '\n')
			q++;
		if (q > p && charset_utf8_sanitize(p, (size_t)(q - p), out) < 0)
			return -1;
		while (q < end && (*q == '\r' || *q == '\n'))
			q++;
		p = q;
	}
	return 0;
}

static int flush(struct buf *pending, char *charset, struct buf *out)
{
	int r = 0;

	if (pending->len > 0) {
		struct buf tmp;
		/* decoded text may hold CR/LF (Q's =0D=0A); never pass them on */
		buf_init(&tmp, BUF_UNLIMITED);
		charset_to_utf8(charset, buf_cstr(pending), pending->len, &tmp);
		for (size_t i = 0; i < tmp.len && r == 0; i++) {
			char c = tmp.data[i];
			if (c == '\r' || c == '\n' || c == '\0')
				c = ' ';
			r = buf_append(out, &c, 1);
		}
		buf_free(&tmp);
	}
	buf_reset(pending);
	return r;
}

int rfc2047_decode(const char *in, size_t len, struct buf *out)
{
	const char *p = in, *end = in + len, *text_start = in;
	struct buf pending;
	char *charset = NULL;
	const char *last_word_end = NULL;
	int ret = 0;

	buf_init(&pending, BUF_UNLIMITED);
	while (p < end && ret == 0) {
		struct word w;
		const char *eq = memchr(p, '=', (size_t)(end - p));

		if (eq == NULL)
			break;
		if (!parse_word(eq, end, &w)) {
			p = eq + 1;
			continue;
		}
		/* the text between the previous word and this one: dropped
		 * when it is only white space (RFC 2047 6.2) */
		if (last_word_end == NULL || !only_lwsp(text_start, eq)) {
			if ((ret = flush(&pending, charset, out)) < 0)
				break;
			if ((ret = plain(text_start, eq, out)) < 0)
				break;
		}
		/* same charset as the pending bytes: keep gathering */
		if (charset != NULL && (strlen(charset) != w.charset_len ||
					strncasecmp(charset, w.charset, w.charset_len) != 0)) {
			if ((ret = flush(&pending, charset, out)) < 0)
				break;
		}
		free(charset);
		charset = xstrndup(w.charset, w.charset_len);
		if (w.enc == 'B')
			ret = mime_decode_base64(w.text, w.text_len, &pending, NULL);
		else
			ret = mime_decode_qp(w.text, w.text_len, true, &pending, NULL);
		p = eq + w.total;
		text_start = p;
		last_word_end = p;
	}
	if (ret == 0)
		ret = flush(&pending, charset, out);
	if (ret == 0)
		ret = plain(text_start, end, out);
	free(charset);
	buf_free(&pending);
	return ret;
}

char *rfc2047_decode_str(const char *in, size_t len)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	rfc2047_decode(in, len, &b);
	return buf_steal(&b);
}
