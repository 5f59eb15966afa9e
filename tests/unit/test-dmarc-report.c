/* DMARC aggregate reports: the XML builder (golden output, well-formed by
 * python's xml.etree), the parser (XML, gzip, zip, attached to a mail,
 * fed hostile input: DTDs, entities, bombs, junk), the report mail, the
 * rua URIs, and the store tables of schema 7. */
#include "unit.h"
#include "store-test-util.h"

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "mailauth/dmarc-report.h"
#include "queue/dmarcrep.h"
#include "queue/tlsrpt.h"
#include "store/dmarc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#define GOLDEN "tests/unit/golden/dmarc/"

static const struct dmarc_report_eval evals[] = {
	{ "192.0.2.1", "example.org", "example.org", "example.org", "pass",
	  "example.org:pass", true, true, "none", 1 },
	{ "192.0.2.1", "example.org", "example.org", "example.org", "pass",
	  "example.org:pass", true, true, "none", 1 },
	{ "198.51.100.7", "example.org", "evil.test", "evil.test", "fail",
	  "", false, false, "reject", 1 },
	{ "2001:db8::5", "example.org", "lists.test", "lists.test", "softfail",
	  "lists.test:pass example.org:fail", false, false, "quarantine", 2 },
	{ "198.51.100.7", "example.org", "evil.test", "evil.test", "fail",
	  "", false, false, "reject", 3 },
};

static void build(struct buf *out)
{
	struct dmarc_report_out r = {
		.org_name = "mx.example.net", .email = "postmaster@example.net",
		.report_id = "20260101.abc&<def>@mx.example.net",
		.begin = 1767225600, .end = 1767311999, .policy_domain = "example.org",
		.adkim = "r", .aspf = "s", .p = "reject", .sp = "quarantine", .pct = 100,
		.evals = evals, .count = sizeof(evals) / sizeof(evals[0]),
	};
	const char *err = NULL;

	CHECK(dmarc_report_xml(&r, out, &err) == 0);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	buf_init(&b, BUF_UNLIMITED);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	*len = b.len;
	return buf_steal(&b);
}

static void test_xml_golden(void)
{
	struct buf out;
	size_t len = 0;
	char *golden;

	buf_init(&out, BUF_UNLIMITED);
	build(&out);
	if (getenv("DMARC_GOLDEN_WRITE") != NULL) {
		FILE *f = fopen(GOLDEN "report.xml", "wb");
		fwrite(out.data, 1, out.len, f);
		fclose(f);
	}
	golden = slurp(GOLDEN "report.xml", &len);
	CHECK(golden != NULL && len == out.len && memcmp(golden, out.data, len) == 0);
	free(golden);
	/* merged: 3 records (192.0.2.1 x2, 198.51.100.7 x4, 2001:db8::5 x2) */
	CHECK(strstr(buf_cstr(&out), "<count>2</count>") != NULL);
	CHECK(strstr(buf_cstr(&out), "<count>4</count>") != NULL);
	CHECK(strstr(buf_cstr(&out), "abc&amp;&lt;def&gt;") != NULL);
	buf_free(&out);
}

/* python's xml.etree reads the document and finds what we wrote */
static void test_xml_etree(void)
{
	char path[] = "/tmp/tern-dmarcxml-XXXXXX";
	int fd = mkstemp(path);
	struct buf out;
	char cmd[512];
	FILE *p;
	char line[256] = "";

	buf_init(&out, BUF_UNLIMITED);
	build(&out);
	CHECK(fd >= 0 && write(fd, out.data, out.len) == (ssize_t)out.len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c \""
		 "import xml.etree.ElementTree as E; t = E.parse('%s').getroot(); "
		 "rs = t.findall('record'); "
		 "print(t.tag, t.find('report_metadata/report_id').text, "
		 "t.find('policy_published/aspf').text, len(rs), "
		 "sum(int(r.find('row/count').text) for r in rs), "
		 "len(t.findall('record/auth_results/dkim')))\"", path);
	p = popen(cmd, "r");
	CHECK(p != NULL);
	if (p != NULL) {
		if (fgets(line, sizeof(line), p) == NULL)
			line[0] = '\0';
		CHECK(pclose(p) == 0);
	}
	CHECK_STR(line, "feedback 20260101.abc&<def>@mx.example.net s 3 8 3\n");
	unlink(path);
	buf_free(&out);
}

