/* MAIL FROM / RCPT TO arguments: the path (through address_parse_path())
 * and the ESMTP parameters after it, and xtext decoding.
 *
 * Invariants: every string stored in smtp_mail_params / smtp_rcpt_params is
 * printable ASCII (xtext decoding refuses anything else) or an address that
 * address_parse_path() vetted, so CR, LF and NUL never survive into them.
 * On error the output structure is left cleared (nothing to free).  Error
 * texts are static and never echo peer bytes.
 *
 * RFC 5321 4.1.2 (Mail-parameters, esmtp-keyword / esmtp-value), 4.1.1.2
 * and 4.1.1.3 (MAIL, RCPT), RFC 1870 (SIZE), RFC 6152 (BODY=8BITMIME),
 * RFC 3030 3 (BODY=BINARYMIME), RFC 3461 4 (xtext, NOTIFY, ORCPT, RET,
 * ENVID), RFC 6531 3.4 (SMTPUTF8), RFC 4954 5 (AUTH=).
 *
 * Tolerated as Postfix does: spaces between "FROM:" / "TO:" and the path
 * (RFC 5321 has none), and more than one SP between parameters. */
#include "smtp/parse.h"

#include <stdlib.h>
#include <string.h>

#define SIZE_MAX_DIGITS 20
#define ENVID_MAX 100       /* RFC 3461 4.4 */
#define ORCPT_MAX 500       /* RFC 3461 4.2 */

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_upper_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static unsigned hex_val(char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'A' + 10);
}

char *smtp_xtext_decode(struct slice s)
{
	char *out = xmalloc(s.len + 1);
	size_t i, n = 0;

	for (i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];

		if (c == '+') {
			/* hexchar = "+" 2(DIGIT / "A".."F"): uppercase only */
			if (i + 2 >= s.len || !is_upper_hex(s.p[i + 1]) || !is_upper_hex(s.p[i + 2]))
				goto bad;
			c = (unsigned char)(hex_val(s.p[i + 1]) << 4 | hex_val(s.p[i + 2]));
			i += 2;
			/* decoded text must be printable ASCII (SP allowed) */
			if (c < 0x20 || c > 0x7e)
				goto bad;
		} else if (c < 0x21 || c > 0x7e || c == '=') {
			goto bad;
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* One "keyword[=value]" split out of the parameter list. */
struct esmtp_param {
	struct slice key;
	struct slice value;
	bool has_value;
};

/* Split the next parameter at *pos.  Returns 1 with *p, 0 at the end, -1
 * when malformed (RFC 5321 4.1.2: esmtp-keyword = (ALPHA / DIGIT)
 * *(ALPHA / DIGIT / "-"); esmtp-value = 1*(%d33-60 / %d62-126), plus
 * UTF-8 under RFC 6531, which no parameter we know takes). */
static int param_next(struct slice s, size_t *pos, struct esmtp_param *p)
{
	size_t i = *pos, start;

	while (i < s.len && s.p[i] == ' ')
		i++;
	if (i == s.len) {
		*pos = i;
		return 0;
	}
	start = i;
	if (!is_alnum(s.p[i]))
		return -1;
	while (i < s.len && (is_alnum(s.p[i]) || s.p[i] == '-'))
		i++;
	p->key = (struct slice){ s.p + start, i - start };
	p->has_value = false;
	p->value = (struct slice){ s.p + i, 0 };
	if (i < s.len && s.p[i] == '=') {
		i++;
		start = i;
		while (i < s.len) {
			unsigned char c = (unsigned char)s.p[i];

			if (c == ' ')
				break;
			if (c < 33 || c == '=' || c > 126)
				return -1;
			i++;
		}
		if (i == start)
			return -1;
		p->has_value = true;
		p->value = (struct slice){ s.p + start, i - start };
	}
	if (i < s.len && s.p[i] != ' ')
		return -1;
	*pos = i;
	return 1;
}

static int param_error(struct smtp_parse_error *err, const char *text)
{
	*err = (struct smtp_parse_error){ 555, "5.5.4", text };
	return -1;
}

/* Skip "FROM:" / "TO:" and any spaces after it; returns the offset of the
 * path, or -1. */
static int skip_prefix(struct slice arg, const char *prefix)
{
	size_t i = strlen(prefix);

	if (!slice_starts_ci(arg, prefix))
		return -1;
	while (i < arg.len && arg.p[i] == ' ')
		i++;
	return (int)i;
}

static bool has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)p[i] >= 0x80)
			return true;
	}
	return false;
}

