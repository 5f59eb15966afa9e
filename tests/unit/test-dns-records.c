/* Unit tests of cli/dns-records.c (the expected DNS records of a domain and
 * their zone-file form) and of dns_rdata_srv (SRV records, dns/rdata.c). */
#include "unit.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/dns-records.h"
#include "dns/rdata.h"
#include "http/http.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/tls-selfsigned.h"
#include "mailauth/dkim-manage.h"
#include "store/dkim-keys.h"
#include "store-test-util.h"

static char *quote(const char *text, size_t len)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	CHECK(dnsrec_txt_quote(text, len, &b) == 0);
	return buf_steal(&b);
}

static void test_txt_quote_short(void)
{
	char *q = quote("v=spf1 mx -all", 14);
	CHECK_STR(q, "\"v=spf1 mx -all\"");
	free(q);
	q = quote("", 0);
	CHECK_STR(q, "\"\"");
	free(q);
	/* quotes, backslashes and control bytes escaped (RFC 1035 5.1) */
	q = quote("a\"b\\c\nd\0e", 9);
	CHECK_STR(q, "\"a\\\"b\\\\c\\010d\\000e\"");
	free(q);
}

static void test_txt_quote_split(void)
{
	char text[600];
	char *q;

	memset(text, 'k', sizeof(text));
	/* exactly 255 bytes: one string */
	q = quote(text, 255);
	CHECK(strlen(q) == 257 && q[0] == '"' && q[256] == '"');
	free(q);
	/* 256 bytes: two strings, 255 + 1 */
	q = quote(text, 256);
	CHECK(strlen(q) == 257 + 4);
	CHECK(strcmp(q + 257, " \"k\"") == 0);
	free(q);
	/* 600 bytes: 255 + 255 + 90, and the split counts bytes before escaping */
	text[254] = '"';
	q = quote(text, 600);
	{
		size_t strings = 0, content = 0;
		bool in = false;
		for (const char *p = q; *p != '\0'; p++) {
			if (*p == '\\') {
				p++;
				content++;
			} else if (*p == '"') {
				in = !in;
				strings += in;
			} else if (in) {
				content++;
			}
		}
		CHECK(strings == 3);
		CHECK(content == 600);
	}
	CHECK(strstr(q, "\\\"\" \"k") != NULL);   /* the escaped quote ends string 1 */
	free(q);
}

static void test_txt_quote_full_buffer(void)
{
	struct buf b;

	buf_init(&b, 8);
	CHECK(dnsrec_txt_quote("0123456789", 10, &b) < 0);
	buf_free(&b);
}

static struct config *conf(const char *extra)
{
	char *text = xasprintf("hostname = \"Mail.Example.COM\";\n%s", extra);
	char *err = NULL;
	struct config *cfg = config_parse_string(text, "test.conf", &err);

	if (cfg == NULL)
		fprintf(stderr, "config: %s\n", err);
	free(err);
	free(text);
	return cfg;
}

static const struct dnsrec *find(const struct dnsrec_set *set, const char *name,
				 const char *type)
{
	for (size_t i = 0; i < set->count; i++)
		if (strcmp(set->items[i].name, name) == 0 && strcmp(set->items[i].type, type) == 0)
			return &set->items[i];
	return NULL;
}

static char *line(const struct dnsrec *r)
{
	struct buf b;

	buf_init(&b, 4096);
	CHECK(dnsrec_zone_line(r, &b) == 0);
	return buf_steal(&b);
}

