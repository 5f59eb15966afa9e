/* Delivery Status Notification builder: a multipart/report (RFC 6522) with
 * a human-readable explanation, a message/delivery-status part (RFC 3464
 * sections 2.2 per-message and 2.3 per-recipient fields) and the original
 * message or its headers (RFC 3461 4.3 RET), addressed to the original
 * envelope sender.  SMTPUTF8 originals get the RFC 6533 types
 * (message/global-delivery-status, message/global, message/global-headers)
 * and "utf-8" address types for non-ASCII addresses.
 *
 * Invariants: every piece of peer- or caller-supplied text (remote replies,
 * reasons, host names, ENVID, ORCPT, addresses) passes through
 * dsn_sanitize() before it reaches a header or the report, so no CR, LF,
 * NUL or other control character (the CVE-2020-8794 class) and, unless
 * smtputf8, no 8-bit byte gets in; every generated line is folded below
 * 998 bytes; the original is copied with CRLF line ends.  Nothing is
 * appended to out unless the whole message fits. */
#include "mail/dsn.h"

#include <openssl/rand.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "mail/address.h"
#include "mail/date.h"
#include "mail/header.h"

#define DSN_FOLD_AT 76          /* fold generated header lines near this column */
#define DSN_TEXT_WIDTH 78       /* wrap the human-readable text here */
#define DSN_CHUNK_MAX 900       /* hard break for a run with no space (< 998) */
#define DSN_FIELD_MAX 512       /* bytes kept of host names, ENVID, ORCPT, addresses */

const char *dsn_action_name(enum dsn_action action)
{
	switch (action) {
	case DSN_ACTION_FAILED:
		return "failed";
	case DSN_ACTION_DELAYED:
		return "delayed";
	case DSN_ACTION_DELIVERED:
		return "delivered";
	case DSN_ACTION_RELAYED:
		return "relayed";
	case DSN_ACTION_EXPANDED:
		return "expanded";
	}
	return "failed";
}

bool dsn_should_notify(unsigned notify_flags, enum dsn_action action)
{
	if (notify_flags & DSN_NOTIFY_NEVER)
		return false;
	if (notify_flags == 0)
		notify_flags = DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;
	switch (action) {
	case DSN_ACTION_FAILED:
		return (notify_flags & DSN_NOTIFY_FAILURE) != 0;
	case DSN_ACTION_DELAYED:
		return (notify_flags & DSN_NOTIFY_DELAY) != 0;
	case DSN_ACTION_DELIVERED:
	case DSN_ACTION_RELAYED:
	case DSN_ACTION_EXPANDED:
		return (notify_flags & DSN_NOTIFY_SUCCESS) != 0;
	}
	return false;
}

/* Copy s into out as one line of text: CR, LF and TAB become spaces, runs
 * of spaces collapse, other controls and NUL are dropped, 8-bit bytes
 * stay only when utf8 is set and they form valid UTF-8 (else '?'), and at
 * most max bytes are kept ("..." marks a cut).  Leading and trailing
 * spaces are removed. */
static void dsn_sanitize(struct buf *out, const char *s, size_t max, bool utf8)
{
	size_t start = out->len, len = s != NULL ? strlen(s) : 0;
	bool space = true;      /* drop leading spaces */

	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		if (out->len - start >= max) {
			buf_append_str(out, "...");
			return;
		}
		if (c == '\r' || c == '\n' || c == '\t' || c == ' ') {
			if (!space)
				buf_append(out, " ", 1);
			space = true;
			i++;
			continue;
		}
		space = false;
		if (c < 0x20 || c == 0x7f) {
			space = out->len == start || out->data[out->len - 1] == ' ';
			i++;
			continue;
		}
		if (c < 0x80) {
			buf_append(out, &s[i], 1);
			i++;
			continue;
		}
		ucs4_t uc;
		int n = u8_mbtoucr(&uc, (const uint8_t *)s + i, len - i);
		if (utf8 && n > 0) {
			buf_append(out, &s[i], (size_t)n);
			i += (size_t)n;
		} else {
			buf_append(out, "?", 1);
			i += n > 0 ? (size_t)n : 1;
		}
	}
	while (out->len > start && out->data[out->len - 1] == ' ')
		out->data[--out->len] = '\0';
}

