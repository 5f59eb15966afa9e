/* Internals of the search index shared by store/ files (not for other
 * modules): the hooks the store calls when it opens, commits and closes,
 * and the text extraction that turns a message file into the indexed
 * columns. */
#ifndef TERN_STORE_SEARCH_PRIVATE_H
#define TERN_STORE_SEARCH_PRIVATE_H

#include "store/search.h"
#include "lib/buf.h"
#include "mail/base-subject.h"

#include <stddef.h>

struct store;

/* Limits on the text kept per message (longer text is cut there, so a
 * huge message cannot make the index grow without bound).  Bytes of
 * folded UTF-8. */
#define SEARCH_MAX_HEADER_TEXT (1024 * 1024)
#define SEARCH_MAX_BODY_TEXT (16 * 1024 * 1024)

/* store.c: open DATA/search.db (creating or migrating it) and, unless the
 * store is read-only, start the indexer thread.  Never fails the store:
 * a problem is logged and every later search reports it. */
void store_search_open(struct store *store);
/* store.c: stop the indexer thread and close every search connection.
 * Call after the commit thread has stopped.  NULL search is fine. */
void store_search_close(struct store *store);
/* commit.c: a batch was committed; wake the indexer.  Cheap (one mutex),
 * safe from any thread, a no-op when the store has no search index. */
void store_search_notify(struct store *store);

/* The text of one message, column by column, as indexed: casefolded UTF-8
 * (search_fold), header values RFC 2047-decoded with line breaks turned
 * into spaces, several fields of one name joined by "\n". */
struct search_doc {
	struct buf from, to, cc, bcc, subject;
	struct buf headers;     /* "name: value\n" per field, name lowercased */
	struct buf body;        /* text/ parts and embedded message headers */
};

void search_doc_init(struct search_doc *d);
void search_doc_free(struct search_doc *d);
/* Fill d (initialised, empty) from the message msg[0..len).  Never fails on
 * malformed input; text past the limits above is dropped. */
void search_doc_extract(const char *msg, size_t len, struct search_doc *d);

/* Append s[0..len) to out casefolded for matching: the i;unicode-casemap
 * key (ASCII lowercased, everything else u8_casefold with NFKD; invalid
 * UTF-8 becomes U+FFFD, NUL a space), so SEARCH, SORT and the index fold
 * alike.  0, or -1 past out's maximum (out then holds a prefix). */
static inline int search_fold(const char *s, size_t len, struct buf *out)
{
	return unicode_casemap_key(s, len, out);
}

#endif
