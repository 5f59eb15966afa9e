/* Delivery Status Notifications: the bounce, delay warning and success
 * report a mail server sends to an envelope sender (RFC 3464 with the
 * RFC 3461 SMTP extension semantics, inside an RFC 6522 multipart/report;
 * RFC 6533 global forms for SMTPUTF8 messages).
 *
 * dsn_build() is pure: the caller (the queue) decides which recipients to
 * report, using dsn_should_notify() on each recipient's NOTIFY, and queues
 * the result with the null sender as its envelope sender. */
#ifndef TERN_MAIL_DSN_H
#define TERN_MAIL_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct buf;

/* Bits of a recipient's NOTIFY parameter (RFC 3461 4.1); the same values
 * as smtp/parse.h's enum smtp_notify_flags, so they pass through as is.
 * 0 means NOTIFY was not given. */
enum dsn_notify {
	DSN_NOTIFY_NEVER = 1 << 0,
	DSN_NOTIFY_SUCCESS = 1 << 1,
	DSN_NOTIFY_FAILURE = 1 << 2,
	DSN_NOTIFY_DELAY = 1 << 3,
};

/* Action field values (RFC 3464 2.3.3). */
enum dsn_action {
	DSN_ACTION_FAILED,
	DSN_ACTION_DELAYED,
	DSN_ACTION_DELIVERED,
	DSN_ACTION_RELAYED,
	DSN_ACTION_EXPANDED,
};

/* RET parameter (RFC 3461 4.3). */
enum dsn_ret {
	DSN_RET_DEFAULT,        /* not given: headers only */
	DSN_RET_HDRS,
	DSN_RET_FULL,
};

#define DSN_FULL_MAX_DEFAULT (1024 * 1024)  /* RET=FULL above this returns headers only */
#define DSN_REPLY_MAX 2048                  /* bytes of a remote reply quoted */

struct dsn_recipient {
	const char *address;        /* final recipient, "local@domain" */
	const char *orcpt;          /* ORCPT "addr-type;address" xtext-decoded, or NULL */
	enum dsn_action action;
	const char *status;         /* enhanced status "x.y.z"; NULL = a default for the action */
	const char *remote_mta;     /* host that gave reply, or NULL (local decision) */
	const char *reply;          /* remote SMTP reply, possibly multi-line; any bytes */
	const char *reason;         /* why, when there is no remote reply (shown to the user) */
	time_t last_attempt;        /* 0 = none */
	time_t will_retry_until;    /* delayed: when the queue gives up; 0 = not said */
};

struct dsn_params {
	const char *hostname;       /* the reporting MTA, our host name */
	const char *sender;         /* envelope sender of the original: the DSN goes there */
	const char *envid;          /* ENVID xtext-decoded, or NULL */
	enum dsn_ret ret;
	time_t arrival;             /* when the original was received; 0 = not said */
	const struct dsn_recipient *rcpts;
	size_t rcpt_count;
	const char *original;       /* the original message (headers at least), or NULL */
	size_t original_len;
	size_t full_max;            /* RET=FULL cap in bytes; 0 = DSN_FULL_MAX_DEFAULT */
	bool smtputf8;              /* original was sent with SMTPUTF8: RFC 6533 types */
	/* Injectable for tests; zero/NULL = the real thing. */
	time_t now;                 /* Date:; 0 = clock_now() */
	const char *message_id;     /* left-hand side, without <> and "@hostname"; NULL = random */
	const char *boundary;       /* MIME boundary; NULL = random */
};

/* Build the complete notification message (header and body, CRLF line
 * ends, lines within 998 bytes) and append it to out.  Subject and wording
 * follow the most serious action: any failed recipient makes it a bounce,
 * else any delayed one a delay warning, else a success report.  Remote
 * replies, reasons, ENVID and ORCPT are sanitised (no CR, LF, NUL or other
 * controls; 8-bit bytes replaced unless smtputf8) and folded.  The original
 * is returned as text/rfc822-headers, or message/rfc822 for RET=FULL when
 * it fits full_max (message/global-headers and message/global with
 * smtputf8).  Returns 0, or -1 with *error_r (out unchanged): the null
 * sender (never bounce a bounce), no recipients, a missing hostname, a
 * sender with control characters, or out's limit. */
int dsn_build(const struct dsn_params *p, struct buf *out, const char **error_r);

/* Should a DSN with this action be sent for a recipient whose NOTIFY was
 * notify_flags (RFC 3461 4.1)?  NEVER: no.  Not given (0): failures and
 * delays.  Otherwise the matching bit: FAILURE for failed, DELAY for
 * delayed, SUCCESS for delivered, relayed and expanded. */
bool dsn_should_notify(unsigned notify_flags, enum dsn_action action);

/* "failed", "delayed", "delivered", "relayed", "expanded". */
const char *dsn_action_name(enum dsn_action action);

#endif
