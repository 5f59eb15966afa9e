/* IMAP ENVELOPE, RFC 3501 7.4.2 / RFC 9051 7.5.2, from a raw header
 * section (RFC 5322 3.6).  See imap-envelope.h.
 *
 * One pass over the fields with header_iter; address lists go through
 * address_parse_list_display() (mail/address.h), strings through
 * imap-string.h.  Reference for the choices the RFCs leave open: Dovecot
 * 2.3 (first field wins, Sender/Reply-To from From, MISSING_* fillers). */
#include "mail/imap-envelope.h"
#include "mail/address.h"
#include "mail/header.h"
#include "mail/imap-string.h"

#include <string.h>
#include <strings.h>

enum env_field { ENV_DATE, ENV_SUBJECT, ENV_FROM, ENV_SENDER, ENV_REPLY_TO, ENV_TO, ENV_CC,
		 ENV_BCC, ENV_IN_REPLY_TO, ENV_MESSAGE_ID, ENV_COUNT };

static const char *const env_names[ENV_COUNT] = {
	"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "In-Reply-To",
	"Message-ID",
};

struct addr_ctx {
	struct buf *out;
	size_t n;
};

static void addr_cb(void *ctx, const struct address_item *it)
{
	struct addr_ctx *ac = ctx;
	struct buf *o = ac->out;

	if (ac->n++ == 0)
		buf_append_str(o, "(");
	buf_append_str(o, "(");
	if (it->group_end) {
		buf_append_str(o, "NIL NIL NIL NIL)");
		return;
	}
	if (it->group_start) {
		buf_append_str(o, "NIL NIL ");
		imap_append_nstr(o, it->mailbox != NULL ? it->mailbox : "");
		buf_append_str(o, " NIL)");
		return;
	}
	imap_append_nstr(o, it->name);
	buf_append_str(o, " ");
	imap_append_nstr(o, it->route);
	buf_append_str(o, " ");
	imap_append_nstr(o, it->mailbox != NULL ? it->mailbox : "MISSING_MAILBOX");
	buf_append_str(o, " ");
	imap_append_nstr(o, it->domain != NULL ? it->domain : "MISSING_DOMAIN");
	buf_append_str(o, ")");
}

/* Write the list of f, or of fallback when f is absent or holds no
 * address (Dovecot's rule for Sender and Reply-To). */
static void write_addresses(struct buf *out, const struct header_field *f,
			    const struct header_field *fallback)
{
	struct addr_ctx ac = { out, 0 };

	if (f != NULL)
		address_parse_list_display(f->value.p, f->value.len, IMAP_ENVELOPE_MAX_ADDRESSES,
					   addr_cb, &ac);
	if (ac.n == 0 && fallback != NULL)
		address_parse_list_display(fallback->value.p, fallback->value.len,
					   IMAP_ENVELOPE_MAX_ADDRESSES, addr_cb, &ac);
	buf_append_str(out, ac.n > 0 ? ")" : "NIL");
}

/* A string field: the value without the leading white space and without
 * line breaks (unfolding keeps the folding white space, RFC 5322 2.2.3). */
static void write_string(struct buf *out, const struct header_field *f)
{
	const char *p, *end;

	if (f == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	p = f->value.p;
	end = p + f->value.len;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	imap_append_nstring_nolf(out, p, (size_t)(end - p));
}

void imap_envelope_write(struct buf *out, const char *hdr, size_t len)
{
	struct header_field fields[ENV_COUNT];
	bool have[ENV_COUNT] = { false };
	struct header_iter it;
	struct header_field f;
	int r;

	header_iter_init(&it, hdr, len);
	while ((r = header_iter_next(&it, &f)) != 0) {
		if (r < 0)
			continue;
		for (int i = 0; i < ENV_COUNT; i++) {
			if (!have[i] && f.name.len == strlen(env_names[i]) &&
			    strncasecmp(f.name.p, env_names[i], f.name.len) == 0) {
				fields[i] = f;
				have[i] = true;
				break;
			}
		}
	}
#define F(i) (have[i] ? &fields[i] : NULL)
	buf_append_str(out, "(");
	write_string(out, F(ENV_DATE));
	buf_append_str(out, " ");
	write_string(out, F(ENV_SUBJECT));
	buf_append_str(out, " ");
	write_addresses(out, F(ENV_FROM), NULL);
	buf_append_str(out, " ");
	write_addresses(out, F(ENV_SENDER), F(ENV_FROM));
	buf_append_str(out, " ");
	write_addresses(out, F(ENV_REPLY_TO), F(ENV_FROM));
	buf_append_str(out, " ");
	write_addresses(out, F(ENV_TO), NULL);
	buf_append_str(out, " ");
	write_addresses(out, F(ENV_CC), NULL);
	buf_append_str(out, " ");
	write_addresses(out, F(ENV_BCC), NULL);
	buf_append_str(out, " ");
	write_string(out, F(ENV_IN_REPLY_TO));
	buf_append_str(out, " ");
	write_string(out, F(ENV_MESSAGE_ID));
	buf_append_str(out, ")");
#undef F
}
