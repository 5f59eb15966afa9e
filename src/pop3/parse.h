/* POP3 wire parsing (server side): command lines, message numbers, and the
 * dot-stuffed multi-line output of RETR and TOP.  Pure functions and one
 * small resumable state machine; no I/O.  RFC 1939 (POP3), RFC 2449 (CAPA,
 * line lengths), RFC 5034 (AUTH).
 *
 * Line ends: commands end in CRLF; a bare LF is tolerated as a line end.
 * A command line holding NUL or another control character (TAB excepted)
 * is refused, so no such byte reaches an argument. */
#ifndef TERN_POP3_PARSE_H
#define TERN_POP3_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* RFC 2449 4: a command line is at most 255 octets.  We accept more for
 * long user names and PLAIN initial responses with long passwords. */
#define POP3_LINE_MAX 2048
/* RFC 5034 4: SASL responses are not limited to 255 octets. */
#define POP3_AUTH_LINE_MAX 12288
/* RFC 1939 3: at most 2 arguments of at most 40 characters each; AUTH's
 * initial response and USER/PASS values may be longer (RFC 5034 4). */
#define POP3_ARG_MAX 40

enum pop3_line_status {
	POP3_LINE_NEED_MORE,   /* no complete line yet */
	POP3_LINE_OK,          /* *line_r holds the line without its end; consume *consumed_r */
	POP3_LINE_TOO_LONG,    /* no line end within max bytes: reply -ERR and discard
				  *consumed_r bytes (through the next LF when present,
				  else everything seen, and keep discarding) */
};

/* Find the next line in data[0..len); max counts the line with its end. */
enum pop3_line_status pop3_line_find(const char *data, size_t len, size_t max,
				     struct slice *line_r, size_t *consumed_r);

enum pop3_verb {
	POP3_VERB_UNKNOWN = 0,
	POP3_VERB_USER, POP3_VERB_PASS, POP3_VERB_APOP, POP3_VERB_AUTH, POP3_VERB_STLS,
	POP3_VERB_CAPA, POP3_VERB_STAT, POP3_VERB_LIST, POP3_VERB_RETR, POP3_VERB_DELE,
	POP3_VERB_NOOP, POP3_VERB_RSET, POP3_VERB_TOP, POP3_VERB_UIDL, POP3_VERB_QUIT,
	POP3_VERB_HTTP,        /* "GET /..." and friends: a misdirected client */
};

struct pop3_command {
	enum pop3_verb verb;
	struct slice verb_text;  /* as sent, for logs */
	struct slice rest;       /* everything after the keyword and its separator
				    (PASS takes it whole: passwords may hold spaces) */
	struct slice args[2];    /* the space-separated arguments */
	unsigned argc;
};

/* Split a line into keyword and arguments (keywords are case-insensitive).
 * Returns 0, or -1 with *error_r (a static reply text) for a control
 * character, a keyword that is not 3 or 4 letters, or more than two
 * arguments. */
int pop3_command_parse(struct slice line, struct pop3_command *cmd_r, const char **error_r);

/* A message number or line count: decimal digits only, no sign, at most
 * 10 digits, value <= max.  0 and *n_r, or -1. */
int pop3_number_parse(struct slice s, uint32_t max, uint32_t *n_r);

/* ---- RETR / TOP output (RFC 1939 3: byte-stuffing) ----
 * Fed a message in chunks, it emits the bytes with a '.' doubled at the
 * start of every line; with a line limit (TOP) it stops after the header,
 * the blank line and n body lines.  pop3_stuff_finish emits the end: a
 * CRLF if the message did not end with one, then ".\r\n". */
typedef void pop3_emit_fn(void *ctx, const char *p, size_t len);

struct pop3_stuff {
	bool bol;                /* the next byte starts a line */
	bool first_cr;           /* the current line starts with CR (with line_bytes == 2
				    at its LF, it was an empty line) */
	size_t line_bytes;       /* bytes of the current line seen, end included */
	bool last_cr;            /* the last byte emitted was CR */
	bool in_body;            /* past the blank line ending the header */
	bool limit;              /* TOP: stop after body_lines body lines */
	uint32_t body_lines;
	bool done;               /* the limit was reached: feed no more */
	bool any;                /* at least one byte emitted */
};

void pop3_stuff_init(struct pop3_stuff *st, bool limit, uint32_t body_lines);
/* Emit the stuffed form of data[0..len); returns the bytes used, which is
 * less than len only once st->done. */
size_t pop3_stuff_feed(struct pop3_stuff *st, const char *data, size_t len, pop3_emit_fn *emit,
		       void *ctx);
void pop3_stuff_finish(struct pop3_stuff *st, pop3_emit_fn *emit, void *ctx);

#endif
