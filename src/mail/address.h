/* Mail addresses: RFC 5321 paths (SMTP MAIL FROM / RCPT TO, with SMTPUTF8
 * per RFC 6531) and RFC 5322 address lists (From:, To: headers).
 *
 * Normal form: local part as written (quotes removed, quoted-pairs decoded),
 * domain lowercased without a trailing dot.  address_format() puts quotes
 * back when the local part needs them. */
#ifndef TERN_MAIL_ADDRESS_H
#define TERN_MAIL_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#define ADDRESS_MAX_LOCAL 64      /* RFC 5321 4.5.3.1.1 */
#define ADDRESS_MAX_DOMAIN 255    /* RFC 5321 4.5.3.1.2 */
#define ADDRESS_MAX_PATH 256      /* RFC 5321 4.5.3.1.3 */

struct address {
	char *local;        /* decoded local part (malloc'd); NULL for the null path <> */
	char *domain;       /* lowercased, no trailing dot (malloc'd); NULL for <> and <postmaster> */
	bool quoted;        /* local part was a quoted-string */
	bool ip_literal;    /* domain is an address literal "[...]" */
	bool utf8;          /* contains non-ASCII (needs SMTPUTF8) */
	bool had_route;     /* an RFC 5321 source route was given (and dropped) */
};

enum address_flags {
	ADDRESS_ALLOW_NULL = 1 << 0,        /* "<>" (MAIL FROM) */
	ADDRESS_ALLOW_UTF8 = 1 << 1,        /* SMTPUTF8 given: UTF-8 in local part and domain */
	ADDRESS_ALLOW_POSTMASTER = 1 << 2,  /* "<Postmaster>" without domain (RCPT TO) */
	ADDRESS_ALLOW_NO_BRACKETS = 1 << 3, /* tolerate a path without <> like Postfix does */
};

/* Parse an RFC 5321 Path at the start of s (s_len bytes), e.g. the argument
 * of MAIL FROM: after the colon.  A source route (<@a,@b:u@d>) is accepted
 * and dropped (RFC 5321 4.1.1.3 lets servers ignore it).  Returns the number
 * of bytes consumed (the path, not the parameters after it), or -1 with
 * *error_r.  Never accepts CR, LF, NUL or other control characters. */
int address_parse_path(const char *s, size_t s_len, unsigned flags, struct address *addr_r,
		       const char **error_r);

/* Parse an RFC 5322 address-list (display names, comments, groups,
 * obsolete forms tolerated) and call cb for each addr-spec found.
 * Returns the number of addresses (>= 0), or -1 with *error_r. */
int address_parse_list(const char *s, size_t s_len, unsigned flags,
		       void (*cb)(void *ctx, const struct address *addr), void *ctx,
		       const char **error_r);

/* "local@domain" with the local part quoted when it must be; "" for the
 * null path; "postmaster" alone for a domainless postmaster.  malloc'd. */
char *address_format(const struct address *addr);
void address_clear(struct address *addr);

/* Is s a syntactically valid domain name (or address literal)? */
bool address_domain_valid(const char *s, size_t len, bool allow_utf8);

/* One element of an address list as shown to a mail client (IMAP ENVELOPE,
 * RFC 3501 7.4.2): display forms, nothing normalised.  A group is reported
 * as a group_start item (mailbox = the group's display name), its members,
 * then a group_end item. */
struct address_item {
	char *name;      /* display name: words joined by one space, quotes and
			    quoted-pairs removed, RFC 2047 words kept; NULL if none */
	char *route;     /* obsolete source route "@a,@b" (without ':'), or NULL */
	char *mailbox;   /* local part as written, quotes removed; NULL if missing */
	char *domain;    /* domain as written (case kept); NULL if missing */
	bool group_start, group_end;
};

/* Parse an RFC 5322 address-list for display, tolerating everything real
 * mail contains (missing '@' or domain, "<>", unterminated quotes,
 * comments or groups, control characters, 8-bit text): it never fails and
 * never calls back with an item that has CR or LF in it.  cb gets each
 * item in order; the item and its strings belong to the parser and are
 * valid only during the call.  At most max_items items are reported (the
 * rest is ignored; a caller passing a header a peer controls passes a cap).
 * Returns the number of items reported. */
size_t address_parse_list_display(const char *s, size_t s_len, size_t max_items,
				  void (*cb)(void *ctx, const struct address_item *item),
				  void *ctx);

#endif
