/* The message side of `tern sendmail`: reading stdin the way sendmail
 * programs do, collecting recipients, and completing the header before
 * the message is submitted (see sendmail.h).
 *
 * Invariants: the output always has CRLF line ends and a header section
 * ended by an empty line; nothing of the input is dropped except a
 * leading mbox "From " line, Bcc fields (never sent, RFC 5322 3.6.3) and,
 * without -i, what follows a line holding only ".".
 * Follows RFC 5322 3.6 (Date, From and Message-ID are required or
 * expected in a message; we add the ones that are missing, as Postfix's
 * cleanup does for local submissions), RFC 2047 for a non-ASCII -F name. */
#include "cli/sendmail.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "mail/address.h"
#include "mail/header.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define SENDMAIL_MAX_RCPTS 10000   /* in one address list */

/* ---- input ---- */

void sendmail_input_init(struct sendmail_input *in, struct buf *out, bool dot_ends)
{
	memset(in, 0, sizeof(*in));
	in->out = out;
	in->dot_ends = dot_ends;
}

static int input_fail(struct sendmail_input *in, const char *error)
{
	if (in->error == NULL)
		in->error = error;
	return -1;
}

static int input_end_line(struct sendmail_input *in)
{
	if (in->dot_ends && in->line_is_dot && in->line_len == 1) {
		in->out->len--;   /* the "." itself */
		in->out->data[in->out->len] = '\0';
		in->done = true;
		return 0;
	}
	in->line_len = 0;
	in->line_is_dot = false;
	if (buf_append(in->out, "\r\n", 2) < 0)
		return input_fail(in, "the message is larger than the size limit");
	return 0;
}

int sendmail_input_feed(struct sendmail_input *in, const char *p, size_t n)
{
	if (in->error != NULL)
		return -1;
	for (size_t i = 0; i < n && !in->done; i++) {
		char c = p[i];

		if (in->cr_pending) {
			in->cr_pending = false;
			if (input_end_line(in) < 0)
				return -1;
			if (c == '\n' || in->done)
				continue;
		}
		if (c == '\r') {
			in->cr_pending = true;
			continue;
		}
		if (c == '\n') {
			if (input_end_line(in) < 0)
				return -1;
			continue;
		}
		if (c == '\0')
			return input_fail(in, "the message contains a NUL byte");
		in->line_is_dot = in->line_len == 0 && c == '.';
		if (buf_append(in->out, &c, 1) < 0)
			return input_fail(in, "the message is larger than the size limit");
		in->line_len++;
	}
	return 0;
}

int sendmail_input_finish(struct sendmail_input *in)
{
	if (in->error != NULL)
		return -1;
	if (!in->done && in->cr_pending) {
		in->cr_pending = false;
		if (input_end_line(in) < 0)
			return -1;
	}
	if (!in->done && in->line_len > 0 && input_end_line(in) < 0)
		return -1;
	return 0;
}

/* ---- recipients ---- */

static void rcpts_push(struct sendmail_rcpts *r, char *addr)
{
	for (size_t i = 0; i < r->count; i++) {
		if (strcasecmp(r->v[i], addr) == 0) {
			free(addr);
			return;
		}
	}
	if (r->count == r->alloc) {
		r->alloc = r->alloc ? r->alloc * 2 : 8;
		r->v = xrealloc(r->v, r->alloc * sizeof(*r->v));
	}
	r->v[r->count++] = addr;
}

struct rcpt_collect {
	struct sendmail_rcpts found;
	bool bad;
};

/* Each addr-spec must also be a valid RCPT TO path, so that a bad address
 * fails here, before anything is sent. */
static void rcpt_addr(void *ctx, const struct address *a)
{
	struct rcpt_collect *c = ctx;
	struct address check = { 0 };
	const char *perr = NULL;
	char *formatted, *path;
	int used;

	if (c->bad)
		return;
	if (a->local == NULL || a->domain == NULL) {
		c->bad = true;
		return;
	}
	formatted = address_format(a);
	path = xasprintf("<%s>", formatted);
	used = address_parse_path(path, strlen(path), ADDRESS_ALLOW_UTF8, &check, &perr);
	if (used < 0 || (size_t)used != strlen(path) || check.domain == NULL)
		c->bad = true;
	else
		rcpts_push(&c->found, address_format(&check));
	address_clear(&check);
	free(formatted);
	free(path);
}

