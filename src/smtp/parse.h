/* SMTP wire parsing (server side): command lines, MAIL/RCPT parameters,
 * and the DATA / BDAT body stream.  Pure functions and small resumable
 * state machines over bytes; no I/O.  RFC 5321, RFC 1870 (SIZE), RFC 6152
 * (8BITMIME), RFC 3030 (CHUNKING, BINARYMIME), RFC 3461 (DSN), RFC 6531
 * (SMTPUTF8), RFC 4954 (AUTH=).
 *
 * Line ends: commands must end in CRLF; a bare LF is tolerated as a command
 * line end (as Postfix does) and reported.  In DATA only <CRLF>.<CRLF> ends
 * the message: a bare LF or bare CR next to a dot never does (the SMTP
 * smuggling class); bare LF and bare CR inside the message are normalised to
 * CRLF so the stored copy has only CRLF line ends. */
#ifndef TERN_SMTP_PARSE_H
#define TERN_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "mail/address.h"

/* ---- command lines ---- */

enum smtp_line_status {
	SMTP_LINE_NEED_MORE,   /* no complete line yet */
	SMTP_LINE_OK,          /* *line_r holds the line without its end; consume *consumed_r */
	SMTP_LINE_TOO_LONG,    /* no line end within max bytes: reply 500 5.5.6 and discard
				  *consumed_r bytes (up to and including the next LF when
				  present, else everything seen) */
};

/* Find the next command line in data[0..len).  max is the limit on the
 * line including CRLF (RFC 5321 4.5.3.1.4: 512, ours 2048).  *bare_lf_r is
 * set when the line ended in LF without CR. */
enum smtp_line_status smtp_line_find(const char *data, size_t len, size_t max,
				     struct slice *line_r, size_t *consumed_r, bool *bare_lf_r);

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO, SMTP_VERB_EHLO, SMTP_VERB_MAIL, SMTP_VERB_RCPT, SMTP_VERB_DATA,
	SMTP_VERB_BDAT, SMTP_VERB_RSET, SMTP_VERB_NOOP, SMTP_VERB_QUIT, SMTP_VERB_VRFY,
	SMTP_VERB_EXPN, SMTP_VERB_HELP, SMTP_VERB_STARTTLS, SMTP_VERB_AUTH,
	/* proxies sometimes send HTTP: recognise and hang up (Postfix does too) */
	SMTP_VERB_HTTP,
};

struct smtp_command {
	enum smtp_verb verb;
	struct slice verb_text;  /* as sent, for logs */
	struct slice arg;        /* after the verb and one or more spaces; trailing spaces trimmed */
};

/* Split a line into verb and argument.  "MAIL FROM:" and "RCPT TO:" keep
 * "FROM:..."/"TO:..." in arg.  Returns 0, or -1 when the line has a NUL or
 * other control character (reply 500 5.5.2). */
int smtp_command_parse(struct slice line, struct smtp_command *cmd_r);

/* An error reply chosen by a parser: code, enhanced code, text. */
struct smtp_parse_error {
	int code;                /* 501, 555, 553, ... */
	const char *enhanced;    /* "5.5.4" */
	const char *text;        /* static string */
};

/* ---- MAIL FROM and RCPT TO ---- */

enum smtp_body_type { SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_UNSET, SMTP_RET_FULL, SMTP_RET_HDRS };

struct smtp_mail_params {
	struct address from;
	int64_t size;                /* SIZE=, -1 when not given */
	enum smtp_body_type body;
	bool smtputf8;
	enum smtp_ret ret;
	char *envid;                 /* ENVID= decoded from xtext, printable ASCII only; NULL */
	char *auth;                  /* AUTH= decoded mailbox or "<>"; NULL */
	bool requiretls;             /* REQUIRETLS (RFC 8689): onward hops need verified TLS */
};

enum smtp_notify_flags {
	SMTP_NOTIFY_NEVER = 1 << 0,
	SMTP_NOTIFY_SUCCESS = 1 << 1,
	SMTP_NOTIFY_FAILURE = 1 << 2,
	SMTP_NOTIFY_DELAY = 1 << 3,
};

struct smtp_rcpt_params {
	struct address to;
	unsigned notify;             /* 0 when not given */
	char *orcpt;                 /* ORCPT= "addr-type;decoded-xtext", printable only; NULL */
};

/* Which extensions the server offered; parameters of extensions not
 * offered are refused with 555 5.5.4, except REQUIRETLS (offered only on
 * a TLS session): 530 5.7.10 (RFC 8689 4.1). */
struct smtp_param_ext {
	bool size, eightbitmime, binarymime, smtputf8, dsn, auth, requiretls;
};

/* Parse the argument of MAIL ("FROM:<path> params").  0, or -1 with *err.
 * Unknown parameters, repeated parameters, bad values: 555 5.5.4; bad path
 * syntax: 501 5.1.7; missing "FROM:": 501 5.5.4. */
int smtp_mail_parse(struct slice arg, const struct smtp_param_ext *ext,
		    struct smtp_mail_params *p, struct smtp_parse_error *err);
/* Parse the argument of RCPT ("TO:<path> params").  smtputf8 tells whether
 * MAIL had SMTPUTF8 (UTF-8 in the path allowed).  Bad path: 501 5.1.3. */
int smtp_rcpt_parse(struct slice arg, const struct smtp_param_ext *ext, bool smtputf8,
		    struct smtp_rcpt_params *p, struct smtp_parse_error *err);
void smtp_mail_params_clear(struct smtp_mail_params *p);
void smtp_rcpt_params_clear(struct smtp_rcpt_params *p);

/* BDAT argument: "<size> [LAST]".  0, or -1 with *err (501 5.5.4). */
int smtp_bdat_parse(struct slice arg, uint64_t *size_r, bool *last_r,
		    struct smtp_parse_error *err);

/* xtext (RFC 3461 4): decode into a malloc'd string; NULL when malformed or
 * when the result has non-printable characters. */
char *smtp_xtext_decode(struct slice s);

/* ---- message body: DATA and BDAT ---- */

struct smtp_body {
	struct buf *out;         /* receives the message with CRLF line ends */
	size_t max_size;         /* larger messages set too_big; bytes are dropped */
	size_t max_header;       /* header sections larger set header_too_big */
	bool dot_stuffed;        /* true for DATA, false for BDAT */
	/* results, read by the caller */
	bool done;               /* DATA: end-of-data seen */
	bool too_big;
	bool header_too_big;
	bool bare_lf;            /* a bare LF was seen (and normalised) */
	bool bare_cr;            /* a bare CR was seen (and normalised) */
	bool eight_bit;          /* a byte >= 0x80 was seen */
	bool nul;                /* a NUL byte was seen (kept; caller may refuse) */
	size_t size;             /* message bytes after normalisation, counted even when dropped */
	/* internal state */
	int state;
	bool in_header;
	size_t header_len;
};

/* Start a body.  out is reset. */
void smtp_body_init(struct smtp_body *b, struct buf *out, size_t max_size, size_t max_header,
		    bool dot_stuffed);
/* Feed bytes.  For DATA returns how many were consumed: stops right after
 * the terminating <CRLF>.<CRLF> (done = true) so what follows is the next
 * pipelined command.  For BDAT consumes everything given (the caller gives
 * exactly the chunk). */
size_t smtp_body_feed(struct smtp_body *b, const char *p, size_t len);
/* BDAT LAST: flush a pending CR held back across chunk boundaries. */
void smtp_body_finish(struct smtp_body *b);

#endif
