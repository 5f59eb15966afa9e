/* DMARC on a received message: the Author Domains of its From fields
 * (RFC 7489 section 6.6.1) and the dmarc= clause of Authentication-Results
 * (RFC 7489 section 11.2, RFC 8601).  Pure functions over message bytes;
 * the policy discovery and evaluation are in mailauth/dmarc.h. */
#ifndef TERN_MAILAUTH_DMARC_AUTHOR_H
#define TERN_MAILAUTH_DMARC_AUTHOR_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "mailauth/dmarc.h"

/* Distinct Author Domains evaluated for one message; a message naming more
 * is not evaluated (too_many). */
#define DMARC_MAX_AUTHORS 5
/* Addresses of the From fields looked at, in all. */
#define DMARC_MAX_FROM_ADDRESSES 64

struct dmarc_authors {
	char *domain[DMARC_MAX_AUTHORS];  /* distinct, lower case, A-labels,
					     no trailing dot, in header order */
	size_t count;
	unsigned fields;                  /* From fields in the header section */
	unsigned addresses;               /* addresses with a valid domain */
	unsigned invalid;                 /* addresses without a usable domain
					     (none, an address literal, not a
					     domain name), ignored */
	bool too_many;                    /* more than DMARC_MAX_AUTHORS
					     distinct domains (count stays at
					     the maximum) */
};

/* Collect the Author Domains of the message msg[0..len) (header section
 * and body, or just the header section): every address of every From
 * field (RFC 5322 allows one field; more are read too, so that a second
 * From cannot hide a domain), read as a mail reader shows it (the
 * tolerant display parser of mail/address.h), domains lower-cased, U-labels
 * converted to A-labels (RFC 7489 6.6.1), duplicates dropped.  Always
 * fills *a (release it with dmarc_authors_clear()); returns a->count. */
size_t dmarc_authors_collect(const char *msg, size_t len, struct dmarc_authors *a);

/* Free the domains of a and reset it. */
void dmarc_authors_clear(struct dmarc_authors *a);

/* One dmarc= resinfo clause. */
struct dmarc_clause {
	enum dmarc_result result;
	const char *from_domain;       /* header.from, NULL to leave it out */
	bool have_policy;              /* a record was used: the comment is
					  "(p=P sp=SP dis=DIS)" */
	enum dmarc_policy p, sp;
	enum dmarc_disposition dis;    /* what the receiver applied */
	const char *comment;           /* without a policy: a short reason to
					  show in parentheses, or NULL */
};

/* Append the clause to out, in the form common receivers write:
 *   dmarc=fail (p=REJECT sp=NONE dis=QUARANTINE) header.from=example.com
 *   dmarc=none header.from=example.com
 *   dmarc=permerror (no From domain)
 * Policy words are upper case; characters that cannot appear in an RFC 5322
 * comment ('(', ')', '\', controls) are left out of the reason.  Returns 0,
 * or -1 when out is full. */
int dmarc_clause_format(const struct dmarc_clause *c, struct buf *out);

#endif