static void test_expected_default_config(void)
{
	struct config *cfg = conf("tls = { cert = \"/nonexistent/cert.pem\"; "
				  "key = \"/nonexistent/key.pem\"; };\n");
	struct dnsrec_set set;
	const struct dnsrec *r;
	const char *err;
	char *l;

	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	CHECK(dnsrec_expected(cfg, "Example.com.", &set, &err) == 0);
	CHECK_STR(set.domain, "example.com");
	CHECK_STR(set.hostname, "mail.example.com");
	r = find(&set, "example.com", "MX");
	CHECK(r != NULL);
	l = line(r);
	CHECK_STR(l, "example.com. 3600 IN MX 10 mail.example.com.");
	free(l);
	r = find(&set, "example.com", "TXT");
	CHECK(r != NULL && r->kind == DNSREC_SPF);
	l = line(r);
	CHECK_STR(l, "example.com. 3600 IN TXT \"v=spf1 mx -all\"");
	free(l);
	r = find(&set, "_dmarc.example.com", "TXT");
	CHECK(r != NULL && strcmp(r->value, "v=DMARC1; p=quarantine; "
				  "rua=mailto:dmarc-reports@example.com") == 0);
	CHECK(r != NULL && strstr(r->comment, "tern user add dmarc-reports@example.com") != NULL);
	r = find(&set, "_smtp._tls.example.com", "TXT");
	CHECK(r != NULL && strcmp(r->value, "v=TLSRPTv1; rua=mailto:tlsrpt@example.com") == 0);
	/* MTA-STS: the id of the policy the http module serves */
	r = find(&set, "_mta-sts.example.com", "TXT");
	CHECK(r != NULL);
	if (r != NULL) {
		char id[HTTP_MTA_STS_ID_LEN + 1];
		http_mta_sts_id(cfg, id);
		CHECK(strncmp(r->value, "v=STSv1; id=", 12) == 0 && strcmp(r->value + 12, id) == 0);
	}
	r = find(&set, "mta-sts.example.com", "CNAME");
	CHECK(r != NULL && strcmp(r->target, "mail.example.com") == 0);
	/* every listener on by default: SRV records with the standard ports */
	r = find(&set, "_submissions._tcp.example.com", "SRV");
	CHECK(r != NULL);
	l = r != NULL ? line(r) : NULL;
	CHECK_STR(l, "_submissions._tcp.example.com. 3600 IN SRV 0 1 465 mail.example.com.");
	free(l);
	CHECK(find(&set, "_imaps._tcp.example.com", "SRV") != NULL);
	CHECK(find(&set, "_pop3._tcp.example.com", "SRV")->port == 110);
	/* the default bind is every address: no A or PTR records, notes instead */
	CHECK(find(&set, "mail.example.com", "A") == NULL);
	for (size_t i = 0; i < set.count; i++)
		CHECK(set.items[i].kind != DNSREC_PTR);
	CHECK(set.note_count >= 2);
	/* an unreadable certificate: no TLSA record, a note saying why */
	CHECK(find(&set, "_25._tcp.mail.example.com", "TLSA") == NULL);
	{
		bool said = false;
		for (size_t i = 0; i < set.note_count; i++)
			said |= strstr(set.notes[i], "/nonexistent/cert.pem") != NULL;
		CHECK(said);
	}
	/* DKIM: the store's published keys, one record each; a retired key
	 * is not published */
	{
		char dir[sizeof("/tmp/tern-dnsrec-XXXXXX")];
		struct store *st = store_test_open(store_test_mkdtemp(dir, "/tmp/tern-dnsrec-XXXXXX"),
						   NULL);
		const char *state_sel[][2] = { { "s1", "1" }, { "old", "3" } };
		size_t before = set.count;
		const struct dnsrec *r;

		CHECK(store_domain_add(st, "example.com", &err) == 0);
		for (size_t i = 0; i < 2; i++) {
			struct store_dkim_key k = { 0 };
			char *pem = NULL, *pub = NULL;
			CHECK(dkim_keygen(DKIM_KEY_ED25519, &pem, &pub, &err) == 0);
			k.domain = (char *)"example.com";
			k.selector = (char *)state_sel[i][0];
			k.algorithm = (char *)"ed25519-sha256";
			k.private_key = pem;
			k.public_key = pub;
			k.state = atoi(state_sel[i][1]);
			k.created = 1700000000;
			CHECK(store_dkim_key_add(st, &k, NULL, &err) == 0);
			if (i == 0) {
				CHECK(dnsrec_add_dkim(&set, st, &err) == 0);
				CHECK(set.count == before + 1);
				r = find(&set, "s1._domainkey.example.com", "TXT");
				CHECK(r != NULL && r->kind == DNSREC_DKIM);
				if (r != NULL) {
					CHECK(strncmp(r->value, "v=DKIM1; k=ed25519; p=", 22) == 0);
					CHECK_STR(r->value + 22, pub);
				}
			}
			free(pem);
			free(pub);
		}
		before = set.count;
		CHECK(dnsrec_add_dkim(&set, st, &err) == 0);
		CHECK(set.count == before + 1);   /* s1 again, never "old" */
		CHECK(find(&set, "old._domainkey.example.com", "TXT") == NULL);
		store_close(&st);
		store_test_rm_rf(dir);
	}
	dnsrec_set_clear(&set);
	CHECK(set.items == NULL && set.count == 0);
	config_free(&cfg);
}

