/* Charset conversion to UTF-8 for message text (RFC 2047 words, RFC 2231
 * parameter values, text/ part bodies), through iconv(3).
 *
 * Conversions never fail on bad input: a byte sequence that is invalid in
 * the source charset becomes U+FFFD, and an unknown charset is treated as
 * "unknown 8-bit" (ASCII kept, every other byte U+FFFD) and reported by
 * a return of 1 so the caller may note it.  No global state: each
 * call opens its own iconv descriptor, so this is thread-safe. */
#ifndef TERN_MAIL_CHARSET_H
#define TERN_MAIL_CHARSET_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

/* Is name (len bytes, any case) a spelling of UTF-8 or of US-ASCII (which
 * UTF-8 includes)? */
bool charset_is_utf8(const char *name, size_t len);

/* Convert in[0..len) from charset (a MIME charset name, any case, may be
 * NULL or empty for US-ASCII) to UTF-8 and append it to out.  Returns 0;
 * 1 when the charset is unknown to iconv (the bytes were still appended,
 * non-ASCII as U+FFFD); -1 when out's maximum was reached (out then holds
 * what fitted). */
int charset_to_utf8(const char *charset, const char *in, size_t len, struct buf *out);

/* Append in[0..len) to out as valid UTF-8: well-formed sequences (RFC 3629)
 * are copied, every other byte becomes U+FFFD.  Returns 0, or -1 past
 * out's maximum. */
int charset_utf8_sanitize(const char *in, size_t len, struct buf *out);

#endif