static void check_parsed(const struct dmarc_report_in *r)
{
	CHECK_STR(r->org_name, "mx.example.net");
	CHECK_STR(r->email, "postmaster@example.net");
	CHECK_STR(r->report_id, "20260101.abc&<def>@mx.example.net");
	CHECK_STR(r->domain, "example.org");
	CHECK(r->begin == 1767225600 && r->end == 1767311999);
	CHECK(r->count == 3);
	if (r->count != 3)
		return;
	CHECK_STR(r->rows[0].source_ip, "192.0.2.1");
	CHECK(r->rows[0].count == 2);
	CHECK_STR(r->rows[0].eval_dkim, "pass");
	CHECK_STR(r->rows[0].dkim_result, "pass");
	CHECK_STR(r->rows[0].spf_result, "pass");
	CHECK_STR(r->rows[1].source_ip, "198.51.100.7");
	CHECK(r->rows[1].count == 4);
	CHECK_STR(r->rows[1].disposition, "reject");
	CHECK_STR(r->rows[1].dkim_result, "none");
	CHECK_STR(r->rows[1].spf_result, "fail");
	CHECK_STR(r->rows[2].source_ip, "2001:db8::5");
	CHECK_STR(r->rows[2].dkim_result, "pass");   /* one of two passed */
	CHECK_STR(r->rows[2].eval_spf, "fail");
}

static void test_parse_xml_gzip(void)
{
	struct buf out, gz;
	struct dmarc_report_in r;
	const char *err = NULL;

	buf_init(&out, BUF_UNLIMITED);
	buf_init(&gz, BUF_UNLIMITED);
	build(&out);
	CHECK(dmarc_report_parse(out.data, out.len, &r, &err) == 0);
	check_parsed(&r);
	dmarc_report_clear(&r);
	CHECK(tlsrpt_gzip(out.data, out.len, &gz, &err) == 0);
	CHECK(dmarc_report_parse(gz.data, gz.len, &r, &err) == 0);
	check_parsed(&r);
	dmarc_report_clear(&r);
	/* truncated gzip */
	CHECK(dmarc_report_parse(gz.data, gz.len / 2, &r, &err) < 0);
	buf_free(&out);
	buf_free(&gz);
}

/* a zip archive with a README first and the report second */
static void make_zip(const struct buf *xml, struct buf *zipped)
{
	char path[] = "/tmp/tern-dmarczip-XXXXXX";
	int fd = mkstemp(path), err = 0;
	zip_t *za;
	size_t len = 0;
	char *data;

	close(fd);
	za = zip_open(path, ZIP_TRUNCATE, &err);
	CHECK(za != NULL);
	zip_file_add(za, "README.txt", zip_source_buffer(za, "hello", 5, 0), 0);
	zip_file_add(za, "mx!example.org!1!2.xml", zip_source_buffer(za, xml->data, xml->len, 0), 0);
	CHECK(zip_close(za) == 0);
	data = slurp(path, &len);
	buf_append(zipped, data, len);
	free(data);
	unlink(path);
}

static void test_parse_zip(void)
{
	struct buf out, z;
	struct dmarc_report_in r;
	const char *err = NULL;

	buf_init(&out, BUF_UNLIMITED);
	buf_init(&z, BUF_UNLIMITED);
	build(&out);
	make_zip(&out, &z);
	CHECK(dmarc_report_parse(z.data, z.len, &r, &err) == 0);
	check_parsed(&r);
	dmarc_report_clear(&r);
	/* corrupt archive */
	CHECK(dmarc_report_parse(z.data, 30, &r, &err) < 0);
	buf_free(&out);
	buf_free(&z);
}

static int parse_str(const char *s, const char **err)
{
	struct dmarc_report_in r;
	int rc = dmarc_report_parse(s, strlen(s), &r, err);

	if (rc == 0)
		dmarc_report_clear(&r);
	return rc;
}

