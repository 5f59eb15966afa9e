/* Mailbox name encodings: UTF-8 validation and modified UTF-7.
 *
 * Modified UTF-7 (RFC 3501 5.1.3): printable US-ASCII except '&' stands for
 * itself; '&' is "&-"; every other character is a run "&" + modified
 * BASE64 (',' instead of '/', no padding) of its UTF-16BE form + "-".
 * Decoding is strict, as the RFC asks of names a client creates: no empty
 * or adjacent runs, no printable ASCII inside a run, no leftover non-zero
 * bits, surrogates only in valid pairs.  Encoding always gives the one
 * canonical form, so decode(encode(x)) == x and names compare bytewise.
 *
 * RFC 3629 (UTF-8: no overlongs, no surrogates, nothing past U+10FFFF),
 * RFC 2152 (UTF-7), RFC 6855 (UTF8=ACCEPT). */
#include "imap/parse.h"

#include <string.h>

/* Decode one UTF-8 sequence at s[*i]; -1 when invalid. */
static int32_t utf8_next(struct slice s, size_t *i)
{
	const unsigned char *p = (const unsigned char *)s.p + *i;
	size_t left = s.len - *i, n;
	uint32_t cp, min;

	if (p[0] < 0x80) {
		(*i)++;
		return p[0];
	}
	if ((p[0] & 0xe0) == 0xc0) {
		n = 2; cp = p[0] & 0x1f; min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3; cp = p[0] & 0x0f; min = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4; cp = p[0] & 0x07; min = 0x10000;
	} else {
		return -1;
	}
	if (left < n)
		return -1;
	for (size_t k = 1; k < n; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*i += n;
	return (int32_t)cp;
}

bool imap_utf8_valid(struct slice s)
{
	size_t i = 0;

	while (i < s.len)
		if (utf8_next(s, &i) < 0)
			return false;
	return true;
}

static int put_utf8(struct buf *out, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp; n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6)); b[1] = (char)(0x80 | (cp & 0x3f)); n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12)); b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f)); n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18)); b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); b[3] = (char)(0x80 | (cp & 0x3f)); n = 4;
	}
	return buf_append(out, b, n);
}

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(char c)
{
	const char *p = c != '\0' ? strchr(b64, c) : NULL;

	return p != NULL ? (int)(p - b64) : -1;
}

int imap_mutf7_decode(struct slice s, struct buf *out)
{
	size_t i = 0;
	bool prev_run = false;

	while (i < s.len) {
		unsigned char c = (unsigned char)s.p[i];

		if (c < 0x20 || c > 0x7e)
			return -1;
		if (c != '&') {
			if (buf_append(out, &s.p[i], 1) < 0)
				return -1;
			i++;
			prev_run = false;
			continue;
		}
		i++;
		if (i < s.len && s.p[i] == '-') {
			if (buf_append(out, "&", 1) < 0)
				return -1;
			i++;
			prev_run = false;
			continue;
		}
		/* a base64 run; adjacent runs would not be canonical */
		if (prev_run)
			return -1;
		uint32_t bits = 0, high = 0;
		int nbits = 0;
		size_t units = 0;

		while (i < s.len && s.p[i] != '-') {
			int v = b64_value(s.p[i]);

			if (v < 0)
				return -1;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits >= 16) {
				uint32_t u = (bits >> (nbits - 16)) & 0xffff;

				nbits -= 16;
				bits &= (1u << nbits) - 1;
				units++;
				if (high != 0) {
					if (u < 0xdc00 || u > 0xdfff)
						return -1;
					if (put_utf8(out, 0x10000 + ((high - 0xd800) << 10) +
						     (u - 0xdc00)) < 0)
						return -1;
					high = 0;
				} else if (u >= 0xd800 && u <= 0xdbff) {
					high = u;
				} else if (u >= 0xdc00 && u <= 0xdfff) {
					return -1;
				} else {
					/* printable ASCII must be written directly */
					if (u >= 0x20 && u <= 0x7e)
						return -1;
					if (put_utf8(out, u) < 0)
						return -1;
				}
			}
			i++;
		}
		if (i >= s.len || units == 0 || high != 0 || nbits >= 6 || bits != 0)
			return -1;
		i++; /* '-' */
		prev_run = true;
	}
	return 0;
}

static int flush_run(struct buf *out, const uint16_t *u, size_t n)
{
	uint32_t bits = 0;
	int nbits = 0;

	if (buf_append(out, "&", 1) < 0)
		return -1;
	for (size_t k = 0; k < n; k++) {
		bits = (bits << 16) | u[k];
		nbits += 16;
		while (nbits >= 6) {
			nbits -= 6;
			if (buf_append(out, &b64[(bits >> nbits) & 0x3f], 1) < 0)
				return -1;
		}
		bits &= (1u << nbits) - 1;
	}
	if (nbits > 0 && buf_append(out, &b64[(bits << (6 - nbits)) & 0x3f], 1) < 0)
		return -1;
	return buf_append(out, "-", 1);
}

int imap_mutf7_encode(struct slice s, struct buf *out)
{
	size_t i = 0;
	struct buf units;
	int ret = -1;

	/* a run is kept as UTF-16 units in a growable buffer so that it is
	 * encoded as one canonical "&...-" whatever its length */
	buf_init(&units, BUF_UNLIMITED);
	while (i < s.len) {
		int32_t cp = utf8_next(s, &i);

		if (cp < 0)
			goto out;
		if (cp >= 0x20 && cp <= 0x7e) {
			if (units.len > 0) {
				if (flush_run(out, (const uint16_t *)(const void *)units.data,
					      units.len / 2) < 0)
					goto out;
				buf_reset(&units);
			}
			if (buf_append(out, cp == '&' ? "&-" : (const char *)&(char){ (char)cp },
				       cp == '&' ? 2 : 1) < 0)
				goto out;
			continue;
		}
		uint16_t u[2];
		size_t nu = 1;

		if (cp >= 0x10000) {
			u[0] = (uint16_t)(0xd800 + ((cp - 0x10000) >> 10));
			u[1] = (uint16_t)(0xdc00 + ((cp - 0x10000) & 0x3ff));
			nu = 2;
		} else {
			u[0] = (uint16_t)cp;
		}
		if (buf_append(&units, u, nu * sizeof(uint16_t)) < 0)
			goto out;
	}
	if (units.len > 0 &&
	    flush_run(out, (const uint16_t *)(const void *)units.data, units.len / 2) < 0)
		goto out;
	ret = 0;
out:
	buf_free(&units);
	return ret;
}