/* Parse the path at arg[off..).  UTF-8 is always allowed to the address
 * parser so that a UTF-8 path without SMTPUTF8 is told apart from a syntax
 * error (553 5.6.7 instead of 501); the caller refuses it afterwards.
 * Returns the offset after the path or -1 with *err. */
static int parse_path(struct slice arg, int off, unsigned flags, struct address *addr,
		      bool *utf8_r, const char *enh_bad, const char *text_bad,
		      struct smtp_parse_error *err)
{
	const char *error;
	int n;

	n = address_parse_path(arg.p + off, arg.len - (size_t)off,
			       flags | ADDRESS_ALLOW_UTF8, addr, &error);
	if (n < 0 || (size_t)n > arg.len - (size_t)off) {
		if (n >= 0)
			address_clear(addr);
		memset(addr, 0, sizeof(*addr));
		*err = (struct smtp_parse_error){ 501, enh_bad, text_bad };
		return -1;
	}
	*utf8_r = addr->utf8 || has_8bit(arg.p + off, (size_t)n);
	off += n;
	if ((size_t)off < arg.len && arg.p[off] != ' ') {
		address_clear(addr);
		memset(addr, 0, sizeof(*addr));
		*err = (struct smtp_parse_error){ 501, enh_bad, text_bad };
		return -1;
	}
	return off;
}

/* 1-20 digits; values past INT64_MAX saturate there so the caller answers
 * 552 (too big) rather than a syntax error. */
static bool parse_size(struct slice v, int64_t *size_r)
{
	int64_t n = 0;

	if (v.len == 0 || v.len > SIZE_MAX_DIGITS)
		return false;
	for (size_t i = 0; i < v.len; i++) {
		int d;

		if (v.p[i] < '0' || v.p[i] > '9')
			return false;
		d = v.p[i] - '0';
		if (n > (INT64_MAX - d) / 10)
			n = INT64_MAX;
		else
			n = n * 10 + d;
	}
	*size_r = n;
	return true;
}

enum {
	MP_SIZE = 1 << 0, MP_BODY = 1 << 1, MP_SMTPUTF8 = 1 << 2, MP_RET = 1 << 3,
	MP_ENVID = 1 << 4, MP_AUTH = 1 << 5, MP_REQUIRETLS = 1 << 6,
};

static int mail_param(const struct esmtp_param *pr, const struct smtp_param_ext *ext,
		      struct smtp_mail_params *p, unsigned *seen, struct smtp_parse_error *err)
{
	unsigned bit;

