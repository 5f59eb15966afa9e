/* 8-bit to 7-bit conversion of a MIME message for a next hop without
 * 8BITMIME (RFC 6152 3: the client may convert the message to 7-bit
 * MIME instead of bouncing it).  A pure function over the message bytes.
 *
 * Every leaf part whose body has bytes >= 0x80 (or NUL) is re-encoded:
 * text parts as quoted-printable (RFC 2045 6.7), other types as base64 (RFC
 * 2045 6.8), and its Content-Transfer-Encoding field is replaced; a
 * multipart or message part declared 8bit/binary is then declared 7bit.
 * Headers are never changed beyond that: 8-bit bytes in any header (which
 * only SMTPUTF8 can carry) make the message impossible to downgrade, and
 * so do 8-bit bytes in a quoted-printable or base64 part, in a part past
 * the MIME parser's limits, or in a multipart preamble or epilogue.
 * A non-MIME message with an 8-bit body gets MIME-Version, Content-Type
 * text/plain (charset utf-8 when the body is valid UTF-8, else
 * unknown-8bit, RFC 1428) and quoted-printable.
 *
 * The caller signs the converted message again (DKIM) if it was signed. */
#ifndef TERN_MAIL_DOWNGRADE_H
#define TERN_MAIL_DOWNGRADE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

/* Does msg[0..len) have a byte >= 0x80 or a NUL (needs 8BITMIME)? */
bool mail_has_8bit(const char *msg, size_t len);

/* Append the 7-bit form of msg[0..len) (CRLF line ends) to out; a message
 * without 8-bit bytes is copied unchanged.  Returns 0, or -1 with
 * *error_r (a static string; out then holds unspecified partial output)
 * when the message cannot be downgraded or out's maximum is reached. */
int mail_downgrade_7bit(const char *msg, size_t len, struct buf *out, const char **error_r);

#endif
