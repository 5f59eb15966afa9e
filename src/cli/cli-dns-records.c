/* `tern dns records DOMAIN [--json]` and `tern dns check DOMAIN [--json]`:
 * the DNS records a local domain needs, as zone-file lines to paste, and a
 * check of what DNS really says against the same list (cli/dns-records.h),
 * through the resolver Tern itself uses (the `dns` group of tern.conf).
 *
 * check output, one line per record, then a summary line:
 *   ok       MX example.com: 10 mail.example.com
 *   problem  SPF example.com: too many SPF lookups (...)
 *            fix: example.com. 3600 IN TXT "v=spf1 mx -all"
 *   warning  SRV pop3 example.com: ...
 *   dns check example.com: N ok, N warnings, N problems
 * Exit status: 0 when no record has a problem, 1 otherwise, 2 for usage.
 *
 * Invariants: every lookup runs on a private event loop, all of them in
 * parallel after the hostname's addresses are known (SPF, PTR and the
 * mta-sts host need them); every result slot is filled exactly once;
 * text from DNS is printed escaped (no control bytes reach the terminal).
 * RFCs: 7208 4.5 and 4.6.4 (one SPF record, 10 DNS lookups), 7489 6.6.3
 * (one DMARC record), 8461 3.1, 8460 3, 6186 3.4, 7672 2.2 (TLSA needs
 * DNSSEC), 1912 2.1 (PTR matching the hostname). */
#include <arpa/inet.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/dns-records.h"
#include "mailauth/dkim-manage.h"
#include "dns/dns.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "mailauth/spf-dns.h"
#include "mailauth/spf.h"
#include "queue/tlsrpt.h"
#include "store/store.h"

#define HOST_ADDR_MAX 8        /* addresses of the hostname we look at */
#define SHOWN_MAX 512          /* bytes of a DNS text quoted in a message */

/* ---- shared: arguments, the expected set --------------------------- */

static int parse_args(int argc, char **argv, const char *usage, char **domain_r, bool *json_r)
{
	const char *err;

	*domain_r = NULL;
	*json_r = false;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			*json_r = true;
		} else if (argv[i][0] != '-' && *domain_r == NULL) {
			*domain_r = cli_domain_normalize(argv[i], &err);
			if (*domain_r == NULL)
				return cli_usage_error("'%s': %s", argv[i], err);
		} else {
			free(*domain_r);
			return cli_usage_error("unexpected argument '%s' (%s)", argv[i], usage);
		}
	}
	if (*domain_r == NULL)
		return cli_usage_error("%s", usage);
	return CLI_OK;
}

/* The expected records of domain; reads the certificate before the store
 * is opened (opening drops privileges) and checks that domain is local. */
static int expected_load(struct config *cfg, const char *domain, struct dnsrec_set *set)
{
	struct store_domain d = { 0 };
	struct store *store = NULL;
	const char *err;
	int found;

	if (dnsrec_expected(cfg, domain, set, &err) < 0)
		return cli_error("%s", err);
	if (cli_store_open(cfg, true, &store) < 0) {
		dnsrec_set_clear(set);
		return CLI_FAIL;
	}
	found = store_domain_get(store, domain, &d, &err);
	if (found > 0)
		store_domain_clear(&d);
	if (found <= 0) {
		store_close(&store);
		dnsrec_set_clear(set);
		if (found < 0)
			return cli_error("%s", err);
		return cli_error("%s is not a local domain (add it with: tern domain add %s)",
				 domain, domain);
	}
	if (dnsrec_add_dkim(set, store, &err) < 0) {
		store_close(&store);
		dnsrec_set_clear(set);
		return cli_error("DKIM keys of %s: %s", domain, err);
	}
	store_close(&store);
	return CLI_OK;
}

static char *zone_line(const struct dnsrec *r)
{
	struct buf b;

	buf_init(&b, 16 * 1024);
	if (dnsrec_zone_line(r, &b) < 0)
		panic("dns records: zone line too long");
	return buf_steal(&b);
}

/* ---- tern dns records ------------------------------------------------ */

static void print_comment(const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		printf("; %.*s\n", (int)n, p);
		p += n + (nl != NULL);
	}
}

