/* Unit tests for the outbound queue's per-destination rate limits
 * (queue/rate-limit.c) and their configuration (queue.rate_limits,
 * queue.smarthost.tls in lib/config.c): rule matching by domain and by MX
 * pattern, fixed windows moved with the test clock (lib/clock), one
 * refusal report per window, a budget shared by the domains of one
 * provider, parking and wake-up times, the parked list's cap, and config
 * errors with their file:line. */
#include "unit.h"
#include "queue/rate-limit.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct config *parse(const char *text, char **error_r)
{
	char *error = NULL;
	struct config *cfg = config_parse_string(text, "/tmp/rl.conf", &error);

	if (error_r != NULL)
		*error_r = error;
	else
		free(error);
	return cfg;
}

static const char RULES[] =
	"hostname = \"mail.example.test\";\n"
	"queue = {\n"
	"  rate_limits = (\n"
	"    { domain = \"Gmail.COM\"; messages = 2; seconds = 10; },\n"
	"    { mx = \"*.outlook.com\"; messages = 3; seconds = 60; },\n"
	"    { mx = \"mx.exact.test\"; messages = 1; seconds = 5; }\n"
	"  );\n"
	"};\n";

static void test_mx_patterns(void)
{
	CHECK(queue_rate_mx_matches("*.outlook.com", "a.mail.protection.outlook.com"));
	CHECK(queue_rate_mx_matches("*.outlook.com", "MX1.Outlook.Com."));
	CHECK(!queue_rate_mx_matches("*.outlook.com", "outlook.com"));
	CHECK(!queue_rate_mx_matches("*.outlook.com", "evil-outlook.com"));
	CHECK(!queue_rate_mx_matches("*.outlook.com", "outlook.com.evil.test"));
	CHECK(queue_rate_mx_matches("mx.exact.test", "MX.exact.test."));
	CHECK(!queue_rate_mx_matches("mx.exact.test", "a.mx.exact.test"));
	CHECK(!queue_rate_mx_matches("mx.exact.test", "mx.exact.tes"));
}

static void test_config_and_match(void)
{
	char *error = NULL;
	struct config *cfg = parse(RULES, &error);
	const char *outlook[] = { "mx.other.test", "x.mail.protection.outlook.com." };
	const char *exact[] = { "mx.exact.test" };

	CHECK(cfg != NULL);
	if (cfg == NULL) {
		fprintf(stderr, "  %s\n", error);
		free(error);
		return;
	}
	CHECK(cfg->queue.rate_limit_count == 3);
	CHECK_STR(cfg->queue.rate_limit[0].domain, "gmail.com");
	CHECK(cfg->queue.rate_limit[0].mx == NULL);
	CHECK(cfg->queue.rate_limit[0].messages == 2 && cfg->queue.rate_limit[0].seconds == 10);
	CHECK_STR(cfg->queue.rate_limit[1].mx, "*.outlook.com");

	struct queue_rate *r = queue_rate_create(cfg->queue.rate_limit, cfg->queue.rate_limit_count);
	CHECK(queue_rate_match(r, "GMAIL.com", NULL, 0) == 0);
	CHECK(queue_rate_match(r, "gmail.com.evil", NULL, 0) == -1);
	CHECK(queue_rate_match(r, "contoso.test", NULL, 0) == -1);
	CHECK(queue_rate_match(r, "contoso.test", outlook, 2) == 1);
	CHECK(queue_rate_match(r, "contoso.test", outlook, 1) == -1);
	CHECK(queue_rate_match(r, "x.test", exact, 1) == 2);
	/* first rule in config order wins */
	CHECK(queue_rate_match(r, "gmail.com", outlook, 2) == 0);
	queue_rate_free(&r);
	CHECK(r == NULL);
	config_free(&cfg);
}

/* 2 messages per 10 s: two admitted, the third refused until the window
 * ends (reported once), then a new window; the test clock moves time. */
