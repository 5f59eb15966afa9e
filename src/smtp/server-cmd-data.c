/* Message content: DATA (RFC 5321 4.1.1.4) and BDAT (RFC 3030), the
 * Received trace field (RFC 5321 4.4, protocol names from RFC 3848 and
 * RFC 6531), and the hand-over to the role's data hook. */
#include "smtp/server-private.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"

#include <stdio.h>
#include <string.h>

static const char *received_protocol(struct smtp_session *s)
{
	bool utf8 = s->have_mail && s->mail.smtputf8;
	bool tls = s->c.tls_active, auth = s->user != NULL;

	if (!s->esmtp)
		return "SMTP";
	if (utf8)
		return tls && auth ? "UTF8SMTPSA" : tls ? "UTF8SMTPS" : auth ? "UTF8SMTPA" : "UTF8SMTP";
	return tls && auth ? "ESMTPSA" : tls ? "ESMTPS" : auth ? "ESMTPA" : "ESMTP";
}

/* Received header with folded lines; the only peer data in it is the
 * sanitised HELO name, the client IP and one validated forward-path. */
static void received_header(struct smtp_session *s, struct buf *out)
{
	char date[64];

	clock_rfc5322(clock_now(), date, sizeof(date));
	if (s->local_peer != NULL)   /* local submission: who, by uid (as Postfix's pickup) */
		buf_printf(out, "Received: from local (%s)\r\n", s->local_peer);
	else
		buf_printf(out, "Received: from %s ([%s])\r\n", s->helo ? s->helo : "unknown",
			   s->c.ip);
	if (s->c.tls_active)
		buf_printf(out, "\t(using %s)\r\n", s->c.tls_desc);
	buf_printf(out, "\tby %s (Tern) with %s id %s", s->l->cfg->hostname, received_protocol(s),
		   s->msgid);
	if (s->rcpt_count == 1)
		buf_printf(out, "\r\n\tfor <%s>", s->rcpts[0].address);
	buf_printf(out, ";\r\n\t%s\r\n", date);
}

static void smtp_message_complete(struct smtp_session *s)
{
	const struct config *cfg = s->l->cfg;
	struct buf message;

	s->state = SMTP_STATE_READY;
	if (s->body.too_big) {
		smtp_send(s, 552, "5.3.4", "Message size exceeds fixed limit of %zu bytes",
			  cfg->limits.message_size);
		smtp_transaction_reset(s);
		return;
	}
	if (s->body.header_too_big) {
		smtp_send(s, 552, "5.3.4", "Header section exceeds limit of %zu bytes",
			  cfg->limits.header_size);
		smtp_transaction_reset(s);
		return;
	}
	if (s->body.nul) {
		smtp_send(s, 554, "5.6.0", "Message contains NUL characters");
		smtp_transaction_reset(s);
		return;
	}
	if (s->body.bare_lf || s->body.bare_cr)
		log_info("smtp", "sid=%s id=%s event=bare_line_end_normalised lf=%d cr=%d", s->c.id,
			 s->msgid, s->body.bare_lf, s->body.bare_cr);
	buf_init(&message, cfg->limits.message_size + 65536);
	received_header(s, &message);
	if (buf_append(&message, s->msg.data != NULL ? s->msg.data : "", s->msg.len) < 0) {
		buf_free(&message);
		smtp_send(s, 552, "5.3.4", "Message size exceeds fixed limit");
		smtp_transaction_reset(s);
		return;
	}
	buf_free(&s->msg);
	/* the hook answers through smtp_session_data_done(), maybe later */
	s->c.waiting = true;
	smtp_session_ref(s);
	s->l->hooks->data(s, &message);
	buf_free(&message);
}

