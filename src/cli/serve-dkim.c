/* DKIM in the worker: the signing hook's signer over the store's keys, and
 * the key rotation check.
 *
 * Signing: the hook (queue/sign-hook.h) hands over the sender's domain and
 * the message; mailauth/dkim-manage.c signs with every active key of that
 * domain, reloading keys when `tern dkim` changed them.  A domain without
 * keys gets no signature and no error.
 *
 * Rotation (docs/dkim.md): at start and every dkim.check_interval seconds,
 * each pending key's record SELECTOR._domainkey.DOMAIN is looked up through
 * dns/; when it carries the key, the key becomes active and the key it
 * replaces retiring for dkim.rotation_grace seconds; retiring keys past
 * that time become retired.  A failed or missing lookup just waits for the
 * next round.  Everything runs on the first loop; writes go through the
 * commit thread with callbacks that need no state (they only log).
 * RFC 6376 section 3.6.2 (key lookup), section 3.1 (selectors). */
#include "cli/serve-dkim.h"

#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "mailauth/dkim-manage.h"
#include "queue/sign-hook.h"
#include "store/dkim-keys.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define DKIM_CHECKS_MAX 1000    /* pending keys looked up in one round */

struct check {
	struct check *next;
	struct dns_query *q;
	int64_t id;
	char *name;                 /* SELECTOR._domainkey.DOMAIN */
	char *public_key;
	enum dkim_key_type type;
};

static struct {
	struct event_base *base;
	struct store *store;
	struct dns_resolver *dns;
	struct dkim_store_signer *signer;
	struct event *timer;
	struct check *checks;
	unsigned grace;
	bool hooked;
} dk;

static const char *const dkim_fields[] = { "DKIM-Signature", NULL };

static int hook_sign(void *ctx, const struct sign_hook_request *req, struct buf *out,
		     const char **error_r)
{
	int n = dkim_store_signer_sign(ctx, req->domain, req->data, req->len, out, error_r);

	if (n > 0)
		log_info("dkim", "event=signed id=%s domain=%s signatures=%d resign=%s",
			 req->log_id != NULL ? req->log_id : "", log_quote(req->domain), n,
			 req->resign ? "yes" : "no");
	return n < 0 ? -1 : 0;
}

static int hook_seal(void *ctx, const char *domain, const char *data, size_t len,
		     const char *auth_results, struct buf *out, const char **error_r)
{
	int n = dkim_store_signer_seal(ctx, domain, data, len, auth_results, out, error_r);

	if (n > 0)
		log_info("dkim", "event=arc_sealed domain=%s", log_quote(domain));
	return n < 0 ? -1 : 0;
}

static void check_free(struct check *c)
{
	dns_cancel(&c->q);
	free(c->name);
	free(c->public_key);
	free(c);
}

static void unlink_check(struct check *c)
{
	for (struct check **p = &dk.checks; *p != NULL; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			return;
		}
	}
}

static void activated(void *ctx, const struct store_write_result *r)
{
	int64_t id = (int64_t)(intptr_t)ctx;

	if (r->status < 0)
		log_error("dkim", "event=activate_failed id=%lld error=%s", (long long)id,
			  log_quote(r->error));
	else if (r->count > 0)
		log_info("dkim", "event=key_activated id=%lld reason=dns_record_seen",
			 (long long)id);
}

static void retired(void *ctx, const struct store_write_result *r)
{
	(void)ctx;
	if (r->status < 0)
		log_error("dkim", "event=retire_failed error=%s", log_quote(r->error));
	else if (r->count > 0)
		log_info("dkim", "event=keys_retired count=%zu", r->count);
}

static void on_txt(const struct dns_txt_result *res, void *arg)
{
	struct check *c = arg;
	bool seen = false;

	c->q = NULL;
	for (size_t i = 0; res->status == DNS_OK && i < res->count && !seen; i++)
		seen = dkim_record_matches(res->records[i].text, res->records[i].len, c->type,
					   c->public_key);
	log_info("dkim", "event=pending_checked id=%lld name=%s dns=%s published=%s",
		 (long long)c->id, log_quote(c->name), dns_status_name(res->status),
		 seen ? "yes" : "no");
	if (seen) {
		time_t now = clock_now();
		if (store_dkim_key_activate_async(dk.store, dk.base, c->id, now,
						  now + (time_t)dk.grace, activated,
						  (void *)(intptr_t)c->id) < 0)
			log_error("dkim", "event=activate_failed id=%lld error=%s",
				  (long long)c->id, "store refused");
	}
	unlink_check(c);
	check_free(c);
}

static int pending_key(void *ctx, const struct store_dkim_key *k)
{
	unsigned *n = ctx;
	struct check *c;
	enum dkim_key_type type;

	if (k->state != STORE_DKIM_PENDING ||
	    dkim_key_type_from_algorithm(k->algorithm, &type) < 0)
		return 0;
	if (++*n > DKIM_CHECKS_MAX)
		return 1;
	c = xcalloc(1, sizeof(*c));
	c->id = k->id;
	c->type = type;
	c->name = xasprintf("%s._domainkey.%s", k->selector, k->domain);
	c->public_key = xstrdup(k->public_key);
	c->next = dk.checks;
	dk.checks = c;
	c->q = dns_txt(dk.dns, c->name, on_txt, c);
	return 0;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
	const char *error = NULL;
	unsigned n = 0;

	if (store_dkim_keys_retire_due_async(dk.store, dk.base, clock_now(), retired, NULL) < 0)
		log_error("dkim", "event=retire_failed error=%s", "store refused");
	if (dk.dns == NULL || dk.checks != NULL)
		return;     /* the previous round is still waiting for answers */
	if (store_dkim_keys_list(dk.store, NULL, pending_key, &n, &error) < 0)
		log_error("dkim", "event=pending_list_failed error=%s", log_quote(error));
}

void serve_dkim_start(struct event_base *base, struct store *store, struct dns_resolver *dns,
		      const struct config *cfg)
{
	struct timeval now = { 0, 0 };
	struct timeval every = { (time_t)cfg->dkim.check_interval, 0 };
	const char *error = NULL;

	memset(&dk, 0, sizeof(dk));
	dk.base = base;
	dk.store = store;
	dk.dns = dns;
	dk.grace = cfg->dkim.rotation_grace;
	if (cfg->dkim.sign) {
		dk.signer = dkim_store_signer_create(store);
		struct sign_hook h = { .sign = hook_sign, .ctx = dk.signer, .fields = dkim_fields,
				       .seal = hook_seal };
		if (sign_hook_set(&h, &error) < 0)
			log_error("dkim", "event=hook_failed error=%s", log_quote(error));
		else
			dk.hooked = true;
	}
	dk.timer = event_new(base, -1, EV_PERSIST, tick, NULL);
	event_add(dk.timer, &every);
	event_base_once(base, -1, EV_TIMEOUT, tick, NULL, &now);
}

void serve_dkim_stop(void)
{
	const char *error = NULL;

	if (dk.hooked)
		sign_hook_set(NULL, &error);
	if (dk.timer != NULL)
		event_free(dk.timer);
	while (dk.checks != NULL) {
		struct check *c = dk.checks;
		dk.checks = c->next;
		check_free(c);
	}
	dkim_store_signer_destroy(&dk.signer);
	memset(&dk, 0, sizeof(dk));
}
