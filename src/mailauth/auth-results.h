/* Authentication-Results header fields (RFC 8601): recognise the fields
 * that claim an authserv-id, and put ours at the top of a message while
 * removing forged ones.  Pure functions over message bytes. */
#ifndef TERN_MAILAUTH_AUTH_RESULTS_H
#define TERN_MAILAUTH_AUTH_RESULTS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

/* Does the raw value of an Authentication-Results field (after the colon,
 * folding kept) name authserv_id as its authserv-id (RFC 8601 2.2: CFWS,
 * then a token or quoted-string; compared without case, as a domain)?
 * A value that cannot be parsed claims nothing. */
bool auth_results_claims(const char *value, size_t len, const char *authserv_id);

/* Append to out a property value (RFC 8601 2.2 pvalue) for v: as is when
 * it holds only atext, '.' and '@', else as a quoted-string; control
 * characters are left out.  Returns 0 or -1 when out is full. */
int auth_results_append_pvalue(struct buf *out, const char *v);

/* Before the next resinfo clause of a field (RFC 8601 2.2: resinfo are
 * separated by ";"): nothing when out is empty, else ";" and a fold
 * (CRLF TAB), so every clause starts a line of its own and no line of the
 * field grows past RFC 5322's limit however many clauses it holds.
 * Returns 0 or -1 when out is full. */
int auth_results_append_separator(struct buf *out);

/* Copy the message msg[0..len) to out with
 *   "Authentication-Results: AUTHSERV_ID;\r\n\tRESINFO\r\n"
 * inserted after its first `after` header fields (1: just below our own
 * Received field, RFC 8601 5 and RFC 5321 4.4), and without every
 * Authentication-Results field of the header section that claims
 * authserv_id (RFC 8601 5: those are forged or stale).  Everything else,
 * malformed header lines and the body included, is copied byte for byte.
 * resinfo must hold no CR or LF except the folds of
 * auth_results_append_separator().  *removed_r (may be NULL) counts the
 * fields removed.  Returns 0, or -1 with *error_r when out is full. */
int auth_results_rewrite(const char *msg, size_t len, unsigned after, const char *authserv_id,
			 const char *resinfo, struct buf *out, unsigned *removed_r,
			 const char **error_r);

#endif
