/* Per-destination rate limits (rate-limit.h).
 *
 * Invariants:
 *  - One state per rule: a rule's budget is shared by every domain it
 *    matches (all the domains an mx rule's provider hosts).
 *  - A window starts with the first message taken after the previous one
 *    ended, and admits at most the rule's messages; count <= messages.
 *  - The parked list holds at most QUEUE_RATE_PARKED_MAX domains, so
 *    recipients' domains cannot grow it without bound.
 * Times are whatever the caller passes (lib/clock), so tests move them. */
#include "queue/rate-limit.h"

#include "lib/buf.h"
#include "lib/config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct rate_state {
	time_t start;           /* the current window's start (0: none yet) */
	unsigned count;         /* messages taken in it */
	bool refused;           /* a refusal was reported in this window */
};

struct parked {
	char *domain;
	time_t until;
};

struct queue_rate {
	const struct config_rate_limit *rules;
	unsigned count;
	struct rate_state *state;
	struct parked *parked;
	size_t nparked, alloc;
};

struct queue_rate *queue_rate_create(const struct config_rate_limit *rules, unsigned count)
{
	struct queue_rate *r = xcalloc(1, sizeof(*r));

	r->rules = rules;
	r->count = count;
	r->state = xcalloc(count ? count : 1, sizeof(*r->state));
	return r;
}

void queue_rate_free(struct queue_rate **rp)
{
	struct queue_rate *r = *rp;

	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nparked; i++)
		free(r->parked[i].domain);
	free(r->parked);
	free(r->state);
	free(r);
	*rp = NULL;
}

bool queue_rate_mx_matches(const char *pattern, const char *host)
{
	size_t hl = strlen(host), pl;

	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	if (strncmp(pattern, "*.", 2) == 0) {
		pl = strlen(pattern + 1);   /* ".example.com" */
		return hl > pl && strncasecmp(host + hl - pl, pattern + 1, pl) == 0;
	}
	pl = strlen(pattern);
	return hl == pl && strncasecmp(host, pattern, pl) == 0;
}

int queue_rate_match(const struct queue_rate *r, const char *domain, const char *const *hosts,
		     size_t nhosts)
{
	for (unsigned i = 0; i < r->count; i++) {
		const struct config_rate_limit *rule = &r->rules[i];
		if (rule->domain != NULL) {
			if (strcasecmp(rule->domain, domain) == 0)
				return (int)i;
			continue;
		}
		for (size_t h = 0; h < nhosts; h++)
			if (rule->mx != NULL && queue_rate_mx_matches(rule->mx, hosts[h]))
				return (int)i;
	}
	return -1;
}

int queue_rate_take(struct queue_rate *r, int rule, time_t now, time_t *until_r, bool *first_r)
{
	struct rate_state *s;
	const struct config_rate_limit *c;

	*until_r = 0;
	*first_r = false;
	if (rule < 0 || (unsigned)rule >= r->count)
		return 0;
	s = &r->state[rule];
	c = &r->rules[rule];
	/* a clock set back (or a first message) starts a new window too */
	if (s->start == 0 || now >= s->start + (time_t)c->seconds || now < s->start) {
		s->start = now;
		s->count = 0;
		s->refused = false;
	}
	if (s->count < c->messages) {
		s->count++;
		return 0;
	}
	*until_r = s->start + (time_t)c->seconds;
	*first_r = !s->refused;
	s->refused = true;
	return 1;
}

static void parked_drop_expired(struct queue_rate *r, time_t now)
{
	size_t k = 0;

	for (size_t i = 0; i < r->nparked; i++) {
		if (r->parked[i].until > now)
			r->parked[k++] = r->parked[i];
		else
			free(r->parked[i].domain);
	}
	r->nparked = k;
}

void queue_rate_park(struct queue_rate *r, const char *domain, time_t now, time_t until)
{
	parked_drop_expired(r, now);
	for (size_t i = 0; i < r->nparked; i++) {
		if (strcasecmp(r->parked[i].domain, domain) == 0) {
			if (until > r->parked[i].until)
				r->parked[i].until = until;
			return;
		}
	}
	if (r->nparked >= QUEUE_RATE_PARKED_MAX || until <= now)
		return;
	if (r->nparked == r->alloc) {
		r->alloc = r->alloc ? r->alloc * 2 : 16;
		r->parked = xrealloc(r->parked, r->alloc * sizeof(*r->parked));
	}
	r->parked[r->nparked].domain = xstrdup(domain);
	r->parked[r->nparked].until = until;
	r->nparked++;
}

bool queue_rate_parked(const struct queue_rate *r, const char *domain, time_t now)
{
	for (size_t i = 0; i < r->nparked; i++)
		if (r->parked[i].until > now && strcasecmp(r->parked[i].domain, domain) == 0)
			return true;
	return false;
}

time_t queue_rate_next_wake(const struct queue_rate *r, time_t now)
{
	time_t t = 0;

	for (size_t i = 0; i < r->nparked; i++)
		if (r->parked[i].until > now && (t == 0 || r->parked[i].until < t))
			t = r->parked[i].until;
	return t;
}
