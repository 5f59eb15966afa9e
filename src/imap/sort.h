/* IMAP SORT and THREAD (RFC 5256), ESORT (RFC 5267 section 3: SORT
 * RETURN (MIN MAX COUNT ALL)) and SORT=DISPLAY (RFC 5957): the argument
 * parsers, the sort over per-message summaries, and both threading
 * algorithms.  Pure functions, no I/O: cmd-sort.c feeds them from the
 * store's message summaries (store_summary_list) and writes the replies.
 *
 * Ownership: parse results borrow from the argument tree they were given
 * (the search keys are a sub-array of it).  struct imap_sort_msg strings
 * are borrowed from the caller for the duration of a call. */
#ifndef TERN_IMAP_SORT_H
#define TERN_IMAP_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "imap/parse.h"
#include "lib/buf.h"

#define IMAP_SORT_MAX_CRITERIA 32   /* sort-criterion items in one SORT */

enum imap_sort_key {
	IMAP_SORT_ARRIVAL,      /* internal date */
	IMAP_SORT_CC,           /* addr-mailbox of the first Cc address */
	IMAP_SORT_DATE,         /* sent date (RFC 5256 2.2) */
	IMAP_SORT_FROM,         /* addr-mailbox of the first From address */
	IMAP_SORT_SIZE,         /* RFC822.SIZE */
	IMAP_SORT_SUBJECT,      /* base subject (RFC 5256 2.1) */
	IMAP_SORT_TO,           /* addr-mailbox of the first To address */
	IMAP_SORT_DISPLAYFROM,  /* RFC 5957: display name, else addr-spec, of the first From */
	IMAP_SORT_DISPLAYTO,    /* the same for To */
};

struct imap_sort_criterion {
	enum imap_sort_key key;
	bool reverse;           /* REVERSE: descending for this key */
};

struct imap_sort_request {
	struct imap_sort_criterion crit[IMAP_SORT_MAX_CRITERIA];
	size_t ncrit;                     /* 1..IMAP_SORT_MAX_CRITERIA */
	bool esearch;                     /* RETURN (...) given: answer "* ESEARCH" */
	unsigned ret;                     /* IMAP_SEARCH_RET_MIN/MAX/COUNT/ALL/SAVE;
					     RETURN () = ALL (set as far as parsed, also on error) */
	enum imap_search_charset charset; /* UTF8 or US_ASCII */
	const struct imap_arg *keys;      /* the search keys after the charset (>= 1) */
	size_t nkeys;
};

/* Parse SORT arguments (after "SORT"):
 *   [RETURN (opts)] (criteria) charset search-key...
 * Only the sort part is checked here; the search keys are left for
 * imap_search_parse().  A charset other than UTF-8 / US-ASCII fails with
 * kind IMAP_ERR_BADCHARSET (reply NO [BADCHARSET (UTF-8 US-ASCII)]); any
 * other error is IMAP_ERR_SYNTAX.  0, or -1 with *err. */
int imap_sort_parse(const struct imap_arg *args, size_t nargs, struct imap_sort_request *req_r,
		    struct imap_parse_error *err);

enum imap_thread_algorithm {
	IMAP_THREAD_ORDEREDSUBJECT,
	IMAP_THREAD_REFERENCES,
};

struct imap_thread_request {
	enum imap_thread_algorithm algorithm;
	enum imap_search_charset charset;
	const struct imap_arg *keys;      /* search keys after the charset (>= 1) */
	size_t nkeys;
};

/* Parse THREAD arguments (after "THREAD"): algorithm charset search-key...
 * Errors as for imap_sort_parse().  0, or -1 with *err. */
int imap_thread_parse(const struct imap_arg *args, size_t nargs,
		      struct imap_thread_request *req_r, struct imap_parse_error *err);

/* What SORT and THREAD know of one message (from struct store_summary).
 * NULL strings count as "". */
struct imap_sort_msg {
	uint32_t seq;               /* sequence number: the final tie-breaker */
	uint32_t uid;
	time_t internal_date;
	time_t sent_date;           /* Date: in UTC, or the internal date */
	int64_t size;
	const char *subject;        /* decoded UTF-8 */
	const char *from_mailbox, *to_mailbox, *cc_mailbox;
	const char *from_display, *to_display;
	const char *message_id, *in_reply_to, *references;  /* raw field values */
};

/* Sort msgs[0..n) in place by the criteria (RFC 5256 section 3; strings
 * compared with i;unicode-casemap, SUBJECT by base subject), ties broken
 * by ascending sequence number.  Keys are computed once per message. */
void imap_sort_messages(struct imap_sort_msg *msgs, size_t n,
			const struct imap_sort_criterion *crit, size_t ncrit);

/* Thread msgs[0..n) (in ascending sequence order, as the search returned
 * them) with the algorithm (RFC 5256 section 3) and append the threads
 * as the THREAD response wants them, "(1 2)(3 (4)(5))", to out: UIDs when
 * uid is set, sequence numbers otherwise.  Nothing is appended for n = 0.
 * Iterative throughout: reference chains of any depth are fine. */
void imap_thread_messages(const struct imap_sort_msg *msgs, size_t n,
			  enum imap_thread_algorithm algorithm, bool uid, struct buf *out);

/* The first valid msg-id ("<left@right>", no white space inside) at or
 * after *pos in s[0..len): its text without the brackets in *id_r, *pos
 * moved past it.  false when there is none. */
bool imap_thread_next_msgid(const char *s, size_t len, size_t *pos, struct slice *id_r);

#endif
