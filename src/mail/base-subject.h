/* The "base subject" of RFC 5256 section 2.1 (IMAP SORT SUBJECT and the
 * THREAD algorithms), and the i;unicode-casemap comparison key (RFC 5051)
 * that SORT compares strings with.  Pure functions over UTF-8 text. */
#ifndef TERN_MAIL_BASE_SUBJECT_H
#define TERN_MAIL_BASE_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

/* Append the base subject of subject[0..len) to out.  The subject must
 * already be decoded to UTF-8 (RFC 2047 words and charsets: step (1) of
 * RFC 5256 2.1 is done by whoever decoded it); this function turns tabs,
 * CR and LF into spaces, collapses runs of spaces, then applies steps
 * (2) to (6): "(fwd)" trailers, "Re:" / "Fwd:" / "Fw:" leaders (with
 * "[blob]"s), leading blobs when something is left, and "[fwd: ...]"
 * wrapping, until nothing more matches.  Matching is ASCII
 * case-insensitive; the text is otherwise returned as written (not
 * casefolded).  *is_refwd_r (may be NULL) is set to true when the
 * extraction removed a subj-refwd, a "(fwd)" trailer or a "[fwd:" ... "]"
 * pair: the message is a reply or forward (RFC 5256 section 3).
 * Returns 0, or -1 past out's maximum. */
int base_subject(const char *subject, size_t len, struct buf *out, bool *is_refwd_r);

/* Append the comparison key of UTF-8 text s[0..len) for the
 * i;unicode-casemap collation (RFC 5051) to out: Unicode full case folding
 * and compatibility decomposition (libunistring u8_casefold, NFKD), the
 * same folding the search index uses.  Invalid UTF-8 is replaced by
 * U+FFFD first and NUL by a space.  Two strings compare equal under the
 * collation when their keys are equal, and ordering the keys with
 * memcmp orders the strings.  The search index folds its text and its
 * keys with it too.  Returns 0, or -1 past out's maximum (out then holds
 * a prefix). */
int unicode_casemap_key(const char *s, size_t len, struct buf *out);

#endif