	if (slice_eq_ci(pr->key, "SIZE")) {
		if (!ext->size)
			return param_error(err, "SIZE parameter not supported");
		bit = MP_SIZE;
		if (*seen & bit)
			return param_error(err, "Duplicate SIZE parameter");
		if (!pr->has_value || !parse_size(pr->value, &p->size))
			return param_error(err, "Bad SIZE parameter value");
	} else if (slice_eq_ci(pr->key, "BODY")) {
		if (!ext->eightbitmime && !ext->binarymime)
			return param_error(err, "BODY parameter not supported");
		bit = MP_BODY;
		if (*seen & bit)
			return param_error(err, "Duplicate BODY parameter");
		if (pr->has_value && slice_eq_ci(pr->value, "7BIT"))
			p->body = SMTP_BODY_7BIT;
		else if (pr->has_value && slice_eq_ci(pr->value, "8BITMIME") && ext->eightbitmime)
			p->body = SMTP_BODY_8BITMIME;
		else if (pr->has_value && slice_eq_ci(pr->value, "BINARYMIME") && ext->binarymime)
			p->body = SMTP_BODY_BINARYMIME;
		else
			return param_error(err, "Bad BODY parameter value");
	} else if (slice_eq_ci(pr->key, "SMTPUTF8")) {
		if (!ext->smtputf8)
			return param_error(err, "SMTPUTF8 parameter not supported");
		bit = MP_SMTPUTF8;
		if (*seen & bit)
			return param_error(err, "Duplicate SMTPUTF8 parameter");
		if (pr->has_value)
			return param_error(err, "SMTPUTF8 parameter takes no value");
		p->smtputf8 = true;
	} else if (slice_eq_ci(pr->key, "RET")) {
		if (!ext->dsn)
			return param_error(err, "RET parameter not supported");
		bit = MP_RET;
		if (*seen & bit)
			return param_error(err, "Duplicate RET parameter");
		if (pr->has_value && slice_eq_ci(pr->value, "FULL"))
			p->ret = SMTP_RET_FULL;
		else if (pr->has_value && slice_eq_ci(pr->value, "HDRS"))
			p->ret = SMTP_RET_HDRS;
		else
			return param_error(err, "Bad RET parameter value");
	} else if (slice_eq_ci(pr->key, "ENVID")) {
		if (!ext->dsn)
			return param_error(err, "ENVID parameter not supported");
		bit = MP_ENVID;
		if (*seen & bit)
			return param_error(err, "Duplicate ENVID parameter");
		if (!pr->has_value || (p->envid = smtp_xtext_decode(pr->value)) == NULL)
			return param_error(err, "Bad ENVID parameter value");
		if (strlen(p->envid) > ENVID_MAX)
			return param_error(err, "ENVID parameter too long");
	} else if (slice_eq_ci(pr->key, "AUTH")) {
		if (!ext->auth)
			return param_error(err, "AUTH parameter not supported");
		bit = MP_AUTH;
		if (*seen & bit)
			return param_error(err, "Duplicate AUTH parameter");
		if (!pr->has_value || (p->auth = smtp_xtext_decode(pr->value)) == NULL ||
		    p->auth[0] == '\0')
			return param_error(err, "Bad AUTH parameter value");
	} else if (slice_eq_ci(pr->key, "REQUIRETLS")) {
		/* RFC 8689 4.1: only on a session protected by TLS; the
		 * session has no TLS, so no onward hop could honour it */
		if (!ext->requiretls) {
			*err = (struct smtp_parse_error){ 530, "5.7.10",
							  "REQUIRETLS needs a TLS session" };
			return -1;
		}
		bit = MP_REQUIRETLS;
		if (*seen & bit)
			return param_error(err, "Duplicate REQUIRETLS parameter");
		if (pr->has_value)
			return param_error(err, "REQUIRETLS parameter takes no value");
		p->requiretls = true;
	} else {
		return param_error(err, "Unknown MAIL parameter");
	}
	*seen |= bit;
	return 0;
}

int smtp_mail_parse(struct slice arg, const struct smtp_param_ext *ext,
		    struct smtp_mail_params *p, struct smtp_parse_error *err)
{
	struct esmtp_param pr;
	unsigned seen = 0;
	bool utf8 = false;
	size_t pos;
	int off, r;

	memset(p, 0, sizeof(*p));
	p->size = -1;
	off = skip_prefix(arg, "FROM:");
	if (off < 0) {
		*err = (struct smtp_parse_error){ 501, "5.5.4", "Syntax: MAIL FROM:<address>" };
		return -1;
	}
	off = parse_path(arg, off, ADDRESS_ALLOW_NULL, &p->from, &utf8, "5.1.7",
			 "Bad sender address syntax", err);
	if (off < 0)
		return -1;
	pos = (size_t)off;
	while ((r = param_next(arg, &pos, &pr)) > 0) {
		if (mail_param(&pr, ext, p, &seen, err) < 0)
			goto fail;
	}
	if (r < 0) {
		param_error(err, "Malformed MAIL parameter");
		goto fail;
	}
	if (utf8 && !p->smtputf8) {
		*err = (struct smtp_parse_error){ 553, "5.6.7", "SMTPUTF8 required for a UTF-8 address" };
		goto fail;
	}
	return 0;
fail:
	smtp_mail_params_clear(p);
	return -1;
}

