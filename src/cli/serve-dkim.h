/* DKIM in the worker (serve-dkim.c): the signer registered with the
 * signing hook, and the periodic check that activates pending keys once
 * their DNS record is visible and retires replaced keys after their grace
 * period. */
#ifndef TERN_CLI_SERVE_DKIM_H
#define TERN_CLI_SERVE_DKIM_H

struct config;
struct dns_resolver;
struct event_base;
struct store;

/* At worker start, before any other thread runs: register the signer
 * (unless cfg->dkim.sign is false) and start the key check on base (now,
 * then every cfg->dkim.check_interval seconds) using dns (may be NULL:
 * no DNS checks, retirement only). */
void serve_dkim_start(struct event_base *base, struct store *store, struct dns_resolver *dns,
		      const struct config *cfg);
/* After every thread stopped: unregister and free (before the store and
 * the resolver are closed). */
void serve_dkim_stop(void);

#endif