int cli_dns_records(struct config *cfg, int argc, char **argv)
{
	struct dnsrec_set set;
	char *domain;
	bool json;
	int ret;

	ret = parse_args(argc, argv, "usage: tern dns records DOMAIN [--json]", &domain, &json);
	if (ret != CLI_OK)
		return ret;
	ret = expected_load(cfg, domain, &set);
	free(domain);
	if (ret != CLI_OK)
		return ret;
	if (json) {
		json_t *o = json_object(), *a = json_array(), *n = json_array();
		json_object_set_new(o, "domain", json_string(set.domain));
		json_object_set_new(o, "hostname", json_string(set.hostname));
		for (size_t i = 0; i < set.count; i++) {
			const struct dnsrec *r = &set.items[i];
			json_t *e = json_object();
			char *line = zone_line(r);
			json_object_set_new(e, "record", json_string(r->label));
			json_object_set_new(e, "name", json_string(r->name));
			json_object_set_new(e, "type", json_string(r->type));
			json_object_set_new(e, "value", json_string(r->value));
			json_object_set_new(e, "line", json_string(line));
			json_object_set_new(e, "comment", r->comment != NULL
					    ? json_string(r->comment) : json_null());
			json_object_set_new(e, "provider", json_boolean(r->provider));
			json_array_append_new(a, e);
			free(line);
		}
		for (size_t i = 0; i < set.note_count; i++)
			json_array_append_new(n, json_string(set.notes[i]));
		json_object_set_new(o, "records", a);
		json_object_set_new(o, "notes", n);
		json_dumpf(o, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(o);
	} else {
		bool provider_header = false;
		printf("; DNS records of %s, served by %s (tern dns records)\n", set.domain,
		       set.hostname);
		printf("; check what is published with: tern dns check %s\n", set.domain);
		for (size_t i = 0; i < set.count; i++) {
			const struct dnsrec *r = &set.items[i];
			char *line = zone_line(r);
			if (r->provider && !provider_header) {
				printf("\n; ---- with the provider of each address, not in the zone\n");
				provider_header = true;
			}
			if (r->comment != NULL) {
				printf("\n");
				print_comment(r->comment);
			}
			printf("%s\n", line);
			free(line);
		}
		if (set.note_count > 0)
			printf("\n");
		for (size_t i = 0; i < set.note_count; i++)
			print_comment(set.notes[i]);
	}
	dnsrec_set_clear(&set);
	return CLI_OK;
}

/* ---- tern dns check: state ------------------------------------------- */

enum verdict { V_OK, V_WARNING, V_PROBLEM };

struct result {
	const char *label;
	char *name;
	enum verdict verdict;
	char *message;
	char *fix;               /* NULL: no fix line */
};

struct check {
	const struct config *cfg;
	struct dnsrec_set *set;
	struct event_base *base;
	struct dns_resolver *resolver;
	struct spf_dns_adapter *spf;
	struct result *results;
	size_t result_count;
	size_t pending;          /* lookups and evaluations in flight */
	/* the hostname's addresses (phase 1) */
	size_t host_result;
	struct dns_address addrs[HOST_ADDR_MAX];
	size_t addr_count;
	/* SPF: one evaluation per address */
	size_t spf_result;
	size_t spf_left;
	char *spf_problem;       /* the first problem found, or NULL */
	char *spf_fix;
	int spf_lookups;         /* most DNS lookups of a passing evaluation */
};

/* One lookup in flight: which record and which result slot */
struct job {
	struct check *c;
	size_t rec;              /* index into c->set->items (or SIZE_MAX) */
	size_t res;              /* index into c->results */
	struct dns_address addr; /* PTR and SPF jobs */
};

static size_t result_new(struct check *c, const char *label, const char *name)
{
	struct result *r;

	c->results = xrealloc(c->results, (c->result_count + 1) * sizeof(*c->results));
	r = &c->results[c->result_count];
	memset(r, 0, sizeof(*r));
	r->label = label;
	r->name = xstrdup(name);
	r->verdict = V_PROBLEM;
	r->message = xstrdup("no answer (the check did not finish)");
	return c->result_count++;
}

/* Fill result i; message and fix are taken (fix may be NULL). */
static void result_set(struct check *c, size_t i, enum verdict v, char *message, char *fix)
{
	struct result *r = &c->results[i];

	free(r->message);
	free(r->fix);
	r->verdict = v;
	r->message = message;
	r->fix = fix;
}

static struct job *job_new(struct check *c, size_t rec, size_t res)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->c = c;
	j->rec = rec;
	j->res = res;
	c->pending++;
	return j;
}

static void job_done(struct job *j)
{
	j->c->pending--;
	free(j);
}