static void test_expected_specific_bind(void)
{
	char dir[] = "/tmp/tern-dnsrec-XXXXXX";
	struct dnsrec_set set;
	const struct dnsrec *r;
	const char *err;
	char *cert, *key, *extra, *l, hex[65];
	struct config *cfg;

	CHECK(mkdtemp(dir) != NULL);
	cert = xasprintf("%s/cert.pem", dir);
	key = xasprintf("%s/key.pem", dir);
	CHECK(tls_selfsigned_create("mail.example.com", cert, key, &err) == 0);
	extra = xasprintf("tls = { cert = \"%s\"; key = \"%s\"; };\n"
			  "listen = { bind = [ \"192.0.2.25\", \"2001:db8::25\" ]; pop3 = 0; "
			  "imap = 0; https = 0; };\n"
			  "queue = { smarthost = { host = \"smtp.provider.example\"; }; };\n",
			  cert, key);
	cfg = conf(extra);
	free(extra);
	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	CHECK(dnsrec_expected(cfg, "example.com", &set, &err) == 0);
	r = find(&set, "mail.example.com", "A");
	CHECK(r != NULL && strcmp(r->value, "192.0.2.25") == 0);
	r = find(&set, "mail.example.com", "AAAA");
	CHECK(r != NULL && strcmp(r->value, "2001:db8::25") == 0);
	r = find(&set, "25.2.0.192.in-addr.arpa", "PTR");
	CHECK(r != NULL && r->provider);
	l = r != NULL ? line(r) : NULL;
	CHECK_STR(l, "25.2.0.192.in-addr.arpa. 3600 IN PTR mail.example.com.");
	free(l);
	CHECK(find(&set, "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
		   "PTR") != NULL);
	/* disabled listeners: "." (RFC 6186 3.4) */
	r = find(&set, "_pop3._tcp.example.com", "SRV");
	l = r != NULL ? line(r) : NULL;
	CHECK_STR(l, "_pop3._tcp.example.com. 3600 IN SRV 0 0 0 .");
	free(l);
	CHECK(r != NULL && strstr(r->comment, "listen.pop3 is disabled") != NULL);
	r = find(&set, "_imap._tcp.example.com", "SRV");
	CHECK(r != NULL && strcmp(r->target, ".") == 0);
	/* no https listener: no MTA-STS records */
	CHECK(find(&set, "_mta-sts.example.com", "TXT") == NULL);
	CHECK(!set.https);
	/* smarthost: the SPF comment says to add the provider's include */
	r = find(&set, "example.com", "TXT");
	CHECK(r != NULL && strstr(r->comment, "smtp.provider.example") != NULL &&
	      strstr(r->comment, "include:") != NULL);
	/* TLSA 3 1 1 of the certificate's key */
	CHECK(dnsrec_tlsa_hash(cert, hex, &err) == 0);
	CHECK(strlen(hex) == 64);
	r = find(&set, "_25._tcp.mail.example.com", "TLSA");
	CHECK(r != NULL && strncmp(r->value, "3 1 1 ", 6) == 0 && strcmp(r->value + 6, hex) == 0);
	dnsrec_set_clear(&set);
	config_free(&cfg);
	CHECK(dnsrec_tlsa_hash(key, hex, &err) < 0);    /* a key is no certificate */
	unlink(cert);
	unlink(key);
	rmdir(dir);
	free(cert);
	free(key);
}

static int dmarc(const char *text)
{
	const char *err = NULL;
	return dnsrec_dmarc_syntax(text, strlen(text), &err);
}

static void test_dmarc_syntax(void)
{
	CHECK(dmarc("v=DMARC1; p=quarantine; rua=mailto:d@example.com") == 0);
	CHECK(dmarc("v=DMARC1;p=reject") == 0);
	CHECK(dmarc("v=DMARC1; p=none; sp=reject; pct=100; adkim=s;") == 0);
	CHECK(dmarc("v=DMARC1 ;  p = none ") == 0);
	CHECK(dmarc("") < 0);
	CHECK(dmarc("v=DMARC1") < 0);                  /* no p= */
	CHECK(dmarc("p=none; v=DMARC1") < 0);          /* v first */
	CHECK(dmarc("v=DMARC2; p=none") < 0);
	CHECK(dmarc("v=DMARC1 p=none") < 0);           /* missing ';' */
	CHECK(dmarc("v=DMARC1; p=maybe") < 0);
	CHECK(dmarc("v=DMARC1; p=none; pct=101") < 0);
	CHECK(dmarc("v=DMARC1; p=none; pct=x") < 0);
	CHECK(dmarc("v=DMARC1; p=none; rua=https://x") < 0);
	CHECK(dmarc("v=DMARC1; p=none; garbage") < 0);
	CHECK(dnsrec_dmarc_syntax("v=DMARC1; p=none\0", 17, &(const char *){ NULL }) < 0);
}

