/* Unit tests for the resolver's configuration (the dns group of tern.conf)
 * and for src/dns/resolver.c's contract without any network: callbacks
 * never run inside the lookup call, names outside the stub zones fail at
 * once, cancelled queries never call back, the deadline is kept, and
 * freeing the resolver with queries in flight is clean.  The stub server
 * is a closed loopback port, so nothing is ever sent off the machine. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns/dns.h"
#include "lib/config.h"
#include "lib/log.h"
#include "unit.h"

static struct config *parse(const char *text, char **error_r)
{
	return config_parse_string(text, "test.conf", error_r);
}

static void test_config(void)
{
	struct config *cfg;
	char *err = NULL;

	cfg = parse("hostname = \"mx.example.test\";\n", &err);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_STR(cfg->dns.mode, "system");
		CHECK(cfg->dns.dnssec);
		CHECK(cfg->dns.timeout == 10);
		CHECK(cfg->dns.trust_anchor_file == NULL);
		config_free(&cfg);
	}
	cfg = parse("hostname = \"mx.example.test\";\n"
		    "dns = {\n"
		    "  mode = \"stub\";\n"
		    "  stub = ( { zone = \"example.test\"; servers = [ \"127.0.0.1@5353\", \"::1\" ]; },\n"
		    "           { zone = \".\"; servers = [ \"127.0.0.2\" ]; } );\n"
		    "  trust_anchor_file = \"keys/anchor.key\";\n"
		    "  timeout = 3;\n"
		    "  dnssec = false;\n"
		    "};\n", &err);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_STR(cfg->dns.mode, "stub");
		CHECK(cfg->dns.stub_count == 2);
		CHECK_STR(cfg->dns.stub[0].zone, "example.test");
		CHECK(cfg->dns.stub[0].server_count == 2);
		CHECK_STR(cfg->dns.stub[0].servers[1], "::1");
		CHECK_STR(cfg->dns.stub[1].zone, ".");
		CHECK(cfg->dns.timeout == 3);
		CHECK(!cfg->dns.dnssec);
		CHECK(cfg->dns.trust_anchor_file != NULL &&
		      cfg->dns.trust_anchor_file[0] == '/' &&
		      strstr(cfg->dns.trust_anchor_file, "/keys/anchor.key") != NULL);
		config_free(&cfg);
	}
	cfg = parse("hostname = \"mx.example.test\";\n"
		    "dns = { mode = \"upstream\"; upstream = [ \"9.9.9.9\", \"127.0.0.1@53\" ]; };\n",
		    &err);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK(cfg->dns.upstream_count == 2);
		CHECK_STR(cfg->dns.upstream[1], "127.0.0.1@53");
		config_free(&cfg);
	}

	/* errors name the line */
	static const struct {
		const char *text;
		const char *want;
	} bad[] = {
		{ "dns = {\n  mode = \"stub\";\n};\n", "test.conf:2:" },
		{ "dns = {\n  mode = \"upstream\";\n};\n", "needs dns.upstream" },
		{ "dns = {\n  mode = \"recursive\";\n};\n", "test.conf:3: dns.mode" },
		{ "dns = {\n  upstream = [ \"127.0.0.1@99999\" ];\n};\n", "test.conf:3:" },
		{ "dns = {\n  upstream = [ \"dns.example\" ];\n};\n", "not an IP address" },
		{ "dns = {\n  stub = ( { zone = \"a..b\"; servers = [ \"127.0.0.1\" ]; } );\n};\n",
		  "not a domain name" },
		{ "dns = {\n  stub = ( { zone = \"a\"; servers = [ ]; } );\n};\n", "is empty" },
		{ "dns = {\n  stub = ( { zone = \"a\"; address = \"127.0.0.1\"; } );\n};\n",
		  "unknown setting 'address'" },
		{ "dns = {\n  stub = [ \"a\" ];\n};\n", "must be a list of groups" },
		{ "dns = {\n  timeout = 0;\n};\n", "out of range" },
		{ "dns = {\n  colour = 1;\n};\n", "unknown setting 'colour' in group 'dns'" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *text = xasprintf("hostname = \"mx.example.test\";\n%s", bad[i].text);
		err = NULL;
		cfg = parse(text, &err);
		CHECK(cfg == NULL);
		CHECK(err != NULL && strstr(err, bad[i].want) != NULL);
		if (err == NULL || strstr(err, bad[i].want) == NULL)
			fprintf(stderr, "  case %zu: got \"%s\"\n", i, err ? err : "(null)");
		free(err);
		config_free(&cfg);
		free(text);
	}
}

