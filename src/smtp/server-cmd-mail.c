/* The envelope: MAIL FROM and RCPT TO (RFC 5321 4.1.1.2-3, with the
 * parameters of SIZE, 8BITMIME, SMTPUTF8, DSN and AUTH).  Syntax and
 * engine limits are checked here; the role's hooks decide policy. */
#include "smtp/server-private.h"
#include "lib/config.h"
#include "lib/log.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void smtp_cmd_mail(struct smtp_session *s, struct slice arg)
{
	const struct config *cfg = s->l->cfg;
	struct smtp_param_ext ext;
	struct smtp_parse_error err;
	struct smtp_reply reply = { 0 };
	unsigned char rnd[8];

	if (s->have_mail) {
		smtp_error(s, 503, "5.5.1", "Nested MAIL command");
		return;
	}
	smtp_param_ext(s, &ext);
	memset(&s->mail, 0, sizeof(s->mail));
	if (smtp_mail_parse(arg, &ext, &s->mail, &err) < 0) {
		smtp_mail_params_clear(&s->mail);
		smtp_error(s, err.code, err.enhanced, "%s", err.text);
		return;
	}
	if (s->mail.size >= 0 && (uint64_t)s->mail.size > cfg->limits.message_size) {
		smtp_mail_params_clear(&s->mail);
		smtp_send(s, 552, "5.3.4", "Message size exceeds fixed limit of %zu bytes",
			  cfg->limits.message_size);
		return;
	}
	if (s->l->hooks->mail != NULL)
		s->l->hooks->mail(s, &s->mail, &reply);
	if (reply.code != 0) {
		smtp_mail_params_clear(&s->mail);
		smtp_error(s, reply.code, reply.enhanced, "%s", reply.text);
		return;
	}
	s->have_mail = true;
	s->state = SMTP_STATE_MAIL;
	RAND_bytes(rnd, sizeof(rnd));
	for (int i = 0; i < 8; i++)
		snprintf(s->msgid + 2 * i, 3, "%02x", rnd[i]);
	smtp_send(s, 250, "2.1.0", "Sender OK");
}

void smtp_cmd_rcpt(struct smtp_session *s, struct slice arg)
{
	const struct config *cfg = s->l->cfg;
	struct smtp_param_ext ext;
	struct smtp_parse_error err;
	struct smtp_reply reply = { 0 };
	struct smtp_rcpt_params params;
	void *ctx = NULL;

	if (!s->have_mail) {
		smtp_error(s, 503, "5.5.1", "Need MAIL command first");
		return;
	}
	if (s->body_started) {
		smtp_error(s, 503, "5.5.1", "RCPT not allowed after BDAT");
		return;
	}
	if (s->rcpt_count >= cfg->limits.recipients) {
		/* RFC 5321 4.5.3.1.10: 452, the client sends the rest later */
		smtp_send(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	smtp_param_ext(s, &ext);
	memset(&params, 0, sizeof(params));
	if (smtp_rcpt_parse(arg, &ext, s->mail.smtputf8, &params, &err) < 0) {
		smtp_rcpt_params_clear(&params);
		smtp_error(s, err.code, err.enhanced, "%s", err.text);
		return;
	}
	if (s->l->hooks->rcpt != NULL)
		s->l->hooks->rcpt(s, &params, &reply, &ctx);
	if (reply.code != 0) {
		if (ctx != NULL && s->l->hooks->free_rcpt != NULL)
			s->l->hooks->free_rcpt(ctx);
		smtp_rcpt_params_clear(&params);
		if (reply.code >= 500)
			smtp_error(s, reply.code, reply.enhanced, "%s", reply.text);
		else
			smtp_send(s, reply.code, reply.enhanced, "%s", reply.text);
		return;
	}
	if (s->rcpt_count == s->rcpt_alloc) {
		s->rcpt_alloc = s->rcpt_alloc ? s->rcpt_alloc * 2 : 4;
		s->rcpts = xrealloc(s->rcpts, s->rcpt_alloc * sizeof(*s->rcpts));
	}
	s->rcpts[s->rcpt_count].address = address_format(&params.to);
	s->rcpts[s->rcpt_count].params = params;
	s->rcpts[s->rcpt_count].ctx = ctx;
	s->rcpt_count++;
	s->state = SMTP_STATE_RCPT;
	smtp_send(s, 250, "2.1.5", "Recipient OK");
}
