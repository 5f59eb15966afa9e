/* DMARC's DNS interface (struct dmarc_dns) over SPF's (struct spf_dns), so
 * that a discovery (RFC 7489 section 6.6.3) can use the resolver adapter
 * that SPF already has on each event loop (mailauth/spf-dns.h).
 *
 * Each TXT question gets a small record linking the DMARC callback and
 * query context to the SPF question; it is in the adapter's list exactly
 * while the SPF question is in flight, and leaves it before the DMARC
 * callback runs.  The answer types match field for field, so an answer is
 * passed on without copying.  With no spf->cancel, a freed adapter leaves
 * its in-flight records marked orphaned; each frees itself (and the last
 * frees the adapter) when its answer arrives, without calling back. */
#include <stdlib.h>

#include "lib/buf.h"
#include "mailauth/dmarc.h"

struct dmarc_spf_q;

struct dmarc_spf_dns {
	const struct spf_dns *spf;
	struct dmarc_dns dns;
	struct dmarc_spf_q *list;
	bool orphaned;
};

struct dmarc_spf_q {
	struct dmarc_spf_dns *a;
	struct dmarc_spf_q *prev, *next;
	dmarc_dns_cb *cb;
	void *qctx;
};

static void q_unlink(struct dmarc_spf_q *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		q->a->list = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
}

static void on_spf_answer(void *ctx, const struct spf_dns_answer *sa)
{
	struct dmarc_spf_q *q = ctx;
	struct dmarc_spf_dns *a = q->a;
	dmarc_dns_cb *cb = q->cb;
	void *qctx = q->qctx;

	q_unlink(q);
	free(q);
	if (a->orphaned) {
		if (a->list == NULL)
			free(a);
		return;
	}
	struct dmarc_dns_answer da = {
		.status = sa->status == SPF_DNS_OK ? DMARC_DNS_OK :
			  sa->status == SPF_DNS_NXDOMAIN ? DMARC_DNS_NXDOMAIN : DMARC_DNS_TEMPFAIL,
		.count = sa->count,
		.strings = sa->strings,
		.lengths = sa->lengths,
	};
	cb(qctx, &da);
}

static void ask_txt(void *ctx, const char *name, dmarc_dns_cb *cb, void *qctx)
{
	struct dmarc_spf_dns *a = ctx;
	struct dmarc_spf_q *q = xcalloc(1, sizeof(*q));

	q->a = a;
	q->cb = cb;
	q->qctx = qctx;
	q->next = a->list;
	if (a->list != NULL)
		a->list->prev = q;
	a->list = q;
	/* may answer inside this call, which frees q */
	a->spf->txt(a->spf->ctx, name, on_spf_answer, q);
}

static void cancel_txt(void *ctx, void *qctx)
{
	struct dmarc_spf_dns *a = ctx;
	struct dmarc_spf_q *q, *next;

	for (q = a->list; q != NULL; q = next) {
		next = q->next;
		if (q->qctx != qctx)
			continue;
		a->spf->cancel(a->spf->ctx, q);
		q_unlink(q);
		free(q);
	}
}

struct dmarc_spf_dns *dmarc_spf_dns_new(const struct spf_dns *spf)
{
	struct dmarc_spf_dns *a = xcalloc(1, sizeof(*a));

	a->spf = spf;
	a->dns = (struct dmarc_dns){
		.ctx = a, .txt = ask_txt, .cancel = spf->cancel != NULL ? cancel_txt : NULL,
	};
	return a;
}

const struct dmarc_dns *dmarc_spf_dns_get(struct dmarc_spf_dns *a)
{
	return &a->dns;
}

void dmarc_spf_dns_free(struct dmarc_spf_dns **ap)
{
	struct dmarc_spf_dns *a = *ap;

	if (a == NULL)
		return;
	*ap = NULL;
	if (a->spf->cancel == NULL && a->list != NULL) {
		a->orphaned = true;
		return;
	}
	while (a->list != NULL) {
		struct dmarc_spf_q *q = a->list;
		a->spf->cancel(a->spf->ctx, q);
		q_unlink(q);
		free(q);
	}
	free(a);
}