static int parse_notify(struct slice v, unsigned *notify_r)
{
	unsigned n = 0;
	size_t i = 0;

	if (slice_eq_ci(v, "NEVER")) {
		*notify_r = SMTP_NOTIFY_NEVER;
		return 0;
	}
	while (i <= v.len) {
		size_t start = i;
		struct slice w;

		while (i < v.len && v.p[i] != ',')
			i++;
		w = (struct slice){ v.p + start, i - start };
		if (slice_eq_ci(w, "SUCCESS"))
			n |= SMTP_NOTIFY_SUCCESS;
		else if (slice_eq_ci(w, "FAILURE"))
			n |= SMTP_NOTIFY_FAILURE;
		else if (slice_eq_ci(w, "DELAY"))
			n |= SMTP_NOTIFY_DELAY;
		else
			return -1;      /* empty element, unknown word, or NEVER in a list */
		i++;
	}
	*notify_r = n;
	return 0;
}

/* addr-type is an RFC 5322 atom (RFC 3461 4.2). */
static bool is_atext(char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static char *parse_orcpt(struct slice v)
{
	size_t i = 0;
	char *dec, *out;

	while (i < v.len && v.p[i] != ';') {
		if (!is_atext(v.p[i]))
			return NULL;
		i++;
	}
	if (i == 0 || i == v.len)
		return NULL;
	dec = smtp_xtext_decode((struct slice){ v.p + i + 1, v.len - i - 1 });
	if (dec == NULL)
		return NULL;
	if (dec[0] == '\0' || strlen(dec) > ORCPT_MAX) {
		free(dec);
		return NULL;
	}
	out = xasprintf("%.*s;%s", (int)i, v.p, dec);
	free(dec);
	return out;
}

enum { RP_NOTIFY = 1 << 0, RP_ORCPT = 1 << 1 };

int smtp_rcpt_parse(struct slice arg, const struct smtp_param_ext *ext, bool smtputf8,
		    struct smtp_rcpt_params *p, struct smtp_parse_error *err)
{
	struct esmtp_param pr;
	unsigned seen = 0;
	bool utf8 = false;
	size_t pos;
	int off, r;

	memset(p, 0, sizeof(*p));
	off = skip_prefix(arg, "TO:");
	if (off < 0) {
		*err = (struct smtp_parse_error){ 501, "5.5.4", "Syntax: RCPT TO:<address>" };
		return -1;
	}
	off = parse_path(arg, off, ADDRESS_ALLOW_POSTMASTER, &p->to, &utf8, "5.1.3",
			 "Bad recipient address syntax", err);
	if (off < 0)
		return -1;
	if (utf8 && !smtputf8) {
		*err = (struct smtp_parse_error){ 553, "5.6.7", "SMTPUTF8 required for a UTF-8 address" };
		goto fail;
	}
	pos = (size_t)off;
	while ((r = param_next(arg, &pos, &pr)) > 0) {
		if (slice_eq_ci(pr.key, "NOTIFY")) {
			if (!ext->dsn) {
				param_error(err, "NOTIFY parameter not supported");
				goto fail;
			}
			if (seen & RP_NOTIFY) {
				param_error(err, "Duplicate NOTIFY parameter");
				goto fail;
			}
			if (!pr.has_value || parse_notify(pr.value, &p->notify) < 0) {
				param_error(err, "Bad NOTIFY parameter value");
				goto fail;
			}
			seen |= RP_NOTIFY;
		} else if (slice_eq_ci(pr.key, "ORCPT")) {
			if (!ext->dsn) {
				param_error(err, "ORCPT parameter not supported");
				goto fail;
			}
			if (seen & RP_ORCPT) {
				param_error(err, "Duplicate ORCPT parameter");
				goto fail;
			}
			if (!pr.has_value || (p->orcpt = parse_orcpt(pr.value)) == NULL) {
				param_error(err, "Bad ORCPT parameter value");
				goto fail;
			}
			seen |= RP_ORCPT;
		} else {
			param_error(err, "Unknown RCPT parameter");
			goto fail;
		}
	}
	if (r < 0) {
		param_error(err, "Malformed RCPT parameter");
		goto fail;
	}
	return 0;
fail:
	smtp_rcpt_params_clear(p);
	return -1;
}

void smtp_mail_params_clear(struct smtp_mail_params *p)
{
	address_clear(&p->from);
	free(p->envid);
	free(p->auth);
	memset(p, 0, sizeof(*p));
	p->size = -1;
}

void smtp_rcpt_params_clear(struct smtp_rcpt_params *p)
{
	address_clear(&p->to);
	free(p->orcpt);
	memset(p, 0, sizeof(*p));
}
