/* `tern dns`: look names up through the resolver Tern itself uses (the
 * `dns` group of tern.conf), so an administrator sees what delivery sees:
 *
 *   tern dns lookup MX|A|AAAA|ADDR|TLSA|TXT NAME [--port N]
 *
 * Output, one fact per line (stable: tests and scripts read it):
 *   status: ok|nxdomain|nodata|null-mx|tempfail|bogus
 *   MX 10 mx1.example.com            (delivery order; "implicit: yes" when none)
 *   A 192.0.2.1 / AAAA 2001:db8::1   (canonical: NAME after CNAMEs)
 *   TLSA 3 1 1 HEX                   (of _PORT._tcp.NAME, port 25 by default)
 *   TXT "text"                       (strings joined; non-printable as \xNN)
 *   dnssec: secure|insecure
 * Exit status 0 when records were found, 1 otherwise (with the reason on
 * stderr), 2 for usage errors.  `tern dns records` and `tern dns check`
 * are in cli-dns-records.c. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/dns-records.h"
#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/config.h"

int cli_dns(struct config *cfg, int argc, char **argv);

struct lookup {
	const char *type;
	const char *name;
	enum dns_status status;
	bool secure;
	const char *error;      /* copied: the result is gone after the callback */
	char *error_copy;
	bool done;
};

static void lookup_end(struct lookup *l, enum dns_status status, bool secure, const char *error)
{
	l->status = status;
	l->secure = secure;
	if (error != NULL)
		l->error = l->error_copy = xstrdup(error);
	l->done = true;
	printf("status: %s\n", dns_status_name(status));
}

static void on_mx(const struct dns_mx_result *res, void *ctx)
{
	struct lookup *l = ctx;

	lookup_end(l, res->status, res->secure, res->error);
	if (res->implicit)
		printf("implicit: yes\n");
	for (size_t i = 0; i < res->count; i++)
		printf("MX %u %s\n", res->hosts[i].pref, res->hosts[i].name);
}

static void on_addr(const struct dns_addr_result *res, void *ctx)
{
	struct lookup *l = ctx;
	char text[INET6_ADDRSTRLEN];

	lookup_end(l, res->status, res->secure, res->error);
	if (res->status == DNS_OK && strcasecmp(res->canonical, l->name) != 0)
		printf("canonical: %s\n", res->canonical);
	for (size_t i = 0; i < res->count; i++) {
		const struct dns_address *a = &res->addrs[i];
		inet_ntop(a->family, &a->addr, text, sizeof(text));
		printf("%s %s\n", a->family == AF_INET6 ? "AAAA" : "A", text);
	}
}

static void on_tlsa(const struct dns_tlsa_result *res, void *ctx)
{
	struct lookup *l = ctx;

	lookup_end(l, res->status, res->secure, res->error);
	for (size_t i = 0; i < res->count; i++) {
		const struct dns_tlsa_rr *rr = &res->records[i];
		printf("TLSA %u %u %u ", rr->usage, rr->selector, rr->mtype);
		for (size_t j = 0; j < rr->len; j++)
			printf("%02x", rr->data[j]);
		printf("\n");
	}
	if (res->malformed > 0)
		printf("malformed: %zu\n", res->malformed);
}

static void on_txt(const struct dns_txt_result *res, void *ctx)
{
	struct lookup *l = ctx;

	lookup_end(l, res->status, res->secure, res->error);
	for (size_t i = 0; i < res->count; i++) {
		const struct dns_txt_record *t = &res->records[i];
		printf("TXT \"");
		for (size_t j = 0; j < t->len; j++) {
			unsigned char c = (unsigned char)t->text[j];
			if (c == '"' || c == '\\')
				printf("\\%c", c);
			else if (c < 0x20 || c >= 0x7f)
				printf("\\x%02x", c);
			else
				putchar(c);
		}
		printf("\"\n");
	}
}

