/* An in-memory DNS for the DKIM and ARC unit tests (test-dkim.c,
 * test-arc.c): TXT answers from a list of (name, value) pairs, the value
 * "TEMPFAIL" standing for a failed lookup; with async set the questions
 * wait until zone_flush() (answered last first, since any order must
 * work) and can be cancelled.  Pass z_txt/z_cancel with the zone as
 * their context.  Static inline, so a test that uses a part gets no
 * warning for the rest. */
#ifndef TERN_DKIM_TEST_ZONE_H
#define TERN_DKIM_TEST_ZONE_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "mailauth/dkim.h"

struct zone {
	char **names, **values;
	size_t n;
	bool async;
	struct zq {
		char *name;
		dkim_dns_cb *cb;
		void *qctx;
		bool live;
	} *q;
	size_t nq;
	int queries, cancels;
};

static inline void zone_add(struct zone *z, const char *name, const char *value)
{
	z->names = xrealloc(z->names, (z->n + 1) * sizeof(char *));
	z->values = xrealloc(z->values, (z->n + 1) * sizeof(char *));
	z->names[z->n] = xstrdup(name);
	z->values[z->n] = xstrdup(value);
	z->n++;
}

static inline void zone_free(struct zone *z)
{
	for (size_t i = 0; i < z->n; i++) {
		free(z->names[i]);
		free(z->values[i]);
	}
	for (size_t i = 0; i < z->nq; i++)
		free(z->q[i].name);
	free(z->names);
	free(z->values);
	free(z->q);
	memset(z, 0, sizeof(*z));
}

static inline void zone_answer(struct zone *z, const char *name, dkim_dns_cb *cb, void *qctx)
{
	const char *strs[16];
	struct dkim_dns_answer a = { .status = DKIM_DNS_NXDOMAIN, .strings = strs };
	for (size_t i = 0; i < z->n; i++) {
		size_t l = strlen(z->names[i]);
		if (l && z->names[i][l - 1] == '.')
			l--;
		if (strlen(name) != l || strncasecmp(name, z->names[i], l) != 0)
			continue;
		if (strcmp(z->values[i], "TEMPFAIL") == 0) {
			a.status = DKIM_DNS_TEMPFAIL;
			break;
		}
		a.status = DKIM_DNS_OK;
		if (a.count < 16)
			strs[a.count++] = z->values[i];
	}
	cb(qctx, &a);
}

static inline void z_txt(void *ctx, const char *name, dkim_dns_cb *cb, void *qctx)
{
	struct zone *z = ctx;
	z->queries++;
	if (!z->async) {
		zone_answer(z, name, cb, qctx);
		return;
	}
	z->q = xrealloc(z->q, (z->nq + 1) * sizeof(*z->q));
	z->q[z->nq++] = (struct zq){ xstrdup(name), cb, qctx, true };
}

static inline void z_cancel(void *ctx, void *qctx)
{
	struct zone *z = ctx;
	for (size_t i = 0; i < z->nq; i++) {
		if (z->q[i].live && z->q[i].qctx == qctx) {
			z->q[i].live = false;
			z->cancels++;
		}
	}
}

/* answer the deferred questions, last first (any order must work) */
static inline void zone_flush(struct zone *z)
{
	for (size_t i = z->nq; i-- > 0;) {
		if (z->q[i].live) {
			z->q[i].live = false;
			zone_answer(z, z->q[i].name, z->q[i].cb, z->q[i].qctx);
		}
	}
}

#endif