/* A login name as cron and mail(1) give it ("root", "www-data"). */
static bool bare_login(const char *s, size_t n)
{
	if (n == 0 || n > ADDRESS_MAX_LOCAL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("._-+", s[i]) == NULL)
			return false;
	return true;
}

/* One address list, strictly parsed: the count, or -1. */
static int add_strict(struct sendmail_rcpts *r, const char *text, size_t len)
{
	struct rcpt_collect c = { { 0 }, false };
	const char *perr = NULL;
	int n = address_parse_list(text, len, ADDRESS_ALLOW_UTF8, rcpt_addr, &c, &perr);

	if (n < 0 || c.bad || c.found.count > SENDMAIL_MAX_RCPTS) {
		sendmail_rcpts_free(&c.found);
		return -1;
	}
	for (size_t i = 0; i < c.found.count; i++)
		rcpts_push(r, c.found.v[i]);
	free(c.found.v);
	return n;
}

int sendmail_rcpts_add(struct sendmail_rcpts *r, const char *text, const char *default_domain,
		       const char **error_r)
{
	static __thread char err[256];
	struct sendmail_rcpts tmp = { 0 };
	size_t len = strlen(text);
	int n, total = 0;

	if (text[strspn(text, " \t")] == '\0') {
		*error_r = "an empty address";
		return -1;
	}
	if ((n = add_strict(r, text, len)) >= 0)
		return n;
	/* piece by piece, for lists mixing addresses and bare login names */
	for (const char *p = text; p <= text + len;) {
		const char *comma = strchr(p, ',');
		const char *e = comma != NULL ? comma : text + len;
		const char *b = p;
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		const char *t = e;
		while (t > b && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if (t > b) {
			if (bare_login(b, (size_t)(t - b))) {
				char *a = xasprintf("%.*s@%s", (int)(t - b), b, default_domain);
				n = add_strict(&tmp, a, strlen(a));
				free(a);
			} else {
				n = add_strict(&tmp, b, (size_t)(t - b));
			}
			if (n < 0) {
				snprintf(err, sizeof(err), "'%.*s' is not a valid address",
					 (int)((t - b) > 120 ? 120 : (t - b)), b);
				*error_r = err;
				sendmail_rcpts_free(&tmp);
				return -1;
			}
			total += n;
		}
		p = e + 1;
	}
	/* all or nothing, like the strict parse */
	for (size_t i = 0; i < tmp.count; i++)
		rcpts_push(r, tmp.v[i]);
	free(tmp.v);
	return total;
}

void sendmail_rcpts_free(struct sendmail_rcpts *r)
{
	for (size_t i = 0; i < r->count; i++)
		free(r->v[i]);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* ---- header completion ---- */

/* Length of a field name at p (printable ASCII but ':', RFC 5322 2.2)
 * followed by optional WSP and ':'; 0 when the line is not a field. */
static size_t field_name_len(const char *p, const char *end)
{
	const char *q = p;

	while (q < end && *q > ' ' && *q < 0x7f && *q != ':')
		q++;
	if (q == p)
		return 0;
	size_t n = (size_t)(q - p);
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	return q < end && *q == ':' ? n : 0;
}

static bool name_is(const char *p, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/* "Full Name" as a display name: a quoted-string, or an RFC 2047 word
 * when it is not ASCII.  Controls are dropped. */
static void append_display_name(struct buf *out, const char *name)
{
	bool ascii = true;
	struct buf clean;

	buf_init(&clean, 4096);
	for (const char *c = name; *c != '\0'; c++) {
		unsigned char u = (unsigned char)*c;
		if (u < ' ' || u == 0x7f)
			continue;
		if (u >= 0x80)
			ascii = false;
		buf_append(&clean, c, 1);
	}
	if (clean.len == 0) {
		buf_free(&clean);
		return;
	}
	if (ascii) {
		buf_append_str(out, "\"");
		for (size_t i = 0; i < clean.len; i++) {
			if (clean.data[i] == '"' || clean.data[i] == '\\')
				buf_append_str(out, "\\");
			buf_append(out, &clean.data[i], 1);
		}
		buf_append_str(out, "\" ");
	} else {
		char *b64 = base64_encode_str(clean.data, clean.len);
		buf_printf(out, "=?UTF-8?B?%s?= ", b64);
		free(b64);
	}
	buf_free(&clean);
}

int sendmail_prepare(const struct sendmail_prep *p, const char *msg, size_t len, struct buf *out,
		     struct sendmail_rcpts *rcpts, const char **error_r)
{
	static __thread char err[300];
	const char *pos = msg, *end = msg + len, *body = end;
	bool have_from = false, have_date = false, have_msgid = false;

	/* an mbox separator some programs leave in front (RFC 4155) */
	if (len >= 5 && memcmp(msg, "From ", 5) == 0) {
		const char *nl = memchr(msg, '\n', len);
		pos = nl != NULL ? nl + 1 : end;
	}
	while (pos < end) {
		const char *eol = memchr(pos, '\n', (size_t)(end - pos));
		const char *next = eol != NULL ? eol + 1 : end;
		size_t nlen;

		if (next - pos <= 2 && (pos[0] == '\r' || pos[0] == '\n')) {
			body = next;    /* after the empty line ending the header */
			break;
		}
		nlen = field_name_len(pos, next);
		if (nlen == 0) {
			body = pos;     /* body text right away: no header, or it ends here */
			break;
		}
		/* the whole field: its continuation lines start with WSP */
		const char *fend = next;
		while (fend < end && (*fend == ' ' || *fend == '\t')) {
			const char *e2 = memchr(fend, '\n', (size_t)(end - fend));
			fend = e2 != NULL ? e2 + 1 : end;
		}
		bool to = name_is(pos, nlen, "To"), cc = name_is(pos, nlen, "Cc"),
		     bcc = name_is(pos, nlen, "Bcc");
		if (p->extract && (to || cc || bcc)) {
			const char *colon = memchr(pos, ':', (size_t)(fend - pos));
			struct slice v = { colon + 1, (size_t)(fend - colon - 1) };
			/* without the final CRLF */
			while (v.len > 0 && (v.p[v.len - 1] == '\n' || v.p[v.len - 1] == '\r'))
				v.len--;
			char *value = header_value_unfold(v);
			const char *e = NULL;
			bool empty = value[strspn(value, " \t")] == '\0';
			if (!empty && sendmail_rcpts_add(rcpts, value, p->default_domain, &e) < 0) {
				snprintf(err, sizeof(err), "%.*s header: %s", (int)nlen, pos, e);
				free(value);
				*error_r = err;
				return -1;
			}
			free(value);
		}
		have_from |= name_is(pos, nlen, "From");
		have_date |= name_is(pos, nlen, "Date");
		have_msgid |= name_is(pos, nlen, "Message-ID");
		if (!bcc && buf_append(out, pos, (size_t)(fend - pos)) < 0)
			goto too_big;
		pos = fend;
	}
	if (pos >= end)
		body = end;
	/* RFC 5322 3.6: the fields a message should have */
	if (!have_date) {
		char date[64];
		clock_rfc5322((time_t)p->now, date, sizeof(date));
		buf_printf(out, "Date: %s\r\n", date);
	}
	if (!have_msgid) {
		unsigned char rnd[8];
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			memset(rnd, 0, sizeof(rnd));
		buf_printf(out, "Message-ID: <%llx.%02x%02x%02x%02x%02x%02x%02x%02x@%s>\r\n",
			   (unsigned long long)p->now, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
			   rnd[6], rnd[7], p->hostname);
	}
	if (!have_from && p->from != NULL && p->from[0] != '\0') {
		buf_append_str(out, "From: ");
		if (p->full_name != NULL)
			append_display_name(out, p->full_name);
		buf_printf(out, "<%s>\r\n", p->from);
	}
	buf_append_str(out, "\r\n");
	if (buf_append(out, body, (size_t)(end - body)) < 0)
		goto too_big;
	return 0;
too_big:
	*error_r = "the message is larger than the size limit";
	return -1;
}