static void test_windows_with_clock(void)
{
	struct config *cfg = parse(RULES, NULL);
	struct queue_rate *r;
	time_t t0, until;
	bool first;

	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	r = queue_rate_create(cfg->queue.rate_limit, cfg->queue.rate_limit_count);
	t0 = clock_now();
	CHECK(queue_rate_take(r, 0, clock_now(), &until, &first) == 0);
	clock_advance(3);
	CHECK(queue_rate_take(r, 0, clock_now(), &until, &first) == 0);
	CHECK(queue_rate_take(r, 0, clock_now(), &until, &first) == 1);
	CHECK(until == t0 + 10 && first);
	clock_advance(6);   /* t0 + 9: still the same window, reported already */
	CHECK(queue_rate_take(r, 0, clock_now(), &until, &first) == 1);
	CHECK(until == t0 + 10 && !first);
	clock_advance(1);   /* t0 + 10: a new window */
	CHECK(queue_rate_take(r, 0, clock_now(), &until, &first) == 0);
	CHECK(queue_rate_take(r, 0, clock_now(), &until, &first) == 0);
	CHECK(queue_rate_take(r, 0, clock_now(), &until, &first) == 1);
	CHECK(until == t0 + 20 && first);
	/* an idle rule's next window starts with its next message */
	clock_advance(100);
	CHECK(queue_rate_take(r, 0, clock_now(), &until, &first) == 0);
	/* a clock set back starts a window too (no refusal for a year) */
	CHECK(queue_rate_take(r, 0, clock_now() - 1000, &until, &first) == 0);
	/* no rule: always admitted */
	CHECK(queue_rate_take(r, -1, clock_now(), &until, &first) == 0);
	CHECK(queue_rate_take(r, 99, clock_now(), &until, &first) == 0);
	queue_rate_free(&r);
	config_free(&cfg);
}

/* An mx rule's budget is shared by every domain it matches. */
static void test_shared_budget(void)
{
	struct config *cfg = parse(RULES, NULL);
	const char *hosts[] = { "mx1.outlook.com" };
	struct queue_rate *r;
	time_t until;
	bool first;
	int rule;

	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	r = queue_rate_create(cfg->queue.rate_limit, cfg->queue.rate_limit_count);
	const char *domains[] = { "a.test", "b.test", "c.test", "d.test" };
	for (int i = 0; i < 3; i++) {
		rule = queue_rate_match(r, domains[i], hosts, 1);
		CHECK(rule == 1);
		CHECK(queue_rate_take(r, rule, clock_now(), &until, &first) == 0);
	}
	rule = queue_rate_match(r, domains[3], hosts, 1);
	CHECK(queue_rate_take(r, rule, clock_now(), &until, &first) == 1);
	CHECK(until == clock_now() + 60);
	/* the gmail.com rule is untouched */
	CHECK(queue_rate_take(r, 0, clock_now(), &until, &first) == 0);
	queue_rate_free(&r);
	config_free(&cfg);
}

static void test_parking(void)
{
	struct queue_rate *r = queue_rate_create(NULL, 0);
	time_t now = clock_now();

	CHECK(!queue_rate_parked(r, "a.test", now));
	CHECK(queue_rate_next_wake(r, now) == 0);
	queue_rate_park(r, "a.test", now, now + 10);
	queue_rate_park(r, "B.test", now, now + 5);
	CHECK(queue_rate_parked(r, "A.TEST", now));
	CHECK(queue_rate_parked(r, "b.test", now + 4));
	CHECK(!queue_rate_parked(r, "b.test", now + 5));
	CHECK(!queue_rate_parked(r, "c.test", now));
	CHECK(queue_rate_next_wake(r, now) == now + 5);
	CHECK(queue_rate_next_wake(r, now + 5) == now + 10);
	CHECK(queue_rate_next_wake(r, now + 10) == 0);
	/* parking again extends, never shortens */
	queue_rate_park(r, "a.test", now, now + 3);
	CHECK(queue_rate_parked(r, "a.test", now + 9));
	queue_rate_park(r, "a.test", now, now + 20);
	CHECK(queue_rate_parked(r, "a.test", now + 19));
	/* an end in the past parks nothing */
	queue_rate_park(r, "d.test", now, now);
	CHECK(!queue_rate_parked(r, "d.test", now - 1));
	/* the list is capped; expired entries make room */
	char name[32];
	for (int i = 0; i < QUEUE_RATE_PARKED_MAX + 10; i++) {
		snprintf(name, sizeof(name), "d%d.test", i);
		queue_rate_park(r, name, now, now + 1);
	}
	CHECK(queue_rate_parked(r, "d0.test", now));
	snprintf(name, sizeof(name), "d%d.test", QUEUE_RATE_PARKED_MAX + 5);
	CHECK(!queue_rate_parked(r, name, now));
	queue_rate_park(r, name, now + 2, now + 7);   /* the others expired */
	CHECK(queue_rate_parked(r, name, now + 2));
	CHECK(!queue_rate_parked(r, "d0.test", now + 2));
	queue_rate_free(&r);
	queue_rate_free(&r);   /* NULL is fine */
}