static void test_sts_id(void)
{
	const char *err = NULL;
	char *id = NULL;

	CHECK(dnsrec_sts_id("v=STSv1; id=20240101T1", 22, &id, &err) == 1);
	CHECK_STR(id, "20240101T1");
	free(id);
	CHECK(dnsrec_sts_id("v=STSv1;id=abc;", 15, &id, &err) == 1);
	CHECK_STR(id, "abc");
	free(id);
	CHECK(dnsrec_sts_id("v=spf1 -all", 11, &id, &err) == 0 && id == NULL);
	CHECK(dnsrec_sts_id("v=STSv10; id=1", 14, &id, &err) == 0);
	CHECK(dnsrec_sts_id("v=STSv1", 7, &id, &err) == -1 && id == NULL);
	CHECK(dnsrec_sts_id("v=STSv1; id=a-b", 15, &id, &err) == -1 && id == NULL);
	CHECK(dnsrec_sts_id("v=STSv1; id=123456789012345678901234567890123", 45, &id, &err) ==
	      -1);
	CHECK(dnsrec_sts_id("v=STSv1; id=1; id=2", 19, &id, &err) == -1 && id == NULL);
	CHECK(dnsrec_sts_id("v=STSv1; id=1\0", 14, &id, &err) == -1);
}

static void test_rdata_srv(void)
{
	/* 0 1 993 mail.example.com */
	static const unsigned char ok[] = { 0, 0, 0, 1, 0x03, 0xe1, 4, 'm', 'a', 'i', 'l', 7, 'e',
					    'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0 };
	static const unsigned char root[] = { 0, 0, 0, 0, 0, 0, 0 };
	struct dns_srv_rr rr;
	const char *err;

	CHECK(dns_rdata_srv(ok, sizeof(ok), &rr, &err) == 0);
	CHECK(rr.priority == 0 && rr.weight == 1 && rr.port == 993);
	CHECK_STR(rr.target, "mail.example.com");
	free(rr.target);
	CHECK(dns_rdata_srv(root, sizeof(root), &rr, &err) == 0);
	CHECK_STR(rr.target, ".");
	free(rr.target);
	CHECK(dns_rdata_srv(ok, 6, &rr, &err) < 0);                 /* no target */
	CHECK(dns_rdata_srv(ok, sizeof(ok) - 1, &rr, &err) < 0);    /* cut name */
	{
		unsigned char trailing[sizeof(ok) + 1];
		memcpy(trailing, ok, sizeof(ok));
		trailing[sizeof(ok)] = 0;
		CHECK(dns_rdata_srv(trailing, sizeof(trailing), &rr, &err) < 0);
	}
}

static void test_ptr_record(void)
{
	struct dns_address a = { .family = AF_INET6 };
	struct dnsrec r;
	char *l;

	inet_pton(AF_INET6, "2001:db8::1", &a.addr.v6);
	CHECK(dnsrec_ptr(&r, &a, "mail.example.com") == 0);
	l = line(&r);
	CHECK_STR(l, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. "
		  "3600 IN PTR mail.example.com.");
	free(l);
	CHECK(r.provider && r.comment != NULL && strstr(r.comment, "2001:db8::1") != NULL);
	dnsrec_clear(&r);
	a.family = 99;
	CHECK(dnsrec_ptr(&r, &a, "mail.example.com") < 0);
}

int main(void)
{
	RUN(test_txt_quote_short);
	RUN(test_txt_quote_split);
	RUN(test_txt_quote_full_buffer);
	RUN(test_expected_default_config);
	RUN(test_expected_specific_bind);
	RUN(test_dmarc_syntax);
	RUN(test_sts_id);
	RUN(test_rdata_srv);
	RUN(test_ptr_record);
	return unit_summary("dns-records");
}
