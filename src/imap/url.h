/* IMAP URLs (RFC 5092) naming one message or one of its sections, as
 * CATENATE (RFC 4469) uses them: absolute ("imap://user@host/INBOX/;UID=5")
 * or relative to the server ("/INBOX;UIDVALIDITY=9/;UID=5/;SECTION=1.2").
 * A pure parser; the result lives in the caller's arena. */
#ifndef TERN_IMAP_URL_H
#define TERN_IMAP_URL_H

#include "imap/parse.h"

#define IMAP_URL_MAX 8192  /* bytes of one URL */

struct imap_url {
	char *user;             /* iuserinfo's user, decoded; NULL when absent */
	char *host;             /* NULL for a relative URL */
	unsigned port;          /* 0 when absent */
	char *mailbox;          /* decoded (UTF-8, RFC 5092 3); never empty */
	uint32_t uidvalidity;   /* 0 when absent */
	uint32_t uid;           /* nonzero */
	char *section;          /* decoded section text ("1.2.MIME"), NULL for none */
	bool has_partial;
	uint64_t offset, length;/* PARTIAL=offset[.length]; length 0 = to the end */
};

/* Parse url.  0, or -1 with *error_r (static text).  URLAUTH, search
 * programs and mailbox-only URLs are refused: CATENATE needs a message. */
int imap_url_parse(struct slice url, struct imap_arena *a, struct imap_url *u_r,
		   const char **error_r);

#endif
