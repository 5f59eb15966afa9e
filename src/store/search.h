/* The full-text search index of the store: IMAP SEARCH FROM, TO, CC, BCC,
 * SUBJECT, HEADER, BODY and TEXT (RFC 3501 6.4.4, RFC 9051 6.4.4) as
 * substring matches on decoded text, answered from an index instead of by
 * reading every message.
 *
 * Contract (docs/storage.md, "Search index", has the details):
 *  - The index is derived data kept in DATA/search.db (SQLite, FTS5 with the
 *    trigram tokenizer).  It can be deleted at any time; it is rebuilt from
 *    index.db and the message files.
 *  - Text is indexed after the delivery commit by a background thread of the
 *    store (never on the SMTP or APPEND path).  A search first indexes,
 *    synchronously, whatever of its mailbox is not indexed yet, so its
 *    answer covers every message committed before the call.
 *  - Matching: header values are RFC 2047-decoded, bodies decoded from their
 *    Content-Transfer-Encoding and charset to UTF-8; text and needle are
 *    compared after Unicode full case folding and compatibility
 *    decomposition (libunistring u8_casefold with NFKD), so "STRASSE"
 *    finds "straße".  Only text/ parts (and the header of embedded
 *    message/rfc822 parts) count as body text.
 *  - Results never include expunged or moved-away messages (they are
 *    checked against index.db); UIDs are reported in ascending order.
 *  - Thread-safe: every thread uses its own SQLite connection.
 *  - Functions returning int give 0 on success and a negative value on error
 *    with a readable *error_r, like the rest of the store. */
#ifndef TERN_STORE_SEARCH_H
#define TERN_STORE_SEARCH_H

#include <stdint.h>

struct store;

#define STORE_SEARCH_SCHEMA_VERSION 1

enum store_search_field {
	STORE_SEARCH_FROM,      /* decoded From field(s) */
	STORE_SEARCH_TO,        /* decoded To field(s) */
	STORE_SEARCH_CC,        /* decoded Cc field(s) */
	STORE_SEARCH_BCC,       /* decoded Bcc field(s) */
	STORE_SEARCH_SUBJECT,   /* decoded Subject field(s) */
	STORE_SEARCH_HEADER,    /* the named header field(s), RFC 3501 SEARCH HEADER */
	STORE_SEARCH_BODY,      /* text of the body (text/ parts, embedded headers) */
	STORE_SEARCH_TEXT,      /* every header field and the body */
};

/* Call cb(ctx, uid) for each message of mailbox_id whose field contains
 * needle (UTF-8, compared case-insensitively as described above), in
 * ascending UID order; cb returning non-zero stops the search (still a
 * success).  header_name is the field name for STORE_SEARCH_HEADER (ASCII,
 * any case) and ignored otherwise.
 * An empty needle matches every message, except for STORE_SEARCH_HEADER
 * where it matches the messages that have the field at all (RFC 3501
 * 6.4.4).  A mailbox that does not exist has no matches.  Needles of at
 * least three characters are answered by the trigram index; shorter ones
 * by a scan of the mailbox's indexed text (never of the message files).
 * Fails when the needle is not valid UTF-8 or the index cannot be used. */
int store_search_text(struct store *store, int64_t mailbox_id, enum store_search_field field,
		      const char *header_name, const char *needle,
		      int (*cb)(void *ctx, uint32_t uid), void *ctx, const char **error_r);

/* Index now, on the calling thread, every message of every mailbox that
 * is not indexed yet (the background thread does the same in batches).
 * For tests, benchmarks and `tern` maintenance commands. */
int store_search_sync(struct store *store, const char **error_r);

/* Throw the whole index away and index every message again (after a
 * change to the text extraction, or `tern store rebuild`).  Synchronous. */
int store_search_reindex(struct store *store, const char **error_r);

/* Numbers for tests and metrics: messages with text in the index (some may
 * belong to expunged messages not yet cleaned up) and messages indexed by
 * this process since the store was opened. */
int store_search_stats(struct store *store, int64_t *docs_r, int64_t *indexed_r,
		       const char **error_r);

#endif