static char *sanitized(const char *s, size_t max, bool utf8)
{
	struct buf b;
	buf_init(&b, BUF_UNLIMITED);
	dsn_sanitize(&b, s, max, utf8);
	return buf_steal(&b);
}

/* Append text (one line, already sanitised) starting at column col,
 * breaking at spaces before DSN_FOLD_AT and continuing with cont (CRLF
 * plus white space, the indentation column cont_col).  A run longer than
 * DSN_CHUNK_MAX with no space is cut there, so no line reaches 998.
 * Breaks before fold_at where the words allow. */
static void append_folded(struct buf *out, const char *text, size_t col, const char *cont,
			  size_t cont_col, size_t fold_at)
{
	const char *p = text;
	bool first = true;

	while (*p != '\0') {
		const char *sp = strchr(p, ' ');
		size_t wlen = sp != NULL ? (size_t)(sp - p) : strlen(p);
		if (!first && col + 1 + wlen > fold_at && col > cont_col) {
			buf_append_str(out, cont);
			col = cont_col;
		} else if (!first) {
			buf_append(out, " ", 1);
			col++;
		}
		while (wlen > DSN_CHUNK_MAX) {
			buf_append(out, p, DSN_CHUNK_MAX);
			buf_append_str(out, cont);
			col = cont_col;
			p += DSN_CHUNK_MAX;
			wlen -= DSN_CHUNK_MAX;
		}
		buf_append(out, p, wlen);
		col += wlen;
		p += wlen;
		first = false;
		while (*p == ' ')
			p++;
	}
}

/* "Name: value" folded, with CRLF; value sanitised here. */
static void field(struct buf *out, const char *name, const char *value, size_t max, bool utf8)
{
	char *v = sanitized(value, max, utf8);
	buf_printf(out, "%s: ", name);
	append_folded(out, v, strlen(name) + 2, "\r\n ", 1, DSN_FOLD_AT);
	buf_append_str(out, "\r\n");
	free(v);
}

/* Paragraph of human text wrapped with indentation, CRLF at the end. */
static void paragraph(struct buf *out, const char *indent, const char *text, bool utf8)
{
	char *v = sanitized(text, DSN_REPLY_MAX, utf8);
	char cont[32];
	snprintf(cont, sizeof(cont), "\r\n%s", indent);
	buf_append_str(out, indent);
	append_folded(out, v, strlen(indent), cont, strlen(indent), DSN_TEXT_WIDTH);
	buf_append_str(out, "\r\n");
	free(v);
}

static void date_field(struct buf *out, const char *name, time_t t)
{
	char d[DATE_RFC5322_LEN + 1];
	date_format_rfc5322(t, 0, d);
	buf_printf(out, "%s: %s\r\n", name, d);
}

static bool has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return true;
	}
	return false;
}

