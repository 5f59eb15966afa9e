/* Message previews (RFC 8970): a short plain-text extract of the text a
 * reader would see first, as IMAP FETCH PREVIEW returns it. */
#ifndef TERN_MAIL_PREVIEW_H
#define TERN_MAIL_PREVIEW_H

#include <stddef.h>

#include "lib/buf.h"

#define PREVIEW_MAX_CHARS 200   /* RFC 8970 3.1: at most 200 characters */

/* The preview of the message msg[0..len) (header and body, CRLF or LF
 * line ends): the first text/plain part that is not an attachment, else
 * the first such text/html part with its markup removed, transfer-decoded
 * and converted to UTF-8, white space runs (and control characters)
 * collapsed to one space, trimmed, and cut at PREVIEW_MAX_CHARS characters
 * (never inside a UTF-8 sequence).  "" when there is no text part or it is
 * empty.  Only the start of a long part is looked at.  Never fails;
 * malloc'd. */
char *preview_from_message(const char *msg, size_t len);

/* The text of the HTML in[0..len), appended to out: tags and comments
 * removed (block-level tags such as <p>, <br>, <div>, <td> become a
 * space), the content of <head>, <script> and <style> dropped, and the
 * entities &amp; &lt; &gt; &quot; &apos; &nbsp; &#NN; &#xNN; decoded
 * (&nbsp; as a space; unknown entities kept as written).  Input need not
 * be well-formed. */
void preview_html_to_text(const char *in, size_t len, struct buf *out);

/* Append the UTF-8 text in[0..len) to out with white space runs and
 * control characters collapsed to one space, leading and trailing space
 * removed, cut after max_chars characters (code points); invalid UTF-8
 * becomes U+FFFD first. */
void preview_normalize(const char *in, size_t len, size_t max_chars, struct buf *out);

#endif
