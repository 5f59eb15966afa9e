/* Charset conversion to UTF-8 through iconv(3) (glibc), see charset.h.
 *
 * Invariants: never reads past in + len; output is always well-formed
 * UTF-8 (RFC 3629), whatever the input; one iconv descriptor per call, so
 * no shared state between threads.  Charset names follow the IANA
 * registry used by RFC 2045 5.1 / RFC 2047 2; iconv knows the common
 * aliases.  Labels that mail clients get wrong are mapped to what they
 * meant (ISO-8859-1 to its Windows-1252 superset, as every browser and
 * mail client does, "ks_c_5601-1987" to CP949). */
#include "mail/charset.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

static const char REPLACEMENT[] = "\xef\xbf\xbd";  /* U+FFFD */

bool charset_is_utf8(const char *name, size_t len)
{
	static const char *const names[] = { "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968",
					     "iso-646-us", "us" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i]) == len && strncasecmp(name, names[i], len) == 0)
			return true;
	}
	return false;
}

/* Length of the well-formed UTF-8 sequence at p (n > 0 bytes available),
 * or 0.  RFC 3629 section 4. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t need;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1;
	else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < need + 1)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i <= need; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	}
	return need + 1;
}

int charset_utf8_sanitize(const char *in, size_t len, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)in, *end = p + len;

	while (p < end) {
		const unsigned char *run = p;
		size_t n;

		/* copy runs of valid sequences in one append */
		while (p < end && (n = utf8_len(p, (size_t)(end - p))) > 0)
			p += n;
		if (p > run && buf_append(out, run, (size_t)(p - run)) < 0)
			return -1;
		if (p < end) {
			if (buf_append(out, REPLACEMENT, 3) < 0)
				return -1;
			p++;
		}
	}
	return 0;
}

/* ASCII kept, every other byte U+FFFD: for charsets nobody knows. */
static int unknown_8bit(const char *in, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		int r = (unsigned char)in[i] < 0x80 ? buf_append(out, in + i, 1) :
						       buf_append(out, REPLACEMENT, 3);
		if (r < 0)
			return -1;
	}
	return 0;
}

static const char *charset_alias(const char *name)
{
	if (strcasecmp(name, "iso-8859-1") == 0 || strcasecmp(name, "latin1") == 0 ||
	    strcasecmp(name, "iso8859-1") == 0 || strcasecmp(name, "iso_8859-1") == 0)
		return "WINDOWS-1252";
	if (strcasecmp(name, "ks_c_5601-1987") == 0)
		return "CP949";
	if (strcasecmp(name, "gb2312") == 0)
		return "GB18030";
	return name;
}

int charset_to_utf8(const char *charset, const char *in, size_t len, struct buf *out)
{
	char name[64];
	char tmp[4096];
	iconv_t cd;
	char *ip = (char *)in;
	size_t ileft = len;
	int ret = 0;

	if (charset == NULL || *charset == '\0' || charset_is_utf8(charset, strlen(charset)))
		return charset_utf8_sanitize(in, len, out);
	/* a charset name longer than any real one is unknown, not truncated */
	/* a peer's name reaches iconv_open(): no "//TRANSLIT"-style
	 * suffixes or other syntax, only what charset names are made of */
	if (strlen(charset) >= sizeof(name) ||
	    strspn(charset, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:+()") !=
		    strlen(charset))
		return unknown_8bit(in, len, out) < 0 ? -1 : 1;
	strcpy(name, charset_alias(charset));
	cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return unknown_8bit(in, len, out) < 0 ? -1 : 1;
	while (ileft > 0) {
		char *op = tmp;
		size_t oleft = sizeof(tmp);
		size_t r = iconv(cd, &ip, &ileft, &op, &oleft);
		int err = errno;

		/* iconv's output is UTF-8 but checked anyway: cheap, and the
		 * invariant then does not depend on iconv's tables */
		if (op > tmp && charset_utf8_sanitize(tmp, (size_t)(op - tmp), out) < 0) {
			ret = -1;
			break;
		}
		if (r != (size_t)-1)
			continue;
		if (err == E2BIG)
			continue;
		/* EILSEQ or EINVAL (truncated at the end): one byte becomes
		 * U+FFFD, and the state is reset for the rest */
		if (buf_append(out, REPLACEMENT, 3) < 0) {
			ret = -1;
			break;
		}
		ip++;
		ileft--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	/* flush a stateful encoding's shift back to the initial state */
	if (ret == 0) {
		char *op = tmp;
		size_t oleft = sizeof(tmp);
		if (iconv(cd, NULL, NULL, &op, &oleft) != (size_t)-1 && op > tmp)
			ret = charset_utf8_sanitize(tmp, (size_t)(op - tmp), out);
	}
	iconv_close(cd);
	return ret;
}