static void test_parse_hostile(void)
{
	const char *err = NULL;
	static const char laughs[] =
		"<?xml version=\"1.0\"?><!DOCTYPE feedback [<!ENTITY a \"aaaaaaaaaa\">"
		"<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;\">]>"
		"<feedback><report_metadata><org_name>&c;</org_name><report_id>1</report_id>"
		"</report_metadata><policy_published><domain>x.test</domain></policy_published>"
		"</feedback>";
	static const char xxe[] =
		"<?xml version=\"1.0\"?><!DOCTYPE feedback [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
		"<feedback><report_metadata><org_name>&x;</org_name><report_id>1</report_id>"
		"</report_metadata><policy_published><domain>x.test</domain></policy_published>"
		"</feedback>";
	static const char ok_min[] =
		"<feedback><report_metadata><org_name> Org\r\nX </org_name><report_id>1</report_id>"
		"</report_metadata><policy_published><domain>x.test</domain></policy_published>"
		"<record><row><source_ip>192.0.2.9</source_ip><count>-5</count></row></record>"
		"</feedback>";
	struct dmarc_report_in r;

	CHECK(parse_str(laughs, &err) < 0);
	CHECK(parse_str(xxe, &err) < 0);
	CHECK(parse_str("", &err) < 0);
	CHECK(parse_str("<feedback>", &err) < 0);
	CHECK(parse_str("<other/>", &err) < 0);
	CHECK(parse_str("<feedback></feedback>", &err) < 0);   /* no report_id */
	CHECK(parse_str("\x1f\x8bjunk", &err) < 0);
	CHECK(parse_str("PK\003\004junk", &err) < 0);
	CHECK(dmarc_report_parse(ok_min, strlen(ok_min), &r, &err) == 0);
	CHECK_STR(r.org_name, "Org X");       /* line break made a space, trimmed */
	CHECK(r.count == 1 && r.rows[0].count == 0);   /* a negative count is 0 */
	CHECK_STR(r.count == 1 ? r.rows[0].dkim_result : "", "none");
	dmarc_report_clear(&r);
}

/* a gzip bomb stops at DMARC_REPORT_XML_MAX */
static void test_parse_bomb(void)
{
	size_t n = DMARC_REPORT_XML_MAX + 4096;
	char *zeros = xcalloc(1, n);
	struct buf gz;
	struct dmarc_report_in r;
	const char *err = NULL;

	memset(zeros, ' ', n);
	buf_init(&gz, BUF_UNLIMITED);
	CHECK(tlsrpt_gzip(zeros, n, &gz, &err) == 0);
	free(zeros);
	CHECK(gz.len < 200000);
	CHECK(dmarc_report_parse(gz.data, gz.len, &r, &err) < 0);
	CHECK(err != NULL && strstr(err, "too large") != NULL);
	buf_free(&gz);
}

static void test_mail_roundtrip(void)
{
	struct buf xml, gz, msg, att;
	struct dmarc_report_in r;
	const char *err = NULL;

	buf_init(&xml, BUF_UNLIMITED);
	buf_init(&gz, BUF_UNLIMITED);
	buf_init(&msg, BUF_UNLIMITED);
	buf_init(&att, BUF_UNLIMITED);
	build(&xml);
	CHECK(tlsrpt_gzip(xml.data, xml.len, &gz, &err) == 0);
	struct dmarcrep_mail m = {
		.from = "noreply-dmarc@mx.example.net", .to = "rua@example.org",
		.submitter = "mx.example.net", .policy_domain = "example.org",
		.report_id = "r1@mx.example.net", .begin = 100, .end = 200, .date = 300,
		.gz = gz.data, .gz_len = gz.len,
	};
	CHECK(dmarcrep_mail_build(&m, &msg, &err) == 0);
	CHECK(strstr(buf_cstr(&msg), "Subject: Report Domain: example.org Submitter: "
		     "mx.example.net Report-ID: <r1@mx.example.net>\r\n") != NULL);
	CHECK(strstr(buf_cstr(&msg), "filename=\"mx.example.net!example.org!100!200.xml.gz\"")
	      != NULL);
	CHECK(dmarc_report_from_message(msg.data, msg.len, &att, &err) == 0);
	CHECK(att.len == gz.len && memcmp(att.data, gz.data, gz.len) == 0);
	CHECK(dmarc_report_parse(att.data, att.len, &r, &err) == 0);
	check_parsed(&r);
	dmarc_report_clear(&r);
	/* a header injection attempt is refused */
	m.to = "a@b\r\nBcc: x@y";
	buf_reset(&msg);
	CHECK(dmarcrep_mail_build(&m, &msg, &err) < 0);
	/* a mail without a report */
	buf_reset(&att);
	const char *plain = "Subject: hi\r\n\r\nhello\r\n";
	CHECK(dmarc_report_from_message(plain, strlen(plain), &att, &err) < 0);
	buf_free(&xml);
	buf_free(&gz);
	buf_free(&msg);
	buf_free(&att);
}

