/* Local submission (`tern sendmail`, docs/delivery.md "Local
 * submission"): the pieces shared by the command (cli-sendmail.c) and the
 * server side of the Unix socket (serve-sendmail.c). */
#ifndef TERN_CLI_SENDMAIL_H
#define TERN_CLI_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct buf;
struct config;
struct event_base;
struct smtp_listener;

/* The address local user uid submits as: the sendmail.users entry naming
 * the uid (by number or login name), else LOGIN@default_domain (the
 * hostname when unset).  Returns it malloc'd with *login_r (malloc'd; the
 * login name, or the number when the uid has no passwd entry) and
 * *configured_r (true when an entry matched); the caller checks that the
 * address is a Tern user. */
char *sendmail_address_for_uid(const struct config *cfg, uid_t uid, char **login_r,
			       bool *configured_r);

/* The domain unqualified recipients get: sendmail.default_domain, else the
 * hostname.  Borrowed from cfg. */
const char *sendmail_default_domain(const struct config *cfg);

/* ---- the message, as read by the command (cli-sendmail.c) ---- */

/* Reading stdin: bytes in any chunks, out comes the message with CRLF line
 * ends (LF, CRLF and a lone CR each end a line).  Unless dots are off
 * (-i, -oi), a line holding only "." ends the message and what follows is
 * ignored, as in the original sendmail.  NUL bytes and a message past
 * out's maximum are errors. */
struct sendmail_input {
	struct buf *out;
	bool dot_ends;          /* no -i: a "." line ends the input */
	bool done;              /* the "." line was seen */
	bool cr_pending;        /* a CR was the last byte */
	bool line_is_dot;       /* the line so far is exactly "." */
	size_t line_len;
	const char *error;      /* set once: the input is refused */
};

void sendmail_input_init(struct sendmail_input *in, struct buf *out, bool dot_ends);
/* Take n more bytes.  0, or -1 with in->error (further calls keep failing). */
int sendmail_input_feed(struct sendmail_input *in, const char *p, size_t n);
/* End of input: ends a last line that lacks a line break.  0 or -1. */
int sendmail_input_finish(struct sendmail_input *in);

/* Recipients (and the envelope sender) as the command collects them:
 * normalised local@domain strings, without duplicates (case-insensitive). */
struct sendmail_rcpts {
	char **v;
	size_t count, alloc;
};

/* Add every address of text, an RFC 5322 address list ("a@x, Name <b@y>")
 * or a bare login name; an address without a domain gets default_domain.
 * Returns how many addresses text held (0 for an empty group), or -1 with
 * *error_r naming the bad address (a static string). */
int sendmail_rcpts_add(struct sendmail_rcpts *r, const char *text, const char *default_domain,
		       const char **error_r);
void sendmail_rcpts_free(struct sendmail_rcpts *r);

/* What sendmail_prepare adds to a message. */
struct sendmail_prep {
	const char *from;            /* the submitting user's address, for a missing From: */
	const char *full_name;       /* -F, or NULL */
	const char *hostname;        /* right side of a new Message-ID */
	const char *default_domain;  /* for unqualified addresses in To/Cc/Bcc */
	bool extract;                /* -t: recipients from To, Cc and Bcc */
	long long now;               /* time for a new Date: (seconds since the epoch) */
};

/* Turn msg[0..len) (CRLF lines, from sendmail_input) into the message to
 * submit, appended to out: a leading mbox "From " line dropped, Bcc fields
 * removed, Date, Message-ID and From added when missing (RFC 5322 3.6),
 * and a blank line put between header and body when the input had none.
 * With p->extract, the To, Cc and Bcc addresses are added to rcpts.
 * Returns 0, or -1 with *error_r. */
int sendmail_prepare(const struct sendmail_prep *p, const char *msg, size_t len, struct buf *out,
		     struct sendmail_rcpts *rcpts, const char **error_r);

/* Master: create the Unix socket at path (its folder is made 0755 when
 * missing, a stale socket left by a dead server is replaced), mode 0666 so
 * every local user can connect.  Returns the listening fd, or -1 with
 * *error_r (a static string). */
int serve_sendmail_listen(const char *path, const char **error_r);

/* Worker: a connection accepted on that socket.  Reads the peer's uid
 * (SO_PEERCRED), maps it to a Tern user and hands the connection to the
 * SMTP engine as a submission session of that user, or one that refuses
 * with the reason. */
void serve_sendmail_accept(const struct smtp_listener *l, struct event_base *base, int fd);

#endif