struct seen {
	int calls;
	enum dns_status status;
	char error[256];
};

static void on_mx(const struct dns_mx_result *res, void *ctx)
{
	struct seen *s = ctx;
	s->calls++;
	s->status = res->status;
	snprintf(s->error, sizeof(s->error), "%s", res->error != NULL ? res->error : "");
}

static void on_addr(const struct dns_addr_result *res, void *ctx)
{
	struct seen *s = ctx;
	s->calls++;
	s->status = res->status;
}

static void on_txt(const struct dns_txt_result *res, void *ctx)
{
	struct seen *s = ctx;
	s->calls++;
	s->status = res->status;
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopexit(arg, NULL);
}

static void run_for(struct event_base *base, double seconds)
{
	struct timeval tv = { (time_t)seconds, (suseconds_t)((seconds - (long)seconds) * 1e6) };
	struct event *ev = evtimer_new(base, on_stop, base);
	evtimer_add(ev, &tv);
	event_base_dispatch(base);
	event_free(ev);
}

static void test_resolver(void)
{
	struct config *cfg;
	char *err = NULL;
	const char *error = NULL;
	struct event_base *base = event_base_new();
	struct dns_resolver *r;

	/* port 1 on loopback: nothing listens, nothing leaves the machine */
	cfg = parse("hostname = \"mx.example.test\";\n"
		    "dns = { mode = \"stub\"; timeout = 1;\n"
		    "  stub = ( { zone = \"example.test\"; servers = [ \"127.0.0.1@1\" ]; } ); };\n",
		    &err);
	CHECK(cfg != NULL);
	if (cfg == NULL) {
		free(err);
		event_base_free(base);
		return;
	}
	r = dns_resolver_new(base, cfg, &error);
	CHECK(r != NULL);
	if (r == NULL) {
		config_free(&cfg);
		event_base_free(base);
		return;
	}

	/* outside the stub zones: refused, but only from the loop */
	struct seen outside = { 0 };
	struct dns_query *q = dns_mx(r, "example.org", on_mx, &outside);
	CHECK(q != NULL);
	CHECK(outside.calls == 0);
	CHECK(dns_resolver_pending(r) == 1);
	run_for(base, 0.2);
	CHECK(outside.calls == 1);
	CHECK(outside.status == DNS_TEMPFAIL);
	CHECK(strstr(outside.error, "outside") != NULL);
	CHECK(dns_resolver_pending(r) == 0);

	/* a name DNS cannot hold (a 70-octet label) does not exist */
	struct seen invalid = { 0 };
	char *longname = xasprintf("%070d.example.test", 0);
	dns_mx(r, longname, on_mx, &invalid);
	free(longname);
	CHECK(invalid.calls == 0);
	run_for(base, 0.2);
	CHECK(invalid.calls == 1);
	CHECK(invalid.status == DNS_NXDOMAIN);

	/* a cancelled query never calls back; another one ends by the deadline */
	struct seen cancelled = { 0 }, timed = { 0 }, addr = { 0 };
	q = dns_mx(r, "mail.example.test", on_mx, &cancelled);
	struct dns_query *q2 = dns_mx(r, "other.example.test", on_mx, &timed);
	struct dns_query *q3 = dns_addresses(r, "host.example.test", DNS_ADDR_V6_FIRST, on_addr,
					     &addr);
	CHECK(q2 != NULL && q3 != NULL);
	CHECK(dns_resolver_pending(r) == 3);
	dns_cancel(&q);
	CHECK(q == NULL);
	dns_cancel(&q);          /* NULL is ignored */
	CHECK(dns_resolver_pending(r) == 2);
	time_t start = time(NULL);
	run_for(base, 2.5);
	CHECK(cancelled.calls == 0);
	CHECK(timed.calls == 1);
	CHECK(timed.status == DNS_TEMPFAIL);
	CHECK(addr.calls == 1);
	CHECK(addr.status == DNS_TEMPFAIL);
	CHECK(time(NULL) - start <= 3);
	CHECK(dns_resolver_pending(r) == 0);

	/* freeing with queries in flight: no callback, nothing leaks */
	struct seen left = { 0 };
	dns_txt(r, "txt.example.test", on_txt, &left);
	dns_mx(r, "example.org", on_mx, &left);
	dns_resolver_free(&r);
	CHECK(r == NULL);
	run_for(base, 0.1);
	CHECK(left.calls == 0);

	/* a trust anchor file that does not exist is a clear error */
	config_free(&cfg);
	cfg = parse("hostname = \"mx.example.test\";\n"
		    "dns = { mode = \"stub\"; trust_anchor_file = \"/nonexistent/anchor.key\";\n"
		    "  stub = ( { zone = \"example.test\"; servers = [ \"127.0.0.1@1\" ]; } ); };\n",
		    &err);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		error = NULL;
		r = dns_resolver_new(base, cfg, &error);
		CHECK(r == NULL);
		CHECK(error != NULL && strstr(error, "trust anchor") != NULL);
		dns_resolver_free(&r);
	}
	config_free(&cfg);
	event_base_free(base);
}

