/* IMAP ENVELOPE (RFC 3501 7.4.2, RFC 9051 7.5.2) of a message header. */
#ifndef TERN_MAIL_IMAP_ENVELOPE_H
#define TERN_MAIL_IMAP_ENVELOPE_H

#include <stddef.h>

#include "lib/buf.h"

#define IMAP_ENVELOPE_MAX_ADDRESSES 10000   /* per field; more are not listed */

/* Append the ENVELOPE of the header section hdr[0..len) to out, with its
 * parentheses: (date subject from sender reply-to to cc bcc in-reply-to
 * message-id).  The first field of each name counts.  Strings are the
 * field values with line breaks removed (RFC 2047 words left encoded);
 * absent fields are NIL, present but empty ones "".  Sender and Reply-To
 * default to From (RFC 3501 7.4.2).  Address lists are NIL when absent or
 * empty; a missing mailbox or domain is written MISSING_MAILBOX /
 * MISSING_DOMAIN as Dovecot does; groups use the (NIL NIL "name" NIL) ...
 * (NIL NIL NIL NIL) form. */
void imap_envelope_write(struct buf *out, const char *hdr, size_t len);

#endif