static void test_rua(void)
{
	char *a = NULL;
	uint64_t max = 9;
	const char *u1 = "mailto:rua@example.org", *u2 = "mailto:r%75a@x.test!10240";

	CHECK(dmarcrep_rua_parse(u1, strlen(u1), &a, &max) == 0);
	CHECK_STR(a, "rua@example.org");
	CHECK(max == 0);
	free(a);
	CHECK(dmarcrep_rua_parse(u2, strlen(u2), &a, &max) == 0);
	CHECK_STR(a, "rua@x.test");
	CHECK(max == 10240);
	free(a);
	CHECK(dmarcrep_rua_parse("https://x.test/", 15, &a, &max) < 0);
	CHECK(dmarcrep_rua_parse("mailto:nobody", 13, &a, &max) < 0);
	CHECK(dmarcrep_rua_parse("mailto:a%0d%0a@x", 16, &a, &max) < 0);
	CHECK(dmarcrep_rua_parse("mailto:a@x!1k", 13, &a, &max) < 0);
}

struct collect {
	int n;
	int64_t last_id;
	char ip[64];
	int64_t total, spf, dkim, aligned;
};

static int collect_result(void *ctx, const struct store_dmarc_result *r)
{
	struct collect *c = ctx;

	c->n++;
	c->last_id = r->id;
	return 0;
}

static int collect_summary(void *ctx, const struct store_dmarc_summary *s)
{
	struct collect *c = ctx;

	if (c->n++ == 0) {
		snprintf(c->ip, sizeof(c->ip), "%s", s->source_ip);
		c->total = s->total;
		c->spf = s->spf_pass;
		c->dkim = s->dkim_pass;
		c->aligned = s->aligned_pass;
	}
	return 0;
}

static void test_store(void)
{
	char dirbuf[64];
	const char *dir = store_test_mkdtemp(dirbuf, "/tmp/tern-dmarc-XXXXXX");
	struct store *s = store_test_open(dir, NULL);
	const char *err = NULL;
	struct store_dmarc_result r = {
		.day = 20000, .policy_domain = "Example.ORG", .from_domain = "example.org",
		.source_ip = "192.0.2.1", .envelope_from = "example.org", .spf_domain = "example.org",
		.spf_result = "pass", .dkim = "example.org:pass", .spf_aligned = true,
		.dkim_aligned = true, .disposition = "none", .policy = "r r none none 100",
		.rua = "mailto:rua@example.org",
	};
	struct collect c = { 0 };

	CHECK(store_dmarc_add_sync(s, &r, &err) == 0);
	r.day = 20001;
	CHECK(store_dmarc_add_sync(s, &r, &err) == 0);
	r.source_ip = "a\r\nb";
	CHECK(store_dmarc_add_sync(s, &r, &err) < 0);
	CHECK(store_dmarc_list(s, 20000, collect_result, &c, &err) == 0 && c.n == 1);
	CHECK(store_dmarc_mark(s, "example.org", c.last_id, 20000, &err) == 0);
	memset(&c, 0, sizeof(c));
	CHECK(store_dmarc_list(s, 30000, collect_result, &c, &err) == 0 && c.n == 1);
	CHECK(store_dmarc_prune(s, 20002, &err) == 0);
	memset(&c, 0, sizeof(c));
	CHECK(store_dmarc_list(s, 30000, collect_result, &c, &err) == 0 && c.n == 0);

	/* received reports: duplicates ignored, summary per source */
	struct store_dmarc_row rows[] = {
		{ "198.51.100.7", 5, "none", "pass", "fail", "example.org", "pass", "fail" },
		{ "198.51.100.7", 3, "reject", "fail", "fail", "example.org", "fail", "pass" },
		{ "192.0.2.1", 1, "none", "pass", "pass", "example.org", "pass", "pass" },
	};
	time_t now = clock_now();
	struct store_dmarc_report rep = {
		.org_name = "google.com", .email = "noreply@google.com", .report_id = "123",
		.domain = "example.org", .date_begin = now - 86400, .date_end = now,
		.rows = rows, .count = 3,
	};
	CHECK(store_dmarc_import(s, &rep, &err) == 1);
	CHECK(store_dmarc_import(s, &rep, &err) == 0);
	memset(&c, 0, sizeof(c));
	CHECK(store_dmarc_summary(s, "EXAMPLE.org", now - 7 * 86400, collect_summary, &c,
				  &err) == 0);
	CHECK(c.n == 2);
	CHECK_STR(c.ip, "198.51.100.7");
	CHECK(c.total == 8 && c.spf == 3 && c.dkim == 5 && c.aligned == 5);
	memset(&c, 0, sizeof(c));
	CHECK(store_dmarc_summary(s, "example.org", now + 10, collect_summary, &c, &err) == 0);
	CHECK(c.n == 0);
	store_close(&s);
	store_test_rm_rf(dir);
}