static const char *status_reason(enum dns_status st)
{
	switch (st) {
	case DNS_NXDOMAIN: return "the name does not exist";
	case DNS_NODATA: return "no records of that type";
	case DNS_NULL_MX: return "null MX: the domain accepts no mail (RFC 7505)";
	case DNS_TEMPFAIL: return "temporary failure";
	case DNS_BOGUS: return "DNSSEC validation failed";
	default: return "ok";
	}
}

static int dns_lookup(struct config *cfg, int argc, char **argv)
{
	struct lookup l = { 0 };
	struct event_base *base;
	struct dns_resolver *r;
	struct dns_query *q;
	const char *err;
	long port = 25;
	int ret;

	if (argc < 4)
		return cli_usage_error("usage: tern dns lookup MX|A|AAAA|ADDR|TLSA|TXT NAME [--port N]");
	for (int i = 4; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			port = strtol(argv[++i], &end, 10);
			if (*end != '\0' || port < 1 || port > 65535)
				return cli_usage_error("--port needs a number from 1 to 65535");
		} else {
			return cli_usage_error("unexpected argument '%s'", argv[i]);
		}
	}
	l.type = argv[2];
	l.name = argv[3];
	if (l.name[0] == '\0' || strlen(l.name) > DNS_NAME_TEXT_MAX)
		return cli_usage_error("'%s' is not a domain name", l.name);

	base = event_base_new();
	if (base == NULL)
		return cli_error("cannot create an event loop");
	r = dns_resolver_new(base, cfg, &err);
	if (r == NULL) {
		event_base_free(base);
		return cli_error("dns: %s (check the dns group of %s)", err, cfg->path);
	}
	if (strcasecmp(l.type, "MX") == 0)
		q = dns_mx(r, l.name, on_mx, &l);
	else if (strcasecmp(l.type, "A") == 0)
		q = dns_addresses(r, l.name, DNS_ADDR_V4_ONLY, on_addr, &l);
	else if (strcasecmp(l.type, "AAAA") == 0)
		q = dns_addresses(r, l.name, DNS_ADDR_V6_ONLY, on_addr, &l);
	else if (strcasecmp(l.type, "ADDR") == 0)
		q = dns_addresses(r, l.name, DNS_ADDR_V6_FIRST, on_addr, &l);
	else if (strcasecmp(l.type, "TLSA") == 0)
		q = dns_tlsa(r, (unsigned)port, l.name, on_tlsa, &l);
	else if (strcasecmp(l.type, "TXT") == 0)
		q = dns_txt(r, l.name, on_txt, &l);
	else {
		dns_resolver_free(&r);
		event_base_free(base);
		return cli_usage_error("unknown record type '%s' (expected MX, A, AAAA, ADDR, "
				       "TLSA or TXT)", l.type);
	}
	(void)q;   /* completes through the callback; the resolver owns it */
	while (!l.done && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	if (!l.done) {
		ret = cli_error("dns: the event loop stopped before the lookup ended");
	} else {
		printf("dnssec: %s\n", l.secure ? "secure" : "insecure");
		fflush(stdout);
		if (l.status == DNS_OK)
			ret = CLI_OK;
		else
			ret = cli_error("%s %s: %s%s%s", l.type, l.name, status_reason(l.status),
					l.error != NULL ? ": " : "", l.error != NULL ? l.error : "");
	}
	free(l.error_copy);
	dns_resolver_free(&r);
	event_base_free(base);
	return ret;
}

int cli_dns(struct config *cfg, int argc, char **argv)
{
	if (strcmp(argv[1], "lookup") == 0)
		return dns_lookup(cfg, argc, argv);
	if (strcmp(argv[1], "records") == 0)
		return cli_dns_records(cfg, argc, argv);
	if (strcmp(argv[1], "check") == 0)
		return cli_dns_check(cfg, argc, argv);
	return cli_usage_error("unknown dns action '%s' (expected lookup, records or check)",
			       argv[1]);
}