static void on_ptr(const struct dns_ptr_result *res, void *ctx)
{
	struct seen *s = ctx;
	s->calls++;
	s->status = res->status;
	snprintf(s->error, sizeof(s->error), "%s", res->error != NULL ? res->error : "");
}

/* dns_ptr() and dns_mx_explicit() keep the same contract: never called
 * back inside the call, names outside the stub zones refused from the
 * loop, the deadline kept, cancellation silent. */
static void test_ptr_and_explicit_mx(void)
{
	char *err = NULL;
	const char *error = NULL;
	struct event_base *base = event_base_new();
	struct config *cfg = parse("hostname = \"mx.example.test\";\n"
				   "dns = { mode = \"stub\"; timeout = 1; stub = (\n"
				   "  { zone = \"example.test\"; servers = [ \"127.0.0.1@1\" ]; },\n"
				   "  { zone = \"2.0.192.in-addr.arpa\"; servers = [ \"127.0.0.1@1\" ]; } ); };\n",
				   &err);
	CHECK(cfg != NULL);
	if (cfg == NULL) {
		free(err);
		event_base_free(base);
		return;
	}
	struct dns_resolver *r = dns_resolver_new(base, cfg, &error);
	CHECK(r != NULL);
	if (r == NULL) {
		config_free(&cfg);
		event_base_free(base);
		return;
	}
	struct dns_address in = { .family = AF_INET }, out6 = { .family = AF_INET6 };
	inet_pton(AF_INET, "192.0.2.7", &in.addr.v4);
	inet_pton(AF_INET6, "2001:db8::1", &out6.addr.v6);

	/* 1.0...8.b.d.0.1.0.0.2.ip6.arpa is outside the stub zones */
	struct seen outside = { 0 }, timed = { 0 }, mx = { 0 }, cancelled = { 0 };
	CHECK(dns_ptr(r, &out6, on_ptr, &outside) != NULL);
	CHECK(dns_ptr(r, &in, on_ptr, &timed) != NULL);
	CHECK(dns_mx_explicit(r, "example.test", on_mx, &mx) != NULL);
	struct dns_query *q = dns_ptr(r, &in, on_ptr, &cancelled);
	CHECK(outside.calls == 0 && timed.calls == 0 && mx.calls == 0);
	CHECK(dns_resolver_pending(r) == 4);
	dns_cancel(&q);
	CHECK(q == NULL);
	run_for(base, 0.2);
	CHECK(outside.calls == 1);
	CHECK(outside.status == DNS_TEMPFAIL);
	CHECK(strstr(outside.error, "outside") != NULL);
	time_t start = time(NULL);
	run_for(base, 2.5);
	CHECK(timed.calls == 1 && timed.status == DNS_TEMPFAIL);
	CHECK(mx.calls == 1 && mx.status == DNS_TEMPFAIL);
	CHECK(cancelled.calls == 0);
	CHECK(time(NULL) - start <= 3);
	CHECK(dns_resolver_pending(r) == 0);

	/* freed with a PTR query in flight: no callback */
	struct seen left = { 0 };
	dns_ptr(r, &in, on_ptr, &left);
	dns_resolver_free(&r);
	run_for(base, 0.1);
	CHECK(left.calls == 0);
	config_free(&cfg);
	event_base_free(base);
}

static void test_status_names(void)
{
	CHECK_STR(dns_status_name(DNS_OK), "ok");
	CHECK_STR(dns_status_name(DNS_NULL_MX), "null-mx");
	CHECK_STR(dns_status_name(DNS_BOGUS), "bogus");
	CHECK_STR(dns_status_name(DNS_TEMPFAIL), "tempfail");
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);
	RUN(test_config);
	RUN(test_resolver);
	RUN(test_ptr_and_explicit_mx);
	RUN(test_status_names);
	return unit_summary("dns-resolver");
}