/* text (len bytes from DNS) printable: quoted, escaped, cut at SHOWN_MAX */
static char *shown(const char *text, size_t len)
{
	struct buf b;

	buf_init(&b, SHOWN_MAX * 4 + 64);
	buf_append_str(&b, "\"");
	for (size_t i = 0; i < len && i < SHOWN_MAX; i++) {
		unsigned char ch = (unsigned char)text[i];
		if (ch == '"' || ch == '\\')
			buf_printf(&b, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			buf_printf(&b, "\\x%02x", ch);
		else
			buf_append(&b, &text[i], 1);
	}
	buf_append_str(&b, len > SHOWN_MAX ? "...\"" : "\"");
	return buf_steal(&b);
}

static char *addr_text(const struct dns_address *a)
{
	char text[INET6_ADDRSTRLEN];

	inet_ntop(a->family, &a->addr, text, sizeof(text));
	return xstrdup(text);
}

static bool addr_equal(const struct dns_address *a, const struct dns_address *b)
{
	if (a->family != b->family)
		return false;
	if (a->family == AF_INET)
		return a->addr.v4.s_addr == b->addr.v4.s_addr;
	return memcmp(&a->addr.v6, &b->addr.v6, sizeof(a->addr.v6)) == 0;
}

static char *fix_of(const struct check *c, size_t rec)
{
	return zone_line(&c->set->items[rec]);
}

/* A failed lookup: missing (NXDOMAIN/NODATA) is for the caller; the rest
 * is reported here.  Returns true when it filled the result. */
static bool lookup_failed(struct check *c, size_t res, enum dns_status st, const char *error)
{
	if (st != DNS_TEMPFAIL && st != DNS_BOGUS)
		return false;
	result_set(c, res, V_PROBLEM,
		   xasprintf("lookup failed (%s%s%s)", dns_status_name(st),
			     error != NULL ? ": " : "", error != NULL ? error : ""),
		   xstrdup(st == DNS_BOGUS ? "fix the DNSSEC signatures of the zone"
			   : "run the check again; see the dns group of tern.conf"));
	return true;
}

static bool missing(enum dns_status st)
{
	return st == DNS_NXDOMAIN || st == DNS_NODATA;
}

/* ---- MX ------------------------------------------------------------- */

static void on_mx(const struct dns_mx_result *res, void *ctx)
{
	struct job *j = ctx;
	struct check *c = j->c;
	struct buf seen;

	if (lookup_failed(c, j->res, res->status, res->error))
		goto out;
	if (missing(res->status)) {
		result_set(c, j->res, V_PROBLEM, xstrdup("missing: no MX record"), fix_of(c, j->rec));
		goto out;
	}
	if (res->status == DNS_NULL_MX) {
		result_set(c, j->res, V_PROBLEM,
			   xstrdup("null MX (\"MX 0 .\"): the domain says it takes no mail"),
			   fix_of(c, j->rec));
		goto out;
	}
	buf_init(&seen, 4096);
	for (size_t i = 0; i < res->count; i++) {
		if (strcasecmp(res->hosts[i].name, c->set->hostname) == 0) {
			result_set(c, j->res, V_OK, xasprintf("%u %s", res->hosts[i].pref,
							      res->hosts[i].name), NULL);
			buf_free(&seen);
			goto out;
		}
		buf_printf(&seen, "%s%s", i > 0 ? ", " : "", res->hosts[i].name);
	}
	result_set(c, j->res, V_PROBLEM,
		   xasprintf("MX not pointing at this server: %s, not %s", buf_cstr(&seen),
			     c->set->hostname), fix_of(c, j->rec));
	buf_free(&seen);
out:
	job_done(j);
}

/* ---- TXT records: SPF, DMARC, MTA-STS, TLS-RPT, DKIM ------------------ */

static bool txt_has_prefix(const struct dns_txt_record *t, const char *prefix)
{
	size_t n = strlen(prefix);

	return t->len >= n && strncasecmp(t->text, prefix, n) == 0 &&
		(t->len == n || t->text[n] == ' ' || t->text[n] == ';' || t->text[n] == '\t');
}

static void spf_finish(struct check *c)
{
	if (c->spf_problem != NULL) {
		result_set(c, c->spf_result, V_PROBLEM, c->spf_problem, c->spf_fix);
	} else {
		result_set(c, c->spf_result, V_OK,
			   xasprintf("passes for this server (%d of %d DNS lookups)", c->spf_lookups,
				     SPF_MAX_DNS_MECHANISMS), NULL);
		free(c->spf_fix);
	}
	c->spf_problem = c->spf_fix = NULL;
}

static void on_spf_done(void *ctx, const struct spf_outcome *o)
{
	struct job *j = ctx;
	struct check *c = j->c;
	char *addr = addr_text(&j->addr);

	if (c->spf_problem == NULL) {
		if (o->result == SPF_RESULT_PERMERROR && o->dns_mechanisms > SPF_MAX_DNS_MECHANISMS) {
			c->spf_problem = xasprintf("too many SPF lookups: more than %d DNS-querying "
						   "terms (include, a, mx, ptr, exists, redirect; "
						   "RFC 7208 4.6.4), so receivers get permerror",
						   SPF_MAX_DNS_MECHANISMS);
			c->spf_fix = xstrdup("replace include: terms by the ip4:/ip6: ranges they "
					     "stand for, or drop unused ones, to need at most 10 "
					     "lookups");
		} else if (o->result == SPF_RESULT_PERMERROR || o->result == SPF_RESULT_TEMPERROR) {
			c->spf_problem = xasprintf("SPF evaluation for %s gives %s: %s", addr,
						   spf_result_name(o->result),
						   o->reason != NULL ? o->reason : "");
		} else if (o->result != SPF_RESULT_PASS && !c->set->smarthost) {
			c->spf_problem = xasprintf("SPF does not allow this server's address %s "
						   "(result %s)", addr, spf_result_name(o->result));
			c->spf_fix = xasprintf("add ip%d:%s before -all (or point the MX at this "
					       "server, for \"mx\")",
					       j->addr.family == AF_INET ? 4 : 6, addr);
		} else if (o->dns_mechanisms > c->spf_lookups) {
			c->spf_lookups = o->dns_mechanisms;
		}
	}
	free(addr);
	if (--c->spf_left == 0)
		spf_finish(c);
	job_done(j);
}

static void on_spf_txt(const struct dns_txt_result *res, void *ctx)
{
	struct job *j = ctx;
	struct check *c = j->c;
	const struct dns_txt_record *rec = NULL;
	const char *err;
	size_t n = 0;

	if (lookup_failed(c, j->res, res->status, res->error))
		goto out;
	for (size_t i = 0; i < res->count; i++)
		if (txt_has_prefix(&res->records[i], "v=spf1")) {
			rec = &res->records[i];
			n++;
		}
	if (n == 0) {
		result_set(c, j->res, V_PROBLEM, xstrdup("missing: no SPF record"), fix_of(c, j->rec));
		goto out;
	}
	if (n > 1) {
		result_set(c, j->res, V_PROBLEM,
			   xasprintf("%zu SPF records: receivers give permerror (RFC 7208 4.5)", n),
			   xasprintf("keep one, merging their terms: %s", c->set->items[j->rec].value));
		goto out;
	}
	if (memchr(rec->text, '\0', rec->len) != NULL || spf_record_check(rec->text, &err) < 0) {
		char *s = shown(rec->text, rec->len);
		result_set(c, j->res, V_PROBLEM,
			   xasprintf("syntax error in the SPF record %s: %s", s,
				     memchr(rec->text, '\0', rec->len) != NULL ? "NUL byte" : err),
			   fix_of(c, j->rec));
		free(s);
		goto out;
	}
	if (c->addr_count == 0) {
		result_set(c, j->res, V_WARNING,
			   xasprintf("valid, but not evaluated: %s has no address",
				     c->set->hostname), NULL);
		goto out;
	}
	/* evaluate check_host() for each of this server's addresses */
	c->spf_result = j->res;
	c->spf_left = c->addr_count;
	for (size_t i = 0; i < c->addr_count; i++) {
		struct job *e = job_new(c, j->rec, j->res);
		struct spf_request req = { 0 };
		char *sender = xasprintf("postmaster@%s", c->set->domain);
		e->addr = c->addrs[i];
		req.ip.family = c->addrs[i].family == AF_INET ? 4 : 6;
		memcpy(req.ip.addr, &c->addrs[i].addr, req.ip.family == 4 ? 4 : 16);
		req.sender = sender;
		req.helo = c->set->hostname;
		req.domain = c->set->domain;
		req.receiver = c->set->hostname;
		req.now = time(NULL);
		spf_check(&req, spf_dns_adapter_dns(c->spf), on_spf_done, e);
		free(sender);
	}
out:
	job_done(j);
}

static void on_dmarc_txt(const struct dns_txt_result *res, void *ctx)
{
	struct job *j = ctx;
	struct check *c = j->c;
	const struct dns_txt_record *rec = NULL;
	const char *expect = c->set->items[j->rec].value, *err;
	size_t n = 0;
	char *s;

	if (lookup_failed(c, j->res, res->status, res->error))
		goto out;
	for (size_t i = 0; i < res->count; i++)
		if (res->records[i].len >= 7 && strncasecmp(res->records[i].text, "v=DMARC", 7) == 0) {
			rec = &res->records[i];
			n++;
		}
	if (n == 0) {
		result_set(c, j->res, V_PROBLEM, xstrdup("missing: no DMARC record"),
			   fix_of(c, j->rec));
		goto out;
	}
	if (n > 1) {
		result_set(c, j->res, V_PROBLEM,
			   xasprintf("%zu DMARC records: receivers ignore them all (RFC 7489 6.6.3)",
				     n), fix_of(c, j->rec));
		goto out;
	}
	s = shown(rec->text, rec->len);
	if (dnsrec_dmarc_syntax(rec->text, rec->len, &err) < 0)
		result_set(c, j->res, V_PROBLEM, xasprintf("syntax error in %s: %s", s, err),
			   fix_of(c, j->rec));
	else if (rec->len == strlen(expect) && memcmp(rec->text, expect, rec->len) == 0)
		result_set(c, j->res, V_OK, xstrdup(s), NULL);
	else
		result_set(c, j->res, V_OK, xasprintf("%s (valid; differs from the suggested "
						      "record, fine if intended)", s), NULL);
	free(s);
out:
	job_done(j);
}

static void on_sts_txt(const struct dns_txt_result *res, void *ctx)
{
	struct job *j = ctx;
	struct check *c = j->c;
	const char *expect = c->set->items[j->rec].value + strlen("v=STSv1; id="), *err = NULL;
	char *id = NULL, *bad = NULL;
	size_t n = 0;

	if (lookup_failed(c, j->res, res->status, res->error))
		goto out;
	for (size_t i = 0; i < res->count; i++) {
		char *one;
		int r = dnsrec_sts_id(res->records[i].text, res->records[i].len, &one, &err);
		if (r == 0)
			continue;
		n++;
		if (r < 0 && bad == NULL) {
			char *s = shown(res->records[i].text, res->records[i].len);
			bad = xasprintf("syntax error in %s: %s", s, err);
			free(s);
		} else if (r > 0) {
			free(id);
			id = one;
		}
	}
	if (n == 0)
		result_set(c, j->res, V_PROBLEM, xstrdup("missing: no MTA-STS record"),
			   fix_of(c, j->rec));
	else if (bad != NULL)
		result_set(c, j->res, V_PROBLEM, bad, fix_of(c, j->rec)), bad = NULL;
	else if (n > 1)
		result_set(c, j->res, V_PROBLEM,
			   xasprintf("%zu MTA-STS records: senders ignore them all (RFC 8461 3.1)", n),
			   fix_of(c, j->rec));
	else if (strcmp(id, expect) != 0)
		result_set(c, j->res, V_PROBLEM,
			   xasprintf("MTA-STS id does not match the served policy: published %s, "
				     "served %s (senders keep their cached policy)", id, expect),
			   fix_of(c, j->rec));
	else
		result_set(c, j->res, V_OK, xasprintf("id=%s matches the served policy", id), NULL);
	free(id);
	free(bad);
out:
	job_done(j);
}

static void on_tlsrpt_txt(const struct dns_txt_result *res, void *ctx)
{
	struct job *j = ctx;
	struct check *c = j->c;
	char *bad = NULL;
	size_t n = 0, uris = 0;

	if (lookup_failed(c, j->res, res->status, res->error))
		goto out;
	for (size_t i = 0; i < res->count; i++) {
		struct tlsrpt_record rec = { 0 };
		const char *err = NULL;
		int r = tlsrpt_record_parse(res->records[i].text, res->records[i].len, &rec, &err);
		if (r == 0)
			continue;
		n++;
		if (r < 0 && bad == NULL) {
			char *s = shown(res->records[i].text, res->records[i].len);
			bad = xasprintf("syntax error in %s: %s", s, err != NULL ? err : "malformed");
			free(s);
		}
		if (r > 0)
			uris = rec.rua_count;
		tlsrpt_record_clear(&rec);
	}
	if (n == 0)
		result_set(c, j->res, V_PROBLEM, xstrdup("missing: no TLS-RPT record"),
			   fix_of(c, j->rec));
	else if (bad != NULL)
		result_set(c, j->res, V_PROBLEM, bad, fix_of(c, j->rec)), bad = NULL;
	else if (n > 1)
		result_set(c, j->res, V_PROBLEM,
			   xasprintf("%zu TLS-RPT records: senders send no reports (RFC 8460 3)", n),
			   fix_of(c, j->rec));
	else if (uris == 0)
		result_set(c, j->res, V_WARNING,
			   xstrdup("valid, but no mailto: or https: report address"), fix_of(c, j->rec));
	else
		result_set(c, j->res, V_OK, xstrdup("valid"), NULL);
	free(bad);
out:
	job_done(j);
}

/* Does a published record carry the key of expect ("v=DKIM1; k=TYPE;
 * p=BASE64", as dns-records.c writes it), however it is written? */
static bool dkim_record_carries(const char *text, size_t len, const char *expect)
{
	enum dkim_key_type type = strstr(expect, "k=ed25519") != NULL ? DKIM_KEY_ED25519
		: DKIM_KEY_RSA;
	const char *p = strstr(expect, "p=");

	return p != NULL && dkim_record_matches(text, len, type, p + 2);
}

static void on_dkim_txt(const struct dns_txt_result *res, void *ctx)
{
	struct job *j = ctx;
	struct check *c = j->c;
	const char *expect = c->set->items[j->rec].value;

	if (lookup_failed(c, j->res, res->status, res->error))
		goto out;
	if (res->count == 0) {
		result_set(c, j->res, V_PROBLEM, xstrdup("missing: no DKIM key record"),
			   fix_of(c, j->rec));
		goto out;
	}
	for (size_t i = 0; i < res->count; i++)
		if (dkim_record_carries(res->records[i].text, res->records[i].len, expect)) {
			result_set(c, j->res, V_OK, xstrdup("matches the key in the store"), NULL);
			goto out;
		}
	result_set(c, j->res, V_PROBLEM, xstrdup("DKIM key not matching the store"),
		   fix_of(c, j->rec));
out:
	job_done(j);
}

/* ---- addresses: mta-sts host ----------------------------------------- */

static void on_sts_host(const struct dns_addr_result *res, void *ctx)
{
	struct job *j = ctx;
	struct check *c = j->c;

	if (lookup_failed(c, j->res, res->status, res->error))
		goto out;
	if (missing(res->status)) {
		result_set(c, j->res, V_PROBLEM, xasprintf("missing: %s has no address",
							   c->set->items[j->rec].name),
			   fix_of(c, j->rec));
		goto out;
	}
	if (c->addr_count == 0) {
		result_set(c, j->res, V_WARNING, xasprintf("resolves, but %s has no address to "
							   "compare with", c->set->hostname), NULL);
		goto out;
	}
	for (size_t i = 0; i < res->count; i++)
		for (size_t k = 0; k < c->addr_count; k++)
			if (addr_equal(&res->addrs[i], &c->addrs[k])) {
				char *a = addr_text(&res->addrs[i]);
				result_set(c, j->res, V_OK, xasprintf("resolves to this server (%s)", a),
					   NULL);
				free(a);
				goto out;
			}
	result_set(c, j->res, V_PROBLEM,
		   xasprintf("%s does not resolve to this server's addresses",
			     c->set->items[j->rec].name), fix_of(c, j->rec));
out:
	job_done(j);
}

/* ---- SRV ------------------------------------------------------------- */

static void on_srv(const struct dns_srv_result *res, void *ctx)
{
	struct job *j = ctx;
	struct check *c = j->c;
	const struct dnsrec *e = &c->set->items[j->rec];
	bool off = strcmp(e->target, ".") == 0;

	if (lookup_failed(c, j->res, res->status, res->error))
		goto out;
	if (missing(res->status) || res->count == 0) {
		if (off)
			result_set(c, j->res, V_WARNING,
				   xstrdup("missing (harmless: the service is disabled; \".\" "
					   "tells clients so at once)"), fix_of(c, j->rec));
		else
			result_set(c, j->res, V_PROBLEM, xstrdup("missing: no SRV record"),
				   fix_of(c, j->rec));
		goto out;
	}
	for (size_t i = 0; i < res->count; i++) {
		const struct dns_srv_rr *s = &res->records[i];
		if (off ? strcmp(s->target, ".") == 0
		    : strcasecmp(s->target, e->target) == 0 && s->port == e->port) {
			result_set(c, j->res, V_OK, off ? xstrdup("not offered (\".\")")
				   : xasprintf("%u %s", s->port, s->target), NULL);
			goto out;
		}
	}
	result_set(c, j->res, V_PROBLEM,
		   off ? xasprintf("different: advertises %u %s, but the service is disabled in "
				   "tern.conf", res->records[0].port, res->records[0].target)
		   : xasprintf("different: %u %s, not %u %s", res->records[0].port,
			       res->records[0].target, e->port, e->target), fix_of(c, j->rec));
out:
	job_done(j);
}

/* ---- TLSA ------------------------------------------------------------ */

static void on_tlsa(const struct dns_tlsa_result *res, void *ctx)
{
	struct job *j = ctx;
	struct check *c = j->c;
	const struct dnsrec *e = &c->set->items[j->rec];
	const char *hex = e->value + strlen("3 1 1 ");

	if (lookup_failed(c, j->res, res->status, res->error))
		goto out;
	if (missing(res->status) || res->count == 0) {
		if (res->secure)
			result_set(c, j->res, V_PROBLEM,
				   xstrdup("missing: the zone is DNSSEC-signed but has no TLSA "
					   "record (no DANE for this server)"), fix_of(c, j->rec));
		else
			result_set(c, j->res, V_OK,
				   xasprintf("not published: the zone of %s is not DNSSEC-signed "
					     "(publish TLSA only with DNSSEC)", e->target), NULL);
		goto out;
	}
	for (size_t i = 0; i < res->count; i++) {
		const struct dns_tlsa_rr *rr = &res->records[i];
		bool match = rr->usage == 3 && rr->selector == 1 && rr->mtype == 1 && rr->len == 32;
		for (size_t k = 0; match && k < 32; k++) {
			unsigned v;
			match = sscanf(hex + 2 * k, "%2x", &v) == 1 && v == rr->data[k];
		}
		if (!match)
			continue;
		if (res->secure)
			result_set(c, j->res, V_OK, xstrdup("matches the certificate's key "
							     "(DNSSEC-signed)"), NULL);
		else
			result_set(c, j->res, V_WARNING,
				   xstrdup("matches the certificate's key, but the zone is not "
					   "DNSSEC-signed: senders ignore it"), NULL);
		goto out;
	}
	result_set(c, j->res, V_PROBLEM,
		   xstrdup("TLSA not matching the certificate: no 3 1 1 record with the "
			   "certificate's key (DANE senders will not deliver)"), fix_of(c, j->rec));
out:
	job_done(j);
}

/* ---- PTR ------------------------------------------------------------- */

static void on_ptr(const struct dns_ptr_result *res, void *ctx)
{
	struct job *j = ctx;
	struct check *c = j->c;
	struct dnsrec pr;
	char *a = addr_text(&j->addr), *fix = NULL;

	if (dnsrec_ptr(&pr, &j->addr, c->set->hostname) == 0) {
		char *line = zone_line(&pr);
		fix = xasprintf("ask the provider of %s to set: %s", a, line);
		free(line);
		dnsrec_clear(&pr);
	}
	if (lookup_failed(c, j->res, res->status, res->error)) {
		free(fix);
		goto out;
	}
	if (missing(res->status) || res->count == 0) {
		result_set(c, j->res, V_PROBLEM, xasprintf("no PTR record for %s", a), fix);
		goto out;
	}
	for (size_t i = 0; i < res->count; i++)
		if (strcasecmp(res->names[i], c->set->hostname) == 0) {
			result_set(c, j->res, V_OK, xasprintf("%s -> %s", a, res->names[i]), NULL);
			free(fix);
			goto out;
		}
	result_set(c, j->res, V_PROBLEM, xasprintf("PTR of %s is %s, not the hostname %s", a,
						   res->names[0], c->set->hostname), fix);
out:
	free(a);
	job_done(j);
}

/* ---- phase 1: the hostname's addresses ------------------------------- */

static void on_host(const struct dns_addr_result *res, void *ctx)
{
	struct job *j = ctx;
	struct check *c = j->c;
	struct buf list;

	if (lookup_failed(c, j->res, res->status, res->error))
		goto out;
	if (missing(res->status) || res->count == 0) {
		result_set(c, j->res, V_PROBLEM,
			   xasprintf("missing: %s has no A or AAAA record", c->set->hostname),
			   xasprintf("publish the addresses of %s (%s. %d IN A ADDRESS)",
				     c->set->hostname, c->set->hostname, DNSREC_TTL));
		goto out;
	}
	buf_init(&list, 4096);
	for (size_t i = 0; i < res->count && c->addr_count < HOST_ADDR_MAX; i++) {
		char *a = addr_text(&res->addrs[i]);
		c->addrs[c->addr_count++] = res->addrs[i];
		buf_printf(&list, "%s%s", i > 0 ? " " : "", a);
		free(a);
	}
	result_set(c, j->res, V_OK, buf_steal(&list), NULL);
out:
	job_done(j);
}

static void run_loop(struct check *c)
{
	while (c->pending > 0 && event_base_loop(c->base, EVLOOP_ONCE) == 0)
		;
}

/* Start every phase-2 lookup of the expected records */
static void start_checks(struct check *c)
{
	struct dnsrec_set *set = c->set;

	for (size_t i = 0; i < set->count; i++) {
		const struct dnsrec *e = &set->items[i];
		struct job *j;
		size_t res;

		if (e->kind == DNSREC_PTR)
			continue;      /* checked for the hostname's addresses below */
		res = result_new(c, e->label, e->name);
		if (e->kind == DNSREC_HOST_ADDR) {
			char *a = addr_text(&e->addr);
			bool found = false;
			for (size_t k = 0; k < c->addr_count; k++)
				found |= addr_equal(&e->addr, &c->addrs[k]);
			if (found)
				result_set(c, res, V_OK, xasprintf("has %s (listen.bind)", a), NULL);
			else
				result_set(c, res, V_PROBLEM,
					   xasprintf("%s does not resolve to %s, the address the "
						     "listeners bind", e->name, a), fix_of(c, i));
			free(a);
			continue;
		}
		j = job_new(c, i, res);
		switch (e->kind) {
		case DNSREC_MX: dns_mx_explicit(c->resolver, e->name, on_mx, j); break;
		case DNSREC_SPF: dns_txt(c->resolver, e->name, on_spf_txt, j); break;
		case DNSREC_DKIM: dns_txt(c->resolver, e->name, on_dkim_txt, j); break;
		case DNSREC_DMARC: dns_txt(c->resolver, e->name, on_dmarc_txt, j); break;
		case DNSREC_MTA_STS: dns_txt(c->resolver, e->name, on_sts_txt, j); break;
		case DNSREC_TLSRPT: dns_txt(c->resolver, e->name, on_tlsrpt_txt, j); break;
		case DNSREC_MTA_STS_HOST:
			dns_addresses(c->resolver, e->name, DNS_ADDR_V6_FIRST, on_sts_host, j);
			break;
		case DNSREC_SRV: dns_srv(c->resolver, e->name, on_srv, j); break;
		case DNSREC_TLSA: dns_tlsa(c->resolver, e->port, e->target, on_tlsa, j); break;
		case DNSREC_HOST_ADDR:
		case DNSREC_PTR:
			break;
		}
	}
	for (size_t k = 0; k < c->addr_count; k++) {
		char *a = addr_text(&c->addrs[k]);
		size_t res = result_new(c, "PTR", a);
		struct job *j = job_new(c, SIZE_MAX, res);
		j->addr = c->addrs[k];
		dns_ptr(c->resolver, &c->addrs[k], on_ptr, j);
		free(a);
	}
}

static const char *verdict_name(enum verdict v)
{
	return v == V_OK ? "ok" : v == V_WARNING ? "warning" : "problem";
}

static int report(const struct check *c, bool json)
{
	size_t n[3] = { 0 };

	for (size_t i = 0; i < c->result_count; i++)
		n[c->results[i].verdict]++;
	if (json) {
		json_t *o = json_object(), *a = json_array();
		json_object_set_new(o, "domain", json_string(c->set->domain));
		json_object_set_new(o, "hostname", json_string(c->set->hostname));
		for (size_t i = 0; i < c->result_count; i++) {
			const struct result *r = &c->results[i];
			json_t *e = json_object();
			json_object_set_new(e, "record", json_string(r->label));
			json_object_set_new(e, "name", json_string(r->name));
			json_object_set_new(e, "status", json_string(verdict_name(r->verdict)));
			json_object_set_new(e, "message", json_string(r->message));
			json_object_set_new(e, "fix", r->fix != NULL ? json_string(r->fix)
					    : json_null());
			json_array_append_new(a, e);
		}
		json_object_set_new(o, "results", a);
		json_object_set_new(o, "ok", json_integer((json_int_t)n[V_OK]));
		json_object_set_new(o, "warnings", json_integer((json_int_t)n[V_WARNING]));
		json_object_set_new(o, "problems", json_integer((json_int_t)n[V_PROBLEM]));
		json_dumpf(o, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(o);
	} else {
		for (size_t i = 0; i < c->result_count; i++) {
			const struct result *r = &c->results[i];
			printf("%-8s %s %s: %s\n", verdict_name(r->verdict), r->label, r->name,
			       r->message);
			if (r->fix != NULL && r->verdict != V_OK)
				printf("         fix: %s\n", r->fix);
		}
		printf("dns check %s: %zu ok, %zu warnings, %zu problems\n", c->set->domain,
		       n[V_OK], n[V_WARNING], n[V_PROBLEM]);
	}
	fflush(stdout);
	return n[V_PROBLEM] > 0 ? CLI_FAIL : CLI_OK;
}

int cli_dns_check(struct config *cfg, int argc, char **argv)
{
	struct check c = { 0 };
	struct dnsrec_set set;
	const char *err;
	char *domain;
	bool json;
	int ret;

	ret = parse_args(argc, argv, "usage: tern dns check DOMAIN [--json]", &domain, &json);
	if (ret != CLI_OK)
		return ret;
	ret = expected_load(cfg, domain, &set);
	free(domain);
	if (ret != CLI_OK)
		return ret;
	c.cfg = cfg;
	c.set = &set;
	c.base = event_base_new();
	if (c.base == NULL) {
		dnsrec_set_clear(&set);
		return cli_error("cannot create an event loop");
	}
	c.resolver = dns_resolver_new(c.base, cfg, &err);
	if (c.resolver == NULL) {
		event_base_free(c.base);
		dnsrec_set_clear(&set);
		return cli_error("dns: %s (check the dns group of %s)", err, cfg->path);
	}
	c.spf = spf_dns_adapter_new(c.resolver);

	/* phase 1: the hostname's addresses, which SPF, PTR and mta-sts need */
	c.host_result = result_new(&c, "A/AAAA", set.hostname);
	dns_addresses(c.resolver, set.hostname, DNS_ADDR_V6_FIRST, on_host,
		      job_new(&c, SIZE_MAX, c.host_result));
	run_loop(&c);
	/* phase 2: everything else, in parallel */
	start_checks(&c);
	run_loop(&c);
	if (c.pending > 0)
		ret = cli_error("dns: the event loop stopped before the lookups ended");
	else
		ret = report(&c, json);

	spf_dns_adapter_free(&c.spf);
	dns_resolver_free(&c.resolver);
	event_base_free(c.base);
	for (size_t i = 0; i < c.result_count; i++) {
		free(c.results[i].name);
		free(c.results[i].message);
		free(c.results[i].fix);
	}
	free(c.results);
	free(c.spf_problem);
	free(c.spf_fix);
	dnsrec_set_clear(&set);
	return ret;
}
