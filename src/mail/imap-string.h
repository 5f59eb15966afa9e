/* IMAP string output (RFC 3501 4.3, 9 / RFC 9051 4.3): quoted strings
 * where the grammar lets us, literals otherwise, NIL for absent values.
 * Used by ENVELOPE and BODYSTRUCTURE here and by the IMAP server. */
#ifndef TERN_MAIL_IMAP_STRING_H
#define TERN_MAIL_IMAP_STRING_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

/* Append s[0..len) as an IMAP string.  A quoted string ("..." with '"'
 * and '\' escaped) when every byte is a 7-bit TEXT-CHAR (no CR, LF, NUL,
 * no 8-bit) and it is not too long; a literal "{n}\r\n" + bytes
 * otherwise.  NUL bytes can never be sent in a literal (RFC 3501 9:
 * CHAR8 excludes %x00) and are dropped. */
void imap_append_string(struct buf *out, const char *s, size_t len);

/* As imap_append_string(), but NIL when s is NULL. */
void imap_append_nstring(struct buf *out, const char *s, size_t len);

/* NUL-terminated convenience: NIL when s is NULL. */
void imap_append_nstr(struct buf *out, const char *s);

/* As imap_append_nstring() after removing every CR and LF (what a
 * folded header value needs: unfolding keeps the white space). */
void imap_append_nstring_nolf(struct buf *out, const char *s, size_t len);

#endif