/* peer bytes that are not UTF-8 never make the document ill-formed */
static void test_xml_utf8(void)
{
	struct dmarc_report_eval e = { "192.0.2.1", "b\xc3\xa9" "b.test", "x\xff" "y.test", "x.test",
				       "none", "", false, false, "none", 1 };
	struct dmarc_report_out r = {
		.org_name = "o", .email = "e@o", .report_id = "1", .policy_domain = "b.test",
		.adkim = "r", .aspf = "r", .p = "none", .sp = "none", .pct = 100,
		.evals = &e, .count = 1,
	};
	struct dmarc_report_in in;
	struct buf out;
	const char *err = NULL;

	buf_init(&out, BUF_UNLIMITED);
	CHECK(dmarc_report_xml(&r, &out, &err) == 0);
	CHECK(strstr(buf_cstr(&out), "<envelope_from>x?y.test</envelope_from>") != NULL);
	CHECK(dmarc_report_parse(out.data, out.len, &in, &err) == 0);
	CHECK_STR(in.count == 1 ? in.rows[0].header_from : "", "b\xc3\xa9" "b.test");
	dmarc_report_clear(&in);
	buf_free(&out);
}

static void test_config(void)
{
	char *error = NULL;
	struct config *cfg = config_parse_string("hostname = \"mx.example.net\";\n", "/tmp/t.conf",
						 &error);

	CHECK(cfg != NULL && cfg->dmarc_reports.enabled && cfg->dmarc_reports.send_hour == 1 &&
	      cfg->dmarc_reports.keep_days == 14 && cfg->dmarc_reports.sender == NULL);
	config_free(&cfg);
	cfg = config_parse_string("hostname = \"h\";\ndmarc_reports = { enabled = false;\n"
				  "  organization = \"Org\"; contact = \"a@b.test\";\n"
				  "  sender = \"r@b.test\"; send_hour = 5; keep_days = 30; };\n",
				  "/tmp/t.conf", &error);
	CHECK(cfg != NULL && !cfg->dmarc_reports.enabled && cfg->dmarc_reports.send_hour == 5 &&
	      cfg->dmarc_reports.keep_days == 30);
	CHECK(cfg != NULL && strcmp(cfg->dmarc_reports.sender, "r@b.test") == 0 &&
	      strcmp(cfg->dmarc_reports.organization, "Org") == 0);
	config_free(&cfg);
	free(error);
	error = NULL;
	cfg = config_parse_string("hostname = \"h\";\ndmarc_reports = { sender = \"not one\"; };\n",
				  "/tmp/t.conf", &error);
	CHECK(cfg == NULL && error != NULL && strstr(error, "dmarc_reports.sender") != NULL &&
	      strstr(error, "/tmp/t.conf:2") != NULL);
	free(error);
	error = NULL;
	cfg = config_parse_string("hostname = \"h\";\ndmarc_reports = { send_hour = 24; };\n",
				  "/tmp/t.conf", &error);
	CHECK(cfg == NULL && error != NULL);
	free(error);
}

int main(void)
{
	RUN(test_config);
	RUN(test_xml_golden);
	RUN(test_xml_etree);
	RUN(test_xml_utf8);
	RUN(test_parse_xml_gzip);
	RUN(test_parse_zip);
	RUN(test_parse_hostile);
	RUN(test_parse_bomb);
	RUN(test_mail_roundtrip);
	RUN(test_rua);
	RUN(test_store);
	return unit_summary("dmarc-report");
}
