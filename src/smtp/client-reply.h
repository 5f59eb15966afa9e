/* SMTP reply parsing for the client side (RFC 5321 4.2, RFC 3463
 * enhanced status codes, RFC 2034 ENHANCEDSTATUSCODES).  A pure,
 * incremental state machine over bytes: no I/O.
 *
 * A reply is one or more lines "NNN-text" ending with "NNN text" (or a
 * bare "NNN"); the code is three digits, the first 2 to 5, the same on
 * every line.  A line may end in CRLF or a bare LF (real servers send
 * both).  Limits: SMTP_REPLY_LINE_MAX bytes per line (CRLF included) and
 * SMTP_REPLY_LINES_MAX lines per reply; past either the reply is a
 * protocol error and the connection cannot be resynchronised.
 *
 * Everything handed out is sanitized: no CR, LF, NUL, other control
 * character or byte >= 0x7f passes (each becomes '?'), so the text is
 * safe in queue records, logs, DSNs and headers (the OpenSMTPD
 * CVE-2020-8794 class).  The joined text is capped at SMTP_REPLY_TEXT_MAX
 * bytes, cut visibly with "...". */
#ifndef TERN_SMTP_CLIENT_REPLY_H
#define TERN_SMTP_CLIENT_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

#define SMTP_REPLY_LINE_MAX 2048   /* one reply line, CRLF included */
#define SMTP_REPLY_LINES_MAX 100   /* lines in one (multi-line) reply */
#define SMTP_REPLY_TEXT_MAX 512    /* sanitized text handed to callers */
#define SMTP_ENHANCED_MAX 12       /* "5.123.123" plus NUL, rounded up */

struct smtp_client_reply {
	int code;                      /* 200..599 */
	/* RFC 3463 "class.subject.detail" from the first line when present
	 * (class matching the code's first digit), else "" */
	char enhanced[SMTP_ENHANCED_MAX];
	/* the lines' texts (after "NNN-"/"NNN ", enhanced code removed),
	 * sanitized, joined with one space, capped at SMTP_REPLY_TEXT_MAX */
	struct buf text;
	/* every line's text sanitized and uncut (bounded by the limits
	 * above), each followed by '\n': for EHLO keywords */
	struct buf lines;
	unsigned n_lines;
};

enum smtp_reply_status {
	SMTP_REPLY_NEED_MORE,          /* all input consumed, no complete reply yet */
	SMTP_REPLY_OK,                 /* a reply is complete in *reply_r */
	SMTP_REPLY_ERROR,              /* protocol error: *error_r; give up the connection */
};

struct smtp_reply_parser {
	struct buf line;               /* the line being read, without its end */
	bool error;                    /* sticky */
	struct smtp_client_reply cur;         /* the reply being built */
};

/* Initialise a reply (empty) / free its memory (reusable afterwards). */
void smtp_client_reply_init(struct smtp_client_reply *r);
void smtp_client_reply_free(struct smtp_client_reply *r);

/* Initialise / free a parser. */
void smtp_reply_parser_init(struct smtp_reply_parser *p);
void smtp_reply_parser_free(struct smtp_reply_parser *p);

/* Consume bytes of data[0..len) up to the end of one reply.  *consumed_r
 * is set in every case (the bytes that belong to this reply; with
 * NEED_MORE all of len).  On OK the reply is moved into *reply_r (which
 * must be initialised; its previous contents are freed) and the parser is
 * ready for the next reply.  On ERROR the parser stays in error (and
 * *consumed_r means nothing: drop the connection). */
enum smtp_reply_status smtp_reply_parse(struct smtp_reply_parser *p, const char *data,
					size_t len, size_t *consumed_r, struct smtp_client_reply *reply_r,
					const char **error_r);

/* Is a parser in the middle of a reply (some bytes of it consumed)? */
bool smtp_reply_parser_busy(const struct smtp_reply_parser *p);

/* Does the reply have a line whose first word is keyword
 * (case-insensitive)?  If so and params_r is not NULL, *params_r is the
 * rest of that line after the keyword and spaces. */
bool smtp_client_reply_has_keyword(const struct smtp_client_reply *r, const char *keyword,
			    struct slice *params_r);

/* Sanitize src[0..len) into out (appended): printable ASCII kept, every
 * other byte replaced by '?', at most max bytes appended (the last three
 * become "..." when cut).  Returns the number of bytes appended. */
size_t smtp_reply_sanitize(struct buf *out, const char *src, size_t len, size_t max);

#endif
