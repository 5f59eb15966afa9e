/* Transfer-encoding decoders (RFC 2045 6.7, 6.8; RFC 2047 4.2 for the "Q"
 * variant) and part text in UTF-8.  See mime-decode.h.
 *
 * Invariants: single pass, linear in the input; never reads past
 * in + len; appends only (out's earlier contents are untouched). */
#include "mail/mime-decode.h"
#include "mail/charset.h"
#include "mail/mime.h"

#include <string.h>
#include <strings.h>

enum mime_encoding mime_encoding_parse(const char *v)
{
	if (v == NULL || strcasecmp(v, "7bit") == 0)
		return MIME_ENC_7BIT;
	if (strcasecmp(v, "8bit") == 0)
		return MIME_ENC_8BIT;
	if (strcasecmp(v, "binary") == 0)
		return MIME_ENC_BINARY;
	if (strcasecmp(v, "quoted-printable") == 0)
		return MIME_ENC_QP;
	if (strcasecmp(v, "base64") == 0)
		return MIME_ENC_BASE64;
	return MIME_ENC_UNKNOWN;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int mime_decode_base64(const char *in, size_t len, struct buf *out, bool *invalid_r)
{
	unsigned char tmp[768];
	size_t t = 0;
	unsigned acc = 0, nbits = 0, ngroup = 0;
	bool invalid = false;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		int v = b64_value(c);

		if (v < 0) {
			if (c == '=')
				break;
			if (c != '\r' && c != '\n' && c != ' ' && c != '\t')
				invalid = true;
			continue;
		}
		ngroup = (ngroup + 1) % 4;
		acc = (acc << 6) | (unsigned)v;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			tmp[t++] = (unsigned char)(acc >> nbits);
			acc &= (1u << nbits) - 1;
			if (t == sizeof(tmp)) {
				if (buf_append(out, tmp, t) < 0)
					return -1;
				t = 0;
			}
		}
	}
	if (ngroup == 1)
		invalid = true;  /* 6 bits left over can make no byte */
	if (invalid_r != NULL && invalid)
		*invalid_r = true;
	return t > 0 ? buf_append(out, tmp, t) : 0;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int mime_decode_qp(const char *in, size_t len, bool q_encoding, struct buf *out,
		   bool *invalid_r)
{
	const char *p = in, *end = in + len;
	bool invalid = false;

	while (p < end) {
		/* one line at a time: trailing white space is transport
		 * padding that an encoder never writes (rule 3) */
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end, *te = le;

		if (te > p && te[-1] == '\r' && nl != NULL)
			te--;
		const char *content_end = te;
		while (content_end > p && (content_end[-1] == ' ' || content_end[-1] == '\t'))
			content_end--;
		if (q_encoding)
			content_end = te;  /* an encoded word has no lines */
		bool soft = false;
		const char *q = p;
		while (q < content_end) {
			const char *run = q;
			while (q < content_end && *q != '=' && !(q_encoding && *q == '_'))
				q++;
			if (q > run && buf_append(out, run, (size_t)(q - run)) < 0)
				return -1;
			if (q >= content_end)
				break;
			if (*q == '_') {
				if (buf_append(out, " ", 1) < 0)
					return -1;
				q++;
				continue;
			}
			/* '=' */
			if (q + 1 == content_end) {
				soft = true;
				q++;
				break;
			}
			int h = q + 2 < content_end ? hex_value((unsigned char)q[1]) : -1;
			int l = h >= 0 ? hex_value((unsigned char)q[2]) : -1;
			if (h >= 0 && l >= 0) {
				unsigned char c = (unsigned char)(h << 4 | l);
				if (buf_append(out, &c, 1) < 0)
					return -1;
				q += 3;
			} else {
				invalid = true;
				if (buf_append(out, "=", 1) < 0)
					return -1;
				q++;
			}
		}
		if (nl == NULL)
			break;
		if (!soft && buf_append(out, te, (size_t)(nl + 1 - te)) < 0)
			return -1;
		p = nl + 1;
	}
	if (invalid_r != NULL && invalid)
		*invalid_r = true;
	return 0;
}

int mime_decode_body(enum mime_encoding enc, const char *in, size_t len, struct buf *out,
		     bool *invalid_r)
{
	switch (enc) {
	case MIME_ENC_QP:
		return mime_decode_qp(in, len, false, out, invalid_r);
	case MIME_ENC_BASE64:
		return mime_decode_base64(in, len, out, invalid_r);
	case MIME_ENC_UNKNOWN:
		if (invalid_r != NULL)
			*invalid_r = true;
		return buf_append(out, in, len);
	default:
		return buf_append(out, in, len);
	}
}

int mime_part_decoded_text(const char *msg, const struct mime_part *part, struct buf *out)
{
	struct buf raw;
	const char *charset;
	int ret;

	buf_init(&raw, out->max);
	if (mime_decode_body(mime_encoding_parse(part->encoding), msg + part->body_offset,
			     part->body_size, &raw, NULL) < 0) {
		buf_free(&raw);
		return -1;
	}
	if (strcmp(part->type, "text") == 0) {
		charset = mime_param_get(part->params, part->n_params, "charset");
		/* an unknown charset (1) still appended its best effort */
		ret = charset_to_utf8(charset, buf_cstr(&raw), raw.len, out) < 0 ? -1 : 0;
	} else
		ret = buf_append(out, buf_cstr(&raw), raw.len);
	buf_free(&raw);
	return ret;
}
