/* Session-level SMTP commands: HELO/EHLO (RFC 5321 4.1.1.1, the EHLO
 * keywords), STARTTLS (RFC 3207) and RSET. */
#include "smtp/server-private.h"
#include "auth/auth.h"
#include "lib/config.h"
#include "lib/log.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

/* Keep the HELO name printable and free of what would break the Received
 * header's comment syntax; a peer can send anything here. */
static char *helo_sanitise(struct slice arg)
{
	size_t n = arg.len > 255 ? 255 : arg.len;
	char *h = xstrndup(arg.p, n);
	for (char *p = h; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == '\\' || c == ';')
			*p = '?';
	}
	return h;
}

void smtp_cmd_helo(struct smtp_session *s, struct slice arg, bool ehlo)
{
	const struct config *cfg = s->l->cfg;
	struct buf r;

	if (arg.len == 0) {
		smtp_error(s, 501, "5.5.4", "%s requires a domain name", ehlo ? "EHLO" : "HELO");
		return;
	}
	smtp_transaction_reset(s);
	free(s->helo);
	s->helo = helo_sanitise(arg);
	s->esmtp = ehlo;
	s->state = SMTP_STATE_READY;
	if (!ehlo) {
		smtp_send(s, 250, NULL, "%s", cfg->hostname);
		return;
	}
	/* RFC 2034: no enhanced code on EHLO/HELO replies */
	buf_init(&r, 4096);
	buf_printf(&r, "%s Hello %s [%s]\n", cfg->hostname, s->helo, s->c.ip);
	buf_printf(&r, "PIPELINING\nSIZE %zu\n8BITMIME\nSMTPUTF8\nENHANCEDSTATUSCODES\n",
		   cfg->limits.message_size);
	buf_printf(&r, "CHUNKING\nDSN\n");
	if (s->l->tls != NULL && s->c.ssl == NULL)
		buf_printf(&r, "STARTTLS\n");
	if (s->c.tls_active)
		buf_printf(&r, "REQUIRETLS\n");   /* RFC 8689 2: only on a TLS session */
	if (smtp_auth_allowed(s) && s->user == NULL)
		buf_printf(&r, "AUTH %s\n", auth_sasl_mechanisms());
	/* drop the last newline: the last line gets "250 " */
	r.data[--r.len] = '\0';
	smtp_send(s, 250, NULL, "%s", buf_cstr(&r));
	buf_free(&r);
}

void smtp_cmd_rset(struct smtp_session *s, struct slice arg)
{
	(void)arg;
	smtp_transaction_reset(s);
	smtp_send(s, 250, "2.0.0", "OK");
}

void smtp_cmd_starttls(struct smtp_session *s, struct slice arg)
{
	struct evbuffer *in = bufferevent_get_input(s->c.bev);
	size_t pending;

	if (arg.len > 0) {
		smtp_error(s, 501, "5.5.4", "STARTTLS takes no arguments");
		return;
	}
	if (s->c.ssl != NULL) {
		smtp_error(s, 503, "5.5.1", "TLS already active");
		return;
	}
	if (s->l->tls == NULL) {
		smtp_error(s, 454, "4.7.0", "TLS not available");
		return;
	}
	smtp_send(s, 220, "2.0.0", "Ready to start TLS");
	/* RFC 3207 4.2 / the CVE-2011-0411 class: anything the client pipelined
	 * after STARTTLS was sent in plaintext and must not be acted upon. */
	pending = evbuffer_get_length(in);
	if (pending > 0) {
		log_warn("smtp", "sid=%s event=starttls_pipelined ip=%s bytes=%zu", s->c.id, s->c.ip, pending);
		evbuffer_drain(in, pending);
	}
	smtp_transaction_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	s->state = SMTP_STATE_INIT;
	if (smtp_start_tls(s) < 0) {
		log_error("smtp", "sid=%s event=tls_setup_failed", s->c.id);
		smtp_close(s, "TLS setup failed");
	}
}
