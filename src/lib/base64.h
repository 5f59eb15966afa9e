/* Base64 (RFC 4648 section 4, the standard alphabet with '=' padding).
 *
 * Encoding always pads.  Decoding is strict, because its input comes from
 * peers (SMTP AUTH responses, SCRAM attributes) and from stored hashes:
 * only the 64 alphabet characters, length a multiple of 4, '=' only as one
 * or two final characters, and the unused bits of the last group zero
 * (RFC 4648 section 3.5), so every byte string has exactly one accepted
 * encoding.  No whitespace or line breaks are skipped. */
#ifndef TERN_LIB_BASE64_H
#define TERN_LIB_BASE64_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* Length of the encoding of n bytes (without a terminating NUL). */
size_t base64_encoded_len(size_t n);
/* Upper bound of the decoded length of n characters of base64. */
size_t base64_decoded_max(size_t n);

/* Append the encoding of p[0..n) to out.  0, or -1 (out unchanged) when
 * it would pass out's maximum. */
int base64_encode(struct buf *out, const void *p, size_t n);
/* The encoding of p[0..n) as a malloc'd NUL-terminated string. */
char *base64_encode_str(const void *p, size_t n);

/* Decode in[0..len) and append the bytes to out.  0, or -1 with out
 * unchanged when the input is not canonical base64 or the result would
 * pass out's maximum.  An empty input decodes to nothing (0). */
int base64_decode(struct buf *out, const char *in, size_t len);
/* Decode into a caller array of exactly want bytes: 0 when in decodes to
 * exactly want bytes, -1 otherwise (then out is unspecified). */
int base64_decode_exact(const char *in, size_t len, void *out, size_t want);

#endif
