/* Per-destination rate limits for the outbound queue (queue.rate_limits,
 * docs/delivery.md): an administrator caps how many messages go to one
 * large provider per time window.  A rule names a recipient domain, or an
 * MX host pattern so that every domain a provider hosts shares one budget.
 *
 * A rule's budget is a fixed window: the first message after a window
 * ended starts a new one of `seconds`, which admits `messages` messages.
 * A destination whose budget is spent is parked until its window ends:
 * the scheduler does not start jobs for it, so its recipients wait with
 * no attempt counted, no error and no DSN.
 *
 * Pure bookkeeping on times the caller passes (lib/clock's clock_now()),
 * owned by one event loop; nothing here blocks or does I/O. */
#ifndef TERN_QUEUE_RATE_LIMIT_H
#define TERN_QUEUE_RATE_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct config_rate_limit;
struct queue_rate;

#define QUEUE_RATE_PARKED_MAX 10000     /* parked domains remembered at once */

/* A limiter for rules[0..count) (the config's queue.rate_limit; the rules
 * must outlive the limiter).  Never fails. */
struct queue_rate *queue_rate_create(const struct config_rate_limit *rules, unsigned count);
/* Free it; *r = NULL (NULL is fine). */
void queue_rate_free(struct queue_rate **r);

/* Does MX host name host (a trailing dot allowed, any case) match pattern
 * (lowercase)?  "*.example.com" matches any name ending in
 * ".example.com" (one label or more before it, unlike MTA-STS); any other
 * pattern matches that exact name. */
bool queue_rate_mx_matches(const char *pattern, const char *host);

/* The first rule, in config order, that applies to a delivery to domain
 * whose next hops are hosts[0..nhosts) (MX hosts, a route's or the
 * smarthost's host; nhosts 0 when not known yet): a domain rule naming
 * domain (any case) or an mx rule matching one of hosts.  Its index, or
 * -1 when no rule applies. */
int queue_rate_match(const struct queue_rate *r, const char *domain, const char *const *hosts,
		     size_t nhosts);

/* Take one message from rule's budget at now.  0: admitted.  1: the
 * budget is spent until *until_r (the window's end); *first_r is true
 * for the first refusal in this window (the caller logs it once). */
int queue_rate_take(struct queue_rate *r, int rule, time_t now, time_t *until_r,
		    bool *first_r);

/* Park domain at now until `until`: queue_rate_parked() says so until
 * then.  Entries expired at now are dropped first; past QUEUE_RATE_PARKED_MAX entries
 * the domain is not remembered (its next job is refused by
 * queue_rate_take instead, which costs a DNS lookup, nothing more). */
void queue_rate_park(struct queue_rate *r, const char *domain, time_t now, time_t until);

/* Is domain (any case) parked at now? */
bool queue_rate_parked(const struct queue_rate *r, const char *domain, time_t now);

/* The earliest end of a parking after now, or 0 when none. */
time_t queue_rate_next_wake(const struct queue_rate *r, time_t now);

#endif
