/* IMAP BODY and BODYSTRUCTURE (RFC 3501 7.4.2, RFC 9051 7.5.2) from the
 * MIME tree of mail/mime.h. */
#ifndef TERN_MAIL_IMAP_BODYSTRUCTURE_H
#define TERN_MAIL_IMAP_BODYSTRUCTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

struct mime_part;

/* Append the body structure of part (normally a tree's root, which stands
 * for the whole message; any part works) of msg to out, with its
 * parentheses.  extended: BODYSTRUCTURE (with extension data: MD5,
 * disposition, language, location for leaves; parameters, disposition,
 * language, location for multiparts); otherwise BODY.  msg is the buffer
 * the tree was parsed from (read for the envelopes of message/rfc822
 * parts).  Sizes are byte counts of the stored part bodies; lines are LF
 * counts, given for text/ and message/rfc822 parts. */
void imap_bodystructure_write(struct buf *out, const char *msg, const struct mime_part *part,
			      bool extended);

#endif
