/* The Author Domains of a received message and the dmarc= clause of its
 * Authentication-Results field (see dmarc-author.h).
 *
 * RFC 7489 6.6.1: the domain of the RFC5322.From field is the one DMARC
 * evaluates, converted to an A-label when it is a U-label.  A From field
 * with several addresses of different domains is evaluated for each
 * domain (the strictest disposition wins, the caller's business); RFC
 * 5322 3.6 allows only one From field, but a message with two is read as
 * if its addresses were in one field, since mail readers show either and
 * a second field must not hide the spoofed domain.  The addresses are read
 * with the display parser, which reads what a mail reader would show even
 * in malformed fields: an unparsable field must not make the domain in it
 * invisible to DMARC.  Addresses without a usable domain (none, an address
 * literal, something that is not a domain name) are counted and ignored.
 * Invariants: at most DMARC_MAX_FROM_ADDRESSES addresses are looked at and
 * DMARC_MAX_AUTHORS domains kept; every kept domain is ASCII LDH, so it
 * can go into a header, a log line or a DNS name as it is.
 * RFC 7489 6.6.1, 11.2; RFC 8601 2.2 (comments, pvalues); RFC 5890/5891
 * (A-labels, through libidn2). */
#include "mailauth/dmarc-author.h"

#include <idn2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/address.h"
#include "mail/header.h"
#include "mailauth/auth-results.h"

void dmarc_authors_clear(struct dmarc_authors *a)
{
	for (size_t i = 0; i < a->count; i++)
		free(a->domain[i]);
	memset(a, 0, sizeof(*a));
}

/* The A-label form of a valid domain name, lower case, no trailing dot;
 * NULL when it cannot be converted (RFC 5891 rules). */
static char *author_domain(const char *d, size_t len)
{
	bool ascii = true;
	char *s, *out = NULL;

	if (len > 0 && d[len - 1] == '.')
		len--;
	s = xstrndup(d, len);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			ascii = false;
	if (!ascii) {
		/* IDNA2008 with UTS#46 mapping (lower-cases as well) */
		if (idn2_to_ascii_8z(s, &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT) != IDN2_OK) {
			free(s);
			return NULL;
		}
		free(s);
		s = xstrdup(out);
		idn2_free(out);
		if (!address_domain_valid(s, strlen(s), false)) {
			free(s);
			return NULL;
		}
	}
	for (char *p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

struct collect {
	struct dmarc_authors *a;
	size_t seen;        /* addresses looked at, in all fields */
};

static void collect_item(void *ctx, const struct address_item *item)
{
	struct collect *c = ctx;
	struct dmarc_authors *a = c->a;
	char *d;

	if (item->group_start || item->group_end)
		return;
	if (c->seen >= DMARC_MAX_FROM_ADDRESSES)
		return;
	c->seen++;
	if (item->domain == NULL || item->domain[0] == '[' ||
	    !address_domain_valid(item->domain, strlen(item->domain), true) ||
	    (d = author_domain(item->domain, strlen(item->domain))) == NULL) {
		a->invalid++;
		return;
	}
	a->addresses++;
	for (size_t i = 0; i < a->count; i++) {
		if (strcmp(a->domain[i], d) == 0) {
			free(d);
			return;
		}
	}
	if (a->count == DMARC_MAX_AUTHORS) {
		a->too_many = true;
		free(d);
		return;
	}
	a->domain[a->count++] = d;
}

size_t dmarc_authors_collect(const char *msg, size_t len, struct dmarc_authors *a)
{
	struct collect c = { a, 0 };
	struct header_iter it;
	struct header_field f;
	int r;

	memset(a, 0, sizeof(*a));
	header_iter_init(&it, msg, len);
	while ((r = header_iter_next(&it, &f)) != 0) {
		if (r < 0 || f.name.len != 4 || strncasecmp(f.name.p, "From", 4) != 0)
			continue;
		a->fields++;
		char *value = header_value_unfold(f.value);
		address_parse_list_display(value, strlen(value), DMARC_MAX_FROM_ADDRESSES,
					   collect_item, &c);
		free(value);
	}
	return a->count;
}

static const char *policy_word(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_QUARANTINE: return "QUARANTINE";
	case DMARC_POLICY_REJECT: return "REJECT";
	default: return "NONE";
	}
}

static const char *disposition_word(enum dmarc_disposition d)
{
	switch (d) {
	case DMARC_DISPOSITION_QUARANTINE: return "QUARANTINE";
	case DMARC_DISPOSITION_REJECT: return "REJECT";
	default: return "NONE";
	}
}

int dmarc_clause_format(const struct dmarc_clause *c, struct buf *out)
{
	int e = 0;

	e |= buf_printf(out, "dmarc=%s", dmarc_result_name(c->result));
	if (c->have_policy) {
		e |= buf_printf(out, " (p=%s sp=%s dis=%s)", policy_word(c->p), policy_word(c->sp),
				disposition_word(c->dis));
	} else if (c->comment != NULL && c->comment[0] != '\0') {
		e |= buf_append_str(out, " (");
		for (const char *p = c->comment; *p != '\0'; p++) {
			unsigned char ch = (unsigned char)*p;
			if (ch < 0x20 || ch == 0x7f || ch == '(' || ch == ')' || ch == '\\')
				continue;
			e |= buf_append(out, p, 1);
		}
		e |= buf_append_str(out, ")");
	}
	if (c->from_domain != NULL) {
		e |= buf_append_str(out, " header.from=");
		e |= auth_results_append_pvalue(out, c->from_domain);
	}
	return e != 0 ? -1 : 0;
}