void smtp_session_data_done(struct smtp_session *s, const struct smtp_reply *reply)
{
	if (reply == NULL || reply->code == 0)
		smtp_send(s, 250, "2.0.0", "OK: queued as %s", s->msgid);
	else
		smtp_send(s, reply->code, reply->enhanced, "%s", reply->text);
	smtp_transaction_reset(s);
	if (smtp_session_unref(s))
		smtp_resume(s);
}

void smtp_cmd_data(struct smtp_session *s, struct slice arg)
{
	const struct config *cfg = s->l->cfg;

	if (arg.len > 0) {
		smtp_error(s, 501, "5.5.4", "DATA takes no arguments");
		return;
	}
	if (s->body_started) {
		smtp_error(s, 503, "5.5.1", "DATA not allowed after BDAT");
		return;
	}
	if (!s->have_mail) {
		smtp_error(s, 503, "5.5.1", "Need MAIL command first");
		return;
	}
	if (s->rcpt_count == 0) {
		smtp_error(s, 554, "5.5.1", "No valid recipients");
		return;
	}
	smtp_body_init(&s->body, &s->msg, cfg->limits.message_size, cfg->limits.header_size, true);
	s->body_started = true;
	s->state = SMTP_STATE_DATA;
	smtp_send(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

void smtp_cmd_bdat(struct smtp_session *s, struct slice arg)
{
	const struct config *cfg = s->l->cfg;
	struct smtp_parse_error err;
	uint64_t size;
	bool last;

	if (smtp_bdat_parse(arg, &size, &last, &err) < 0) {
		/* without a valid size we cannot know where the chunk ends */
		smtp_error(s, err.code, err.enhanced, "%s", err.text);
		smtp_send(s, 421, "4.5.0", "%s Cannot resynchronise after a bad BDAT", cfg->hostname);
		smtp_close(s, "bad BDAT");
		return;
	}
	s->bdat_remaining = size;
	s->bdat_last = last;
	s->bdat_failed = false;
	/* RFC 3030 2: the chunk is read in full even when it is refused */
	if (!s->have_mail) {
		s->bdat_failed = true;
		s->bdat_error = (struct smtp_parse_error){ 503, "5.5.1", "Need MAIL command first" };
	} else if (s->rcpt_count == 0) {
		s->bdat_failed = true;
		s->bdat_error = (struct smtp_parse_error){ 554, "5.5.1", "No valid recipients" };
	} else if (!s->body_started) {
		smtp_body_init(&s->body, &s->msg, cfg->limits.message_size, cfg->limits.header_size,
			       false);
		s->body_started = true;
	}
	s->state = SMTP_STATE_BDAT;
	if (size == 0)
		smtp_body_input(s, "", 0);
}

/* One BDAT chunk is complete. */
static void smtp_bdat_chunk_done(struct smtp_session *s)
{
	if (s->bdat_failed) {
		struct smtp_parse_error e = s->bdat_error;
		s->state = s->have_mail ? (s->rcpt_count ? SMTP_STATE_RCPT : SMTP_STATE_MAIL)
					: SMTP_STATE_READY;
		smtp_error(s, e.code, e.enhanced, "%s", e.text);
		return;
	}
	if (s->bdat_last) {
		smtp_body_finish(&s->body);
		smtp_message_complete(s);
		return;
	}
	s->state = SMTP_STATE_RCPT;
	smtp_send(s, 250, "2.0.0", "%zu octets received", s->body.size);
}

size_t smtp_body_input(struct smtp_session *s, const char *p, size_t len)
{
	size_t used;

	if (s->state == SMTP_STATE_DATA) {
		used = smtp_body_feed(&s->body, p, len);
		if (s->body.done)
			smtp_message_complete(s);
		return used;
	}
	used = len < s->bdat_remaining ? len : (size_t)s->bdat_remaining;
	if (!s->bdat_failed && used > 0)
		smtp_body_feed(&s->body, p, used);
	s->bdat_remaining -= used;
	if (s->bdat_remaining == 0)
		smtp_bdat_chunk_done(s);
	return used;
}
