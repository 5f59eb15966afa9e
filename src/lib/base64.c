/* Base64 encode/decode, RFC 4648 section 4 (see base64.h for the strict
 * decoding rules).  Written by hand rather than with EVP_DecodeBlock,
 * which accepts surrounding whitespace and reports padding only by the
 * caller re-counting '=' characters.
 * Invariant: decoding never writes past base64_decoded_max(len) bytes. */
#include "lib/base64.h"
#include "lib/buf.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

size_t base64_decoded_max(size_t n)
{
	return n / 4 * 3 + 3;
}

static void b64_encode_raw(char *dst, const unsigned char *src, size_t n)
{
	size_t i;
	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
		*dst++ = b64_alphabet[v >> 18];
		*dst++ = b64_alphabet[(v >> 12) & 63];
		*dst++ = b64_alphabet[(v >> 6) & 63];
		*dst++ = b64_alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)src[i] << 16;
		*dst++ = b64_alphabet[v >> 18];
		*dst++ = b64_alphabet[(v >> 12) & 63];
		*dst++ = '=';
		*dst++ = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8;
		*dst++ = b64_alphabet[v >> 18];
		*dst++ = b64_alphabet[(v >> 12) & 63];
		*dst++ = b64_alphabet[(v >> 6) & 63];
		*dst++ = '=';
	}
}

int base64_encode(struct buf *out, const void *p, size_t n)
{
	size_t elen = base64_encoded_len(n);
	char *tmp = xmalloc(elen + 1);
	b64_encode_raw(tmp, p, n);
	int ret = buf_append(out, tmp, elen);
	free(tmp);
	return ret;
}

char *base64_encode_str(const void *p, size_t n)
{
	size_t elen = base64_encoded_len(n);
	char *s = xmalloc(elen + 1);
	b64_encode_raw(s, p, n);
	s[elen] = '\0';
	return s;
}

/* Value of an alphabet character, or -1. */
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

/* b64_value() as a table, 0xff for "not in the alphabet" ('=' included). */
static unsigned char b64_table[256];
static pthread_once_t b64_table_once = PTHREAD_ONCE_INIT;

static void b64_table_init(void)
{
	for (int c = 0; c < 256; c++) {
		int v = b64_value((unsigned char)c);
		b64_table[c] = v < 0 ? 0xff : (unsigned char)v;
	}
}

/* Decode into dst (room for base64_decoded_max(len)); returns the decoded
 * length or -1. */
static long b64_decode_raw(unsigned char *dst, const char *in, size_t len)
{
	size_t o = 0, i = 0;
	if (len % 4 != 0)
		return -1;
	/* Every group but the last holds four alphabet characters and no
	 * padding: decode those through the table (DKIM signatures are
	 * hundreds of characters, decoded for every message); the last group,
	 * where '=' may appear, goes through the checks below. */
	pthread_once(&b64_table_once, b64_table_init);
	for (; len >= 4 && i < len - 4; i += 4) {
		const unsigned char *q = (const unsigned char *)in + i;
		unsigned a = b64_table[q[0]], b = b64_table[q[1]];
		unsigned c = b64_table[q[2]], d = b64_table[q[3]];
		if (((a | b | c | d) & 0xc0) != 0)   /* 0xff, or any value past 63 */
			return -1;
		uint32_t w = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		dst[o++] = (unsigned char)(w >> 16);
		dst[o++] = (unsigned char)(w >> 8);
		dst[o++] = (unsigned char)w;
	}
	for (; i < len; i += 4) {
		int v[4];
		bool last = i + 4 == len;
		size_t pad = 0;
		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];
			if (c == '=' && last && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			/* a data character after '=' is as wrong as any other junk */
			if (pad > 0)
				return -1;
			v[k] = b64_value(c);
			if (v[k] < 0)
				return -1;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			     (uint32_t)v[2] << 6 | (uint32_t)v[3];
		dst[o++] = (unsigned char)(w >> 16);
		if (pad == 2) {
			if ((w & 0xffff) != 0)   /* non-zero pad bits: not canonical */
				return -1;
			break;
		}
		dst[o++] = (unsigned char)(w >> 8);
		if (pad == 1) {
			if ((w & 0xff) != 0)
				return -1;
			break;
		}
		dst[o++] = (unsigned char)w;
	}
	return (long)o;
}

int base64_decode(struct buf *out, const char *in, size_t len)
{
	if (len == 0)
		return 0;
	if (len % 4 != 0)
		return -1;
	unsigned char *tmp = xmalloc(base64_decoded_max(len));
	long n = b64_decode_raw(tmp, in, len);
	int ret = n < 0 ? -1 : buf_append(out, tmp, (size_t)n);
	free(tmp);
	return ret;
}

int base64_decode_exact(const char *in, size_t len, void *out, size_t want)
{
	if (len % 4 != 0 || len != base64_encoded_len(want))
		return -1;
	unsigned char *tmp = xmalloc(base64_decoded_max(len));
	long n = b64_decode_raw(tmp, in, len);
	int ret = -1;
	if (n >= 0 && (size_t)n == want) {
		memcpy(out, tmp, want);
		ret = 0;
	}
	free(tmp);
	return ret;
}
