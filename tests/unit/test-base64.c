/* lib/base64: RFC 4648 test vectors, strict decoding, limits, and a
 * round trip checked against OpenSSL's encoder. */
#include "unit.h"
#include "lib/base64.h"
#include "lib/buf.h"

#include <openssl/evp.h>
#include <stdlib.h>

static const char *const vectors[][2] = {   /* RFC 4648 section 10 */
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};

static void test_vectors(void)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		struct buf b;
		buf_init(&b, 64);
		CHECK(base64_encode(&b, vectors[i][0], strlen(vectors[i][0])) == 0);
		CHECK_STR(buf_cstr(&b), vectors[i][1]);
		CHECK(b.len == base64_encoded_len(strlen(vectors[i][0])));
		char *s = base64_encode_str(vectors[i][0], strlen(vectors[i][0]));
		CHECK_STR(s, vectors[i][1]);
		free(s);
		buf_reset(&b);
		CHECK(base64_decode(&b, vectors[i][1], strlen(vectors[i][1])) == 0);
		CHECK_STR(buf_cstr(&b), vectors[i][0]);
		CHECK(b.len == strlen(vectors[i][0]));
		buf_free(&b);
	}
}

static void test_reject(void)
{
	static const char *const bad[] = {
		"Zg", "Zg=", "Zg===", "Z===", "====", "=Zg=", "Zh==", "Zm9=",
		"Zg==Zg==", "Zm9v\n", "Zm 9", "Zm9v YmFy", "Zm=v", "Zm9vYmF!",
		"Zm9vYmF-", "Zm9vYmF_", "\0\0\0\0",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf b;
		buf_init(&b, 64);
		buf_append_str(&b, "keep");
		size_t len = strlen(bad[i]) > 0 ? strlen(bad[i]) : 4;
		int r = base64_decode(&b, bad[i], len);
		if (r != -1)
			fprintf(stderr, "  accepted bad input %zu: %s\n", i, bad[i]);
		CHECK(r == -1);
		CHECK_STR(buf_cstr(&b), "keep");   /* unchanged on error */
		buf_free(&b);
	}
}

static void test_limits_and_exact(void)
{
	struct buf b;
	buf_init(&b, 5);
	CHECK(base64_decode(&b, "Zm9vYmFy", 8) == -1);   /* 6 bytes > max 5 */
	CHECK(b.len == 0);
	CHECK(base64_decode(&b, "Zm9vYmE=", 8) == 0);
	CHECK_STR(buf_cstr(&b), "fooba");
	buf_reset(&b);
	CHECK(base64_encode(&b, "foobar", 6) == -1);      /* 8 chars > max 5 */
	buf_free(&b);

	unsigned char out[4];
	CHECK(base64_decode_exact("Zm9vYg==", 8, out, 4) == 0);
	CHECK(memcmp(out, "foob", 4) == 0);
	CHECK(base64_decode_exact("Zm9vYmE=", 8, out, 4) == -1);
	CHECK(base64_decode_exact("Zm9v", 4, out, 4) == -1);
	CHECK(base64_decode_exact("Zm9vYh==", 8, out, 4) == -1);
	CHECK(base64_decoded_max(8) >= 6);
}

static void test_roundtrip(void)
{
	unsigned char data[300];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + 3);
	for (size_t n = 0; n <= sizeof(data); n += (n < 20 ? 1 : 37)) {
		unsigned char ref[512];
		int rn = EVP_EncodeBlock(ref, data, (int)n);
		char *s = base64_encode_str(data, n);
		CHECK(rn >= 0 && strlen(s) == (size_t)rn && memcmp(s, ref, (size_t)rn) == 0);
		struct buf b;
		buf_init(&b, BUF_UNLIMITED);
		CHECK(base64_decode(&b, s, strlen(s)) == 0);
		CHECK(b.len == n && (n == 0 || memcmp(b.data, data, n) == 0));
		buf_free(&b);
		free(s);
	}
}

/* Every byte value in every position of a group that is not the last (the
 * table-driven path) and of the last group: accepted exactly when it is an
 * alphabet character (or, in the last group, valid padding). */
static void test_every_byte(void)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	int wrong = 0;

	for (int c = 0; c < 256; c++) {
		bool in = c != 0 && strchr(alphabet, c) != NULL;
		for (int pos = 0; pos < 8; pos++) {
			char s[9] = "QUFBQUEA";             /* "AAAAA" and a zero byte */
			struct buf b;
			s[pos] = (char)c;
			buf_init(&b, BUF_UNLIMITED);
			int r = base64_decode(&b, s, 8);
			/* "QUE=" is "AA" with zero pad bits: padding only there */
			bool want = in || (c == '=' && pos == 7);
			if ((r == 0) != want)
				wrong++;
			buf_free(&b);
		}
	}
	CHECK(wrong == 0);
}

int main(void)
{
	RUN(test_vectors);
	RUN(test_reject);
	RUN(test_limits_and_exact);
	RUN(test_roundtrip);
	RUN(test_every_byte);
	return unit_summary("base64");
}
