/* Collecting outbound TLS results for TLS reports (RFC 8460 4): the
 * scheduler notes each attempt's outcome; the collector adds equal
 * outcomes up in memory and hands them to the store's commit thread
 * (store_tlsrpt_add) every flush_seconds, or at once when
 * TLSRPT_PENDING_MAX distinct entries are waiting.  One commit request
 * per flush, whatever the number of deliveries: the event loop never
 * waits for the store.
 *
 * Invariants: an entry's strings are copies with CR and LF replaced by
 * spaces and cut to STORE_TLSRPT_TEXT_MAX bytes (the policy keeps its LF
 * line breaks); counts of a failed flush are logged and dropped (a report
 * is statistics, not mail). */
#include "queue/tlsrpt.h"

#include "lib/clock.h"
#include "lib/log.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define TLSRPT_PENDING_MAX 1000

struct tlsrpt_collector {
	struct event_base *base;
	struct store *store;
	struct event *timer;
	struct store_tls_result *v;
	size_t n, alloc;
};

static char *clean(const char *s, bool keep_lf)
{
	size_t n;
	char *c;

	if (s == NULL)
		s = "";
	n = strlen(s);
	if (n > STORE_TLSRPT_TEXT_MAX)
		n = STORE_TLSRPT_TEXT_MAX;
	c = xstrndup(s, n);
	for (char *p = c; *p != '\0'; p++)
		if (*p == '\r' || (*p == '\n' && !keep_lf))
			*p = ' ';
	return c;
}

static void entry_clear(struct store_tls_result *e)
{
	free((char *)e->policy_domain);
	free((char *)e->policy_type);
	free((char *)e->policy);
	free((char *)e->mx_host);
	free((char *)e->receiving_ip);
	free((char *)e->result_type);
	free((char *)e->detail);
}

static void entries_free(struct store_tls_result *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		entry_clear(&v[i]);
	free(v);
}

static void flushed(void *ctx, int status, const char *error)
{
	size_t n = (size_t)(uintptr_t)ctx;

	if (status < 0)
		log_error("tlsrpt", "event=collect_failed entries=%zu error=%s", n,
			  log_quote(error ? error : ""));
}

static void flush_to(struct tlsrpt_collector *c, struct event_base *base)
{
	if (c->n == 0)
		return;
	if (store_tlsrpt_add(c->store, base, c->v, c->n, flushed, (void *)(uintptr_t)c->n) < 0)
		log_error("tlsrpt", "event=collect_failed entries=%zu error=%s", c->n,
			  "the store refused the TLS results");
	entries_free(c->v, c->n);
	c->v = NULL;
	c->n = c->alloc = 0;
}

void tlsrpt_collector_flush(struct tlsrpt_collector *c)
{
	if (c != NULL)
		flush_to(c, c->base);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what;
	tlsrpt_collector_flush(arg);
}

struct tlsrpt_collector *tlsrpt_collector_new(struct event_base *base, struct store *store,
					      unsigned flush_seconds)
{
	struct tlsrpt_collector *c = xcalloc(1, sizeof(*c));
	struct timeval tv = { flush_seconds > 0 ? flush_seconds : 1, 0 };

	c->base = base;
	c->store = store;
	c->timer = event_new(base, -1, EV_PERSIST, on_timer, c);
	event_add(c->timer, &tv);
	return c;
}

void tlsrpt_collector_free(struct tlsrpt_collector **cp)
{
	struct tlsrpt_collector *c = *cp;

	if (c == NULL)
		return;
	event_free(c->timer);
	flush_to(c, NULL);   /* completes on the commit thread: no loop needed */
	free(c);
	*cp = NULL;
}

void tlsrpt_note(struct tlsrpt_collector *c, const char *policy_domain,
		 const char *policy_type, const char *policy, const char *mx_host,
		 const char *receiving_ip, const char *result_type, const char *detail)
{
	struct store_tls_result e;
	int64_t day = (int64_t)(clock_now() / 86400);

	if (c == NULL || policy_domain == NULL || policy_domain[0] == '\0')
		return;
	e = (struct store_tls_result){
		.day = day,
		.policy_domain = clean(policy_domain, false),
		.policy_type = clean(policy_type, false),
		.policy = clean(policy, true),
		.mx_host = clean(mx_host, false),
		.receiving_ip = clean(receiving_ip, false),
		.result_type = clean(result_type, false),
		.detail = clean(detail, false),
		.count = 1,
	};
	for (char *p = (char *)e.policy_domain; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	for (char *p = (char *)e.mx_host; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	log_info("tlsrpt", "event=tls_result domain=%s policy=%s mx=%s ip=%s result=%s",
		 log_quote(e.policy_domain), e.policy_type, log_quote(e.mx_host),
		 log_quote(e.receiving_ip), e.result_type[0] ? e.result_type : "success");
	for (size_t i = 0; i < c->n; i++) {
		struct store_tls_result *o = &c->v[i];
		if (o->day == e.day && strcmp(o->policy_domain, e.policy_domain) == 0 &&
		    strcmp(o->policy_type, e.policy_type) == 0 &&
		    strcmp(o->policy, e.policy) == 0 && strcmp(o->mx_host, e.mx_host) == 0 &&
		    strcmp(o->receiving_ip, e.receiving_ip) == 0 &&
		    strcmp(o->result_type, e.result_type) == 0) {
			o->count++;
			entry_clear(&e);
			return;
		}
	}
	if (c->n == c->alloc) {
		c->alloc = c->alloc ? c->alloc * 2 : 16;
		c->v = xrealloc(c->v, c->alloc * sizeof(*c->v));
	}
	c->v[c->n++] = e;
	if (c->n >= TLSRPT_PENDING_MAX)
		tlsrpt_collector_flush(c);
}