static bool has_ctl(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

/* "x.y.z": class 2, 4 or 5, then 1-3 digits twice (RFC 3463 2). */
static bool status_valid(const char *s)
{
	size_t n;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	s += 2;
	for (int part = 0; part < 2; part++) {
		for (n = 0; s[n] >= '0' && s[n] <= '9'; n++)
			;
		if (n == 0 || n > 3)
			return false;
		s += n;
		if (part == 0 && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

static const char *status_default(enum dsn_action action)
{
	switch (action) {
	case DSN_ACTION_FAILED:
		return "5.0.0";
	case DSN_ACTION_DELAYED:
		return "4.0.0";
	default:
		return "2.0.0";
	}
}

static void random_hex(char *out, size_t bytes)
{
	unsigned char r[32];
	static const char hex[] = "0123456789abcdef";

	if (bytes > sizeof(r))
		bytes = sizeof(r);
	if (RAND_bytes(r, (int)bytes) != 1) {
		/* no entropy source is an unusable environment, but a DSN id
		 * only needs to be unique: fall back to time and address */
		uint64_t v = (uint64_t)clock_now_ms() ^ (uint64_t)(uintptr_t)out;
		for (size_t i = 0; i < bytes; i++)
			r[i] = (unsigned char)(v >> (8 * (i % 8)));
	}
	for (size_t i = 0; i < bytes; i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[2 * bytes] = '\0';
}

/* Copy msg[0..len) with every line ending CRLF (bare LF and bare CR
 * become CRLF, NUL is dropped); a final line gets its CRLF. */
static void append_crlf(struct buf *out, const char *msg, size_t len)
{
	size_t run = 0;

	for (size_t i = 0; i < len; i++) {
		char c = msg[i];
		if (c != '\r' && c != '\n' && c != '\0')
			continue;
		buf_append(out, msg + run, i - run);
		if (c == '\r') {
			buf_append(out, "\r\n", 2);
			if (i + 1 < len && msg[i + 1] == '\n')
				i++;
		} else if (c == '\n') {
			buf_append(out, "\r\n", 2);
		}
		run = i + 1;
	}
	buf_append(out, msg + run, len - run);
	if (len > 0 && msg[len - 1] != '\n' && msg[len - 1] != '\r')
		buf_append(out, "\r\n", 2);
}

/* The address-type of an address for Final-Recipient (RFC 6533 3). */
static const char *addr_type(const char *addr, bool utf8)
{
	return utf8 && addr != NULL && has_8bit(addr, strlen(addr)) ? "utf-8" : "rfc822";
}

static void recipient_text(struct buf *out, const struct dsn_recipient *r, bool utf8)
{
	char *addr = sanitized(r->address, DSN_FIELD_MAX, utf8);
	const char *what;

	switch (r->action) {
	case DSN_ACTION_FAILED:
		what = "delivery failed";
		break;
	case DSN_ACTION_DELAYED:
		what = "delivery delayed, still trying";
		break;
	case DSN_ACTION_RELAYED:
		what = "relayed to a system that sends no further notifications";
		break;
	case DSN_ACTION_EXPANDED:
		what = "delivered to a list or alias";
		break;
	default:
		what = "delivered";
		break;
	}
	buf_printf(out, "\r\n<%s>: %s\r\n", addr, what);
	if (r->reply != NULL) {
		/* the reply line by line, as the remote server wrote it (the
		 * report part has it joined into one field) */
		char *host = sanitized(r->remote_mta, DSN_FIELD_MAX, false);
		char *reply = xstrndup(r->reply, strnlen(r->reply, DSN_REPLY_MAX));
		char *line, *save = NULL;
		if (host[0] != '\0')
			buf_printf(out, "    host %s said:\r\n", host);
		else
			buf_append_str(out, "    the remote server said:\r\n");
		for (line = strtok_r(reply, "\r\n", &save); line != NULL;
		     line = strtok_r(NULL, "\r\n", &save))
			paragraph(out, "        ", line, utf8);
		free(reply);
		free(host);
	}
	if (r->reason != NULL)
		paragraph(out, "    ", r->reason, utf8);
	free(addr);
}

static void recipient_status(struct buf *out, const struct dsn_recipient *r, bool utf8)
{
	char *v;

	buf_append_str(out, "\r\n");
	if (r->orcpt != NULL && strchr(r->orcpt, ';') != NULL) {
		v = sanitized(r->orcpt, DSN_FIELD_MAX, utf8);
		field(out, "Original-Recipient", v, DSN_FIELD_MAX + 3, utf8);
		free(v);
	}
	v = sanitized(r->address, DSN_FIELD_MAX, utf8);
	char *fr = xasprintf("%s; %s", addr_type(v, utf8), v);
	field(out, "Final-Recipient", fr, DSN_FIELD_MAX + 16, utf8);
	free(fr);
	free(v);
	buf_printf(out, "Action: %s\r\n", dsn_action_name(r->action));
	buf_printf(out, "Status: %s\r\n",
		   status_valid(r->status) ? r->status : status_default(r->action));
	if (r->remote_mta != NULL && r->remote_mta[0] != '\0') {
		v = sanitized(r->remote_mta, DSN_FIELD_MAX, false);
		char *rm = xasprintf("dns; %s", v);
		field(out, "Remote-MTA", rm, DSN_FIELD_MAX + 8, false);
		free(rm);
		free(v);
	}
	if (r->reply != NULL || r->reason != NULL) {
		/* RFC 3464 2.3.6: "smtp" for a reply from the remote server;
		 * our own reasons use an X- type, as other MTAs do */
		v = sanitized(r->reply != NULL ? r->reply : r->reason, DSN_REPLY_MAX, utf8);
		char *dc = xasprintf("%s; %s", r->reply != NULL ? "smtp" : "X-Tern", v);
		field(out, "Diagnostic-Code", dc, DSN_REPLY_MAX + 16, utf8);
		free(dc);
		free(v);
	}
	if (r->last_attempt != 0)
		date_field(out, "Last-Attempt-Date", r->last_attempt);
	if (r->action == DSN_ACTION_DELAYED && r->will_retry_until != 0)
		date_field(out, "Will-Retry-Until", r->will_retry_until);
}

int dsn_build(const struct dsn_params *p, struct buf *out, const char **error_r)
{
	bool any_failed = false, any_delayed = false, utf8 = p->smtputf8;
	bool full = false, eight_bit = false;
	size_t full_max = p->full_max != 0 ? p->full_max : DSN_FULL_MAX_DEFAULT;
	size_t orig_len = 0;
	char msgid[80], boundary[80], rnd[33];
	struct buf m;

	if (p->sender == NULL || p->sender[0] == '\0') {
		*error_r = "No DSN for the null sender";
		return -1;
	}
	if (has_ctl(p->sender)) {
		*error_r = "Control character in the DSN recipient";
		return -1;
	}
	if (p->hostname == NULL || p->hostname[0] == '\0' || has_ctl(p->hostname) ||
	    !address_domain_valid(p->hostname, strlen(p->hostname), false)) {
		*error_r = "Invalid DSN hostname";
		return -1;
	}
	if (p->rcpts == NULL || p->rcpt_count == 0) {
		*error_r = "No recipients to report";
		return -1;
	}
	for (size_t i = 0; i < p->rcpt_count; i++) {
		any_failed |= p->rcpts[i].action == DSN_ACTION_FAILED;
		any_delayed |= p->rcpts[i].action == DSN_ACTION_DELAYED;
	}
	if (p->original != NULL) {
		orig_len = header_section_length(p->original, p->original_len);
		if (p->ret == DSN_RET_FULL && p->original_len <= full_max) {
			full = true;
			orig_len = p->original_len;
		}
		eight_bit = has_8bit(p->original, orig_len);
	}
	eight_bit |= utf8;

	if (p->message_id != NULL && !has_ctl(p->message_id) && strlen(p->message_id) < 64) {
		snprintf(msgid, sizeof(msgid), "%s", p->message_id);
	} else {
		random_hex(rnd, 16);
		snprintf(msgid, sizeof(msgid), "%s.dsn", rnd);
	}
	if (p->boundary != NULL && !has_ctl(p->boundary) && strlen(p->boundary) < 64) {
		snprintf(boundary, sizeof(boundary), "%s", p->boundary);
	} else {
		random_hex(rnd, 12);
		snprintf(boundary, sizeof(boundary), "=_tern_%s", rnd);
	}

	/* built apart, then appended at once: the size is bounded by the
	 * inputs (original capped by full_max or its header section, replies
	 * by DSN_REPLY_MAX), and out gets all of it or nothing */
	buf_init(&m, BUF_UNLIMITED);

	/* header */
	buf_printf(&m, "From: \"Mail Delivery System\" <MAILER-DAEMON@%s>\r\n", p->hostname);
	buf_append_str(&m, "To: <");
	dsn_sanitize(&m, p->sender, ADDRESS_MAX_PATH * 4, true);
	buf_append_str(&m, ">\r\n");
	buf_printf(&m, "Subject: %s\r\n",
		   any_failed ? "Undelivered Mail Returned to Sender" :
		   any_delayed ? "Delayed Mail (still being retried)" :
		   "Successful Mail Delivery Report");
	date_field(&m, "Date", p->now != 0 ? p->now : clock_now());
	buf_printf(&m, "Message-ID: <%s@%s>\r\n", msgid, p->hostname);
	buf_append_str(&m, "Auto-Submitted: auto-replied\r\n");
	buf_append_str(&m, "MIME-Version: 1.0\r\n");
	buf_printf(&m, "Content-Type: multipart/report; report-type=%s;\r\n\tboundary=\"%s\"\r\n",
		   utf8 ? "global-delivery-status" : "delivery-status", boundary);
	if (eight_bit)
		buf_append_str(&m, "Content-Transfer-Encoding: 8bit\r\n");
	buf_append_str(&m, "\r\nThis is a MIME-encapsulated message.\r\n");

	/* 1: the human-readable part */
	buf_printf(&m, "\r\n--%s\r\nContent-Description: Notification\r\n"
		   "Content-Type: text/plain; charset=%s\r\n", boundary, utf8 ? "utf-8" : "us-ascii");
	if (utf8)
		buf_append_str(&m, "Content-Transfer-Encoding: 8bit\r\n");
	buf_printf(&m, "\r\nThis is the mail system at host %s.\r\n\r\n", p->hostname);
	if (any_failed) {
		paragraph(&m, "", "Your message could not be delivered to one or more "
			  "recipients, listed below with the reason. These failures are "
			  "permanent: the mail system will not try them again.", utf8);
	} else if (any_delayed) {
		paragraph(&m, "", "Your message has not been delivered yet to one or more "
			  "recipients, listed below with the reason. This is only a warning: "
			  "you do not need to send the message again.", utf8);
	} else {
		paragraph(&m, "", "Your message was delivered to the recipients below, "
			  "as you asked.", utf8);
	}
	if (any_delayed) {
		time_t until = 0;
		for (size_t i = 0; i < p->rcpt_count; i++) {
			if (p->rcpts[i].action == DSN_ACTION_DELAYED &&
			    p->rcpts[i].will_retry_until > until)
				until = p->rcpts[i].will_retry_until;
		}
		char d[DATE_RFC5322_LEN + 1];
		if (until != 0)
			date_format_rfc5322(until, 0, d);
		char *note = xasprintf("Delivery to the recipients marked as delayed is still "
				       "being retried%s%s. You will be told if it finally fails.",
				       until != 0 ? " until " : "", until != 0 ? d : "");
		buf_append_str(&m, "\r\n");
		paragraph(&m, "", note, false);
		free(note);
	}
	buf_printf(&m, "\r\nIf you need help, contact <postmaster@%s> and include this "
		   "report.\r\n", p->hostname);
	for (size_t i = 0; i < p->rcpt_count; i++)
		recipient_text(&m, &p->rcpts[i], utf8);
	if (p->original != NULL && p->ret == DSN_RET_FULL && !full) {
		char *note = xasprintf("The message was larger than %zu bytes, so only its "
				       "headers are returned.", full_max);
		buf_append_str(&m, "\r\n");
		paragraph(&m, "", note, false);
		free(note);
	}

	/* 2: the machine-readable report (RFC 3464 2.1) */
	buf_printf(&m, "\r\n--%s\r\nContent-Description: Delivery report\r\n"
		   "Content-Type: message/%s\r\n", boundary,
		   utf8 ? "global-delivery-status" : "delivery-status");
	if (utf8)
		buf_append_str(&m, "Content-Transfer-Encoding: 8bit\r\n");
	buf_append_str(&m, "\r\n");
	buf_printf(&m, "Reporting-MTA: dns; %s\r\n", p->hostname);
	if (p->envid != NULL && p->envid[0] != '\0')
		field(&m, "Original-Envelope-Id", p->envid, DSN_FIELD_MAX, false);
	if (p->arrival != 0)
		date_field(&m, "Arrival-Date", p->arrival);
	for (size_t i = 0; i < p->rcpt_count; i++)
		recipient_status(&m, &p->rcpts[i], utf8);

	/* 3: the original (RFC 3462/6522 text/rfc822-headers, RFC 6533 6.3/6.4) */
	if (p->original != NULL) {
		const char *type = full ? (utf8 ? "message/global" : "message/rfc822") :
				   (utf8 ? "message/global-headers" : "text/rfc822-headers");
		buf_printf(&m, "\r\n--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n",
			   boundary, any_failed ? (full ? "Undelivered Message" :
						   "Undelivered Message Headers") :
			   (full ? "Message" : "Message Headers"), type);
		if (has_8bit(p->original, orig_len))
			buf_append_str(&m, "Content-Transfer-Encoding: 8bit\r\n");
		buf_append_str(&m, "\r\n");
		size_t copy = orig_len;
		if (!full) {
			/* the header fields without the empty line ending them */
			while (copy > 0 && (p->original[copy - 1] == '\n' ||
					    p->original[copy - 1] == '\r'))
				copy--;
		}
		append_crlf(&m, p->original, copy);
	}
	buf_printf(&m, "\r\n--%s--\r\n", boundary);

	int ret = 0;
	if (buf_append(out, m.data, m.len) < 0) {
		*error_r = "DSN larger than the output limit";
		ret = -1;
	}
	buf_free(&m);
	return ret;
}