static void expect_error(const char *text, const char *want)
{
	char *error = NULL;
	struct config *cfg = parse(text, &error);

	CHECK(cfg == NULL);
	CHECK(error != NULL && strstr(error, want) != NULL);
	if (error != NULL && strstr(error, want) == NULL)
		fprintf(stderr, "  got: %s\n  expected: %s\n", error, want);
	free(error);
	config_free(&cfg);
}

static void test_config_errors(void)
{
	expect_error("queue = {\n rate_limits = ( { domain = \"a.test\"; messages = 1; } );\n};",
		     "/tmp/rl.conf:2: a queue.rate_limits entry needs messages = N; and seconds");
	expect_error("queue = {\n rate_limits = (\n { domain = \"a.test\"; mx = \"*.b.test\";"
		     " messages = 1; seconds = 1; } );\n};",
		     "/tmp/rl.conf:3: a queue.rate_limits entry needs either domain");
	expect_error("queue = {\n rate_limits = ( { messages = 1; seconds = 1; } );\n};",
		     "rl.conf:2: a queue.rate_limits entry needs either domain");
	expect_error("queue = {\n rate_limits = (\n { domain = \"a.test\";\n messages = 0;"
		     " seconds = 1; } );\n};", "/tmp/rl.conf:4: queue.rate_limits messages = 0 is "
		     "out of range");
	expect_error("queue = {\n rate_limits = ( { domain = \"a.test\"; messages = 1;"
		     " seconds = 90000; } );\n};", "seconds = 90000 is out of range");
	expect_error("queue = {\n rate_limits = ( { domain = \"a test\"; messages = 1;"
		     " seconds = 1; } );\n};", "domain \"a test\" is not a domain name");
	expect_error("queue = {\n rate_limits = ( { mx = \"*\"; messages = 1;"
		     " seconds = 1; } );\n};", "mx \"*\" is not a host name");
	expect_error("queue = {\n rate_limits = ( { mx = \"a.*.test\"; messages = 1;"
		     " seconds = 1; } );\n};", "is not a host name");
	expect_error("queue = {\n rate_limits = ( { domain = \"a.test\"; messages = \"1\";"
		     " seconds = 1; } );\n};", "must be a whole number");
	expect_error("queue = {\n rate_limits = ( { domain = \"a.test\"; messages = 1;"
		     " seconds = 1; burst = 2; } );\n};", "unknown setting 'burst'");
	expect_error("queue = {\n rate_limits = { domain = \"a.test\"; };\n};",
		     "queue.rate_limits must be a list of groups");
	expect_error("queue = {\n smarthost = {\n host = \"relay.test\";\n tls = \"ssl\"; };\n};",
		     "/tmp/rl.conf:4: smarthost.tls = \"ssl\" is not known (expected \"starttls\" "
		     "or \"implicit\")");
}

static void test_smarthost_tls(void)
{
	static const struct { const char *conf; bool implicit; } cases[] = {
		{ "queue = { smarthost = { host = \"r.test\"; }; };", false },
		{ "queue = { smarthost = { host = \"r.test\"; port = 465; }; };", true },
		{ "queue = { smarthost = { host = \"r.test\"; port = 465; tls = \"starttls\"; }; };",
		  false },
		{ "queue = { smarthost = { host = \"r.test\"; port = 2465; tls = \"implicit\"; }; };",
		  true },
		{ "queue = { smarthost = { tls = \"implicit\"; host = \"r.test\"; }; };", true },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *error = NULL, *text = xasprintf("hostname = \"m.test\";\n%s", cases[i].conf);
		struct config *cfg = parse(text, &error);

		free(text);
		CHECK(cfg != NULL);
		if (cfg == NULL) {
			fprintf(stderr, "  %s\n", error);
			free(error);
			continue;
		}
		CHECK(cfg->queue.smarthost.implicit_tls == cases[i].implicit);
		config_free(&cfg);
	}
}

int main(void)
{
	RUN(test_mx_patterns);
	RUN(test_config_and_match);
	RUN(test_windows_with_clock);
	RUN(test_shared_budget);
	RUN(test_parking);
	RUN(test_config_errors);
	RUN(test_smarthost_tls);
	return unit_summary("queue-rate");
}
