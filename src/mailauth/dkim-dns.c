/* DKIM's DNS over the resolver (see dkim-dns.h).
 *
 * A key lookup (RFC 6376 3.6.2.2: TXT at SELECTOR._domainkey.DOMAIN) is
 * relayed to the SPF adapter's txt question, so the resolver glue, the
 * status mapping (NODATA is an empty answer, NXDOMAIN stays NXDOMAIN,
 * timeout/SERVFAIL/bogus are temporary) and the joining of each record's
 * strings live in one place, spf-dns.c.  This file only translates the
 * answer type and keeps the relays, so that the verifier's cancel(query
 * context) can find the SPF-level question.  Invariants:
 *  - a relay is in the list exactly while its SPF-level question is in
 *    flight; it leaves the list before the verifier's callback runs;
 *  - a cancelled question's callback never runs.
 * RFC 6376 3.6.2.2 (the TXT record, strings concatenated), 6.1.2
 * (temporary failure -> TEMPFAIL, no record -> PERMFAIL). */
#include "mailauth/dkim-dns.h"

#include <stdlib.h>

#include "lib/buf.h"
#include "mailauth/spf-dns.h"

struct dkim_relay {
	struct dkim_dns_adapter *a;
	struct dkim_relay *prev, *next;
	dkim_dns_cb *cb;
	void *qctx;
};

struct dkim_dns_adapter {
	struct spf_dns_adapter *spf;
	struct dkim_dns dns;
	struct dkim_relay *relays;
	size_t pending;
};

static void relay_unlink(struct dkim_relay *l)
{
	struct dkim_dns_adapter *a = l->a;

	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		a->relays = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	l->prev = l->next = NULL;
	a->pending--;
}

static void on_txt(void *ctx, const struct spf_dns_answer *in)
{
	struct dkim_relay *l = ctx;
	dkim_dns_cb *cb = l->cb;
	void *qctx = l->qctx;
	struct dkim_dns_answer ans = {
		.count = in->count, .strings = in->strings, .lengths = in->lengths,
	};

	switch (in->status) {
	case SPF_DNS_OK:
		ans.status = DKIM_DNS_OK;
		break;
	case SPF_DNS_NXDOMAIN:
		ans.status = DKIM_DNS_NXDOMAIN;
		break;
	case SPF_DNS_TEMPFAIL:
	default:
		ans.status = DKIM_DNS_TEMPFAIL;
		break;
	}
	if (ans.status != DKIM_DNS_OK) {
		ans.count = 0;
		ans.strings = NULL;
		ans.lengths = NULL;
	}
	relay_unlink(l);
	free(l);
	cb(qctx, &ans);
}

static void ask_txt(void *ctx, const char *name, dkim_dns_cb *cb, void *qctx)
{
	struct dkim_dns_adapter *a = ctx;
	const struct spf_dns *sd = spf_dns_adapter_dns(a->spf);
	struct dkim_relay *l = xcalloc(1, sizeof(*l));

	l->a = a;
	l->cb = cb;
	l->qctx = qctx;
	l->next = a->relays;
	if (a->relays != NULL)
		a->relays->prev = l;
	a->relays = l;
	a->pending++;
	/* the SPF adapter never answers inside this call */
	sd->txt(sd->ctx, name, on_txt, l);
}

static void relay_cancel(struct dkim_relay *l)
{
	const struct spf_dns *sd = spf_dns_adapter_dns(l->a->spf);

	sd->cancel(sd->ctx, l);
	relay_unlink(l);
	free(l);
}

static void cancel(void *ctx, void *qctx)
{
	struct dkim_dns_adapter *a = ctx;
	struct dkim_relay *l, *next;

	for (l = a->relays; l != NULL; l = next) {
		next = l->next;
		if (l->qctx == qctx)
			relay_cancel(l);
	}
}

struct dkim_dns_adapter *dkim_dns_adapter_new(struct spf_dns_adapter *spf)
{
	struct dkim_dns_adapter *a = xcalloc(1, sizeof(*a));

	a->spf = spf;
	a->dns = (struct dkim_dns){ .ctx = a, .txt = ask_txt, .cancel = cancel };
	return a;
}

void dkim_dns_adapter_free(struct dkim_dns_adapter **ap)
{
	struct dkim_dns_adapter *a = *ap;

	if (a == NULL)
		return;
	while (a->relays != NULL)
		relay_cancel(a->relays);
	free(a);
	*ap = NULL;
}

const struct dkim_dns *dkim_dns_adapter_dns(struct dkim_dns_adapter *a)
{
	return &a->dns;
}

size_t dkim_dns_adapter_pending(const struct dkim_dns_adapter *a)
{
	return a->pending;
}
