/* Unit tests for src/mailauth/dkim-dns.c, the DKIM verifier's DNS over the
 * resolver (through the SPF adapter): a key lookup whose only server
 * never answers (a closed loopback port) gives temperror from the loop,
 * never inside dkim_verify_finish(); a name outside the stub zones fails
 * the same way; an unsigned message needs no lookup at all; destroying a
 * verifier in flight cancels its lookups; freeing the adapter cancels the
 * questions still open (ASan checks the frees).  Real answers (key, no
 * key) are covered end to end by tests/integration/test_dkim_smtp.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "mailauth/dkim-dns.h"
#include "mailauth/dkim.h"
#include "mailauth/spf-dns.h"
#include "unit.h"

static const char msg_text[] =
	"From: alice@example.test\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHello.\r\n";

struct done {
	struct event_base *base;
	bool called, inside, finishing;
	size_t count;
	enum dkim_result result[DKIM_MAX_SIGNATURES];
};

static void on_done(void *ctx, const struct dkim_outcome *o)
{
	struct done *d = ctx;

	d->called = true;
	d->inside = d->finishing;
	d->count = o->count;
	for (size_t i = 0; i < o->count && i < DKIM_MAX_SIGNATURES; i++)
		d->result[i] = o->results[i].result;
	event_base_loopbreak(d->base);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

/* msg signed by DOMAIN with an Ed25519 key (seed of 32 bytes 7). */
static void sign_for(const char *domain, struct buf *out)
{
	struct dkim_keyring *kr = dkim_keyring_create();
	uint8_t seed[32];
	const char *error = NULL;

	memset(seed, 7, sizeof(seed));
	CHECK(dkim_keyring_add_ed25519_seed(kr, "k", seed, &error) == 0);
	struct dkim_signer signer = dkim_keyring_signer(kr);
	struct dkim_sign_request req = { .domain = domain, .selector = "sel",
					 .alg = DKIM_ALG_ED25519_SHA256, .key_id = "k" };
	CHECK(dkim_sign_message(&req, &signer, msg_text, strlen(msg_text), out, &error) == 0);
	buf_append_str(out, msg_text);
	dkim_keyring_destroy(&kr);
}

/* Verify msg through a over the loop; gives up after limit seconds. */
static struct done verify(struct event_base *base, struct dkim_dns_adapter *a,
			  const struct buf *msg, int limit)
{
	struct done d = { .base = base };
	struct dkim_verify *v = dkim_verify_create(NULL);
	struct timeval tv = { limit, 0 };
	struct event *deadline = evtimer_new(base, on_deadline, base);

	dkim_verify_feed(v, buf_cstr(msg), msg->len);
	d.finishing = true;
	dkim_verify_finish(v, dkim_dns_adapter_dns(a), on_done, &d);
	d.finishing = false;
	evtimer_add(deadline, &tv);
	if (!d.called)
		event_base_dispatch(base);
	event_free(deadline);
	dkim_verify_destroy(&v);
	return d;
}

static void raw_answer(void *qctx, const struct dkim_dns_answer *ans)
{
	(void)ans;
	(*(int *)qctx)++;
}

static void test_adapter(void)
{
	char *err = NULL;
	const char *error = NULL;
	struct config *cfg = config_parse_string(
		"hostname = \"mx.example.test\";\n"
		"dns = { mode = \"stub\"; timeout = 1;\n"
		"  stub = ( { zone = \"example.test\"; servers = [ \"127.0.0.1@1\" ]; } ); };\n",
		"test.conf", &err);
	CHECK(cfg != NULL);
	if (cfg == NULL) {
		free(err);
		return;
	}
	struct event_base *base = event_base_new();
	struct dns_resolver *r = dns_resolver_new(base, cfg, &error);
	CHECK(r != NULL);
	if (r == NULL) {
		config_free(&cfg);
		event_base_free(base);
		return;
	}
	struct spf_dns_adapter *sa = spf_dns_adapter_new(r);
	struct dkim_dns_adapter *a = dkim_dns_adapter_new(sa);
	struct buf msg;

	/* the key server never answers: temperror from the loop */
	buf_init(&msg, 1 << 16);
	sign_for("example.test", &msg);
	time_t start = time(NULL);
	struct done d = verify(base, a, &msg, 5);
	CHECK(d.called && !d.inside);
	CHECK(d.count == 1 && d.result[0] == DKIM_RESULT_TEMPERROR);
	CHECK(time(NULL) - start <= 3);
	CHECK(dkim_dns_adapter_pending(a) == 0);
	CHECK(spf_dns_adapter_pending(sa) == 0);
	buf_free(&msg);

	/* a name outside the stub zones: the resolver may not ask it */
	buf_init(&msg, 1 << 16);
	sign_for("elsewhere.example", &msg);
	d = verify(base, a, &msg, 5);
	CHECK(d.called && !d.inside);
	CHECK(d.count == 1 && d.result[0] == DKIM_RESULT_TEMPERROR);

	/* destroyed in flight: its lookup is cancelled, no callback */
	struct done d2 = { .base = base };
	struct dkim_verify *v = dkim_verify_create(NULL);
	dkim_verify_feed(v, buf_cstr(&msg), msg.len);
	dkim_verify_finish(v, dkim_dns_adapter_dns(a), on_done, &d2);
	CHECK(!d2.called);
	CHECK(dkim_dns_adapter_pending(a) == 1);
	CHECK(spf_dns_adapter_pending(sa) == 1);
	dkim_verify_destroy(&v);
	CHECK(dkim_dns_adapter_pending(a) == 0);
	CHECK(spf_dns_adapter_pending(sa) == 0);
	CHECK(dns_resolver_pending(r) == 0);
	buf_free(&msg);

	/* unsigned: no lookup, the answer at once */
	buf_init(&msg, 1 << 16);
	buf_append_str(&msg, msg_text);
	d = verify(base, a, &msg, 5);
	CHECK(d.called && d.inside && d.count == 0);
	buf_free(&msg);

	/* freeing the adapter cancels the questions still in flight */
	const struct dkim_dns *dd = dkim_dns_adapter_dns(a);
	int raw_calls = 0;
	dd->txt(dd->ctx, "a._domainkey.example.test", raw_answer, &raw_calls);
	dd->txt(dd->ctx, "b._domainkey.example.test", raw_answer, &raw_calls);
	CHECK(raw_calls == 0);
	CHECK(dkim_dns_adapter_pending(a) == 2);
	/* cancel by query context: both share one here */
	dd->cancel(dd->ctx, &raw_calls);
	CHECK(dkim_dns_adapter_pending(a) == 0);
	dd->txt(dd->ctx, "c._domainkey.example.test", raw_answer, &raw_calls);
	CHECK(dkim_dns_adapter_pending(a) == 1);
	dkim_dns_adapter_free(&a);
	CHECK(a == NULL);
	CHECK(spf_dns_adapter_pending(sa) == 0);
	CHECK(dns_resolver_pending(r) == 0);
	struct timeval tv = { 0, 300000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	CHECK(raw_calls == 0);
	CHECK(!d2.called);
	dkim_dns_adapter_free(&a);
	spf_dns_adapter_free(&sa);
	dns_resolver_free(&r);
	event_base_free(base);
	config_free(&cfg);
}

int main(void)
{
	RUN(test_adapter);
	return unit_summary("dkim-dns");
}
