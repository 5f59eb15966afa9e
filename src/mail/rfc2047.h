/* RFC 2047 encoded words ("=?charset?B?...?=", "=?charset*lang?Q?...?=")
 * in header field values, decoded to UTF-8.  Used for SEARCH SUBJECT/FROM
 * and for display names; ENVELOPE itself keeps the words encoded, as the
 * RFC 3501 grammar expects. */
#ifndef TERN_MAIL_RFC2047_H
#define TERN_MAIL_RFC2047_H

#include <stddef.h>

#include "lib/buf.h"

/* Decode the header value in[0..len) (folded or not) and append it to out
 * as UTF-8: folding line breaks are removed (RFC 5322 2.2.3), encoded
 * words decoded from their charset, linear white space between two
 * adjacent encoded words dropped (RFC 2047 6.2), and any other text made
 * valid UTF-8 (RFC 6532 raw UTF-8 kept, stray 8-bit bytes as U+FFFD).
 * Malformed words are kept as they are.  Lenient like common readers: a
 * word need not be surrounded by white space, and adjacent words of one
 * charset are joined before conversion so a character split between two
 * of them survives.  0, or -1 past out's maximum. */
int rfc2047_decode(const char *in, size_t len, struct buf *out);

/* Convenience: rfc2047_decode() into a malloc'd NUL-terminated string. */
char *rfc2047_decode_str(const char *in, size_t len);

#endif
