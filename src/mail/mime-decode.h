/* Content-Transfer-Encoding decoders (RFC 2045 6.7 quoted-printable, 6.8
 * base64) for part bodies, as IMAP BINARY (RFC 3516) and SEARCH need them,
 * and text of a part converted to UTF-8.
 *
 * Decoders are lenient the way mail readers are: base64 skips characters
 * outside its alphabet and stops at the first '=' padding; quoted-printable
 * keeps a malformed "=" sequence as it is.  Both report what they had to
 * skip through *invalid_r so BINARY can answer UNKNOWN-CTE (RFC 3516 4.3)
 * when it wants to be strict. */
#ifndef TERN_MAIL_MIME_DECODE_H
#define TERN_MAIL_MIME_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

struct mime_part;

enum mime_encoding {
	MIME_ENC_7BIT,      /* also the default when the header is absent */
	MIME_ENC_8BIT,
	MIME_ENC_BINARY,
	MIME_ENC_QP,
	MIME_ENC_BASE64,
	MIME_ENC_UNKNOWN,   /* an x-token or garbage: RFC 2045 6.4 says treat as opaque */
};

/* Classify a Content-Transfer-Encoding value (any case, NULL = 7bit). */
enum mime_encoding mime_encoding_parse(const char *value);

/* Decode base64 in[0..len) and append the bytes to out.  Non-alphabet
 * characters (line ends, spaces, junk) are skipped; decoding stops at '='.
 * *invalid_r (may be NULL) is set true when junk was skipped or the data
 * ended in the middle of a group.  0, or -1 past out's maximum. */
int mime_decode_base64(const char *in, size_t len, struct buf *out, bool *invalid_r);

/* Decode quoted-printable in[0..len) and append to out: "=XX" (either
 * case of hex) to a byte, "=" at the end of a line is a soft break, and
 * trailing white space before a line end is dropped (RFC 2045 6.7 rule 3).
 * Line ends are kept as they are.  With q_encoding (RFC 2047 4.2) '_' is
 * a space too.  *invalid_r as above.  0, or -1 past out's maximum. */
int mime_decode_qp(const char *in, size_t len, bool q_encoding, struct buf *out,
		   bool *invalid_r);

/* Decode a body with the given transfer encoding; identity for 7bit,
 * 8bit, binary and unknown encodings (*invalid_r true for unknown).
 * 0, or -1 past out's maximum. */
int mime_decode_body(enum mime_encoding enc, const char *in, size_t len, struct buf *out,
		     bool *invalid_r);

/* The body of a leaf part of msg decoded (transfer encoding) and, for
 * text/ parts, converted from its charset to UTF-8; other parts are only
 * decoded.  Appended to out.  0, or -1 past out's maximum. */
int mime_part_decoded_text(const char *msg, const struct mime_part *part, struct buf *out);

#endif
