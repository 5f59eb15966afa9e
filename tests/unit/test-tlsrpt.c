/* Unit tests for SMTP TLS Reporting (RFC 8460): the _smtp._tls record
 * parser (byte-exact cases, bad records, limits), the JSON report builder
 * (golden, and valid for Python's json), gzip, the report mail, the TLS
 * failure classification, and the store's tls_results through
 * store/tlsrpt.h (add, list, mark with concurrent growth, prune). */
#include "unit.h"
#include "store-test-util.h"

#include "lib/config.h"
#include "queue/tlsrpt.h"
#include "store/tlsrpt.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static int parse(const char *s, struct tlsrpt_record *r)
{
	const char *err = NULL;
	int rc = tlsrpt_record_parse(s, strlen(s), r, &err);

	if (rc < 0 && err == NULL)
		return -99;   /* an error must say why */
	return rc;
}

static void test_record_valid(void)
{
	struct tlsrpt_record r;

	CHECK(parse("v=TLSRPTv1; rua=mailto:reports@example.com", &r) == 1);
	CHECK(r.rua_count == 1);
	CHECK(r.rua[0].kind == TLSRPT_URI_MAILTO);
	CHECK_STR(r.rua[0].value, "reports@example.com");
	tlsrpt_record_clear(&r);

	CHECK(parse("v=TLSRPTv1;rua=https://reporting.example.com/v1/tlsrpt", &r) == 1);
	CHECK(r.rua_count == 1 && r.rua[0].kind == TLSRPT_URI_HTTPS);
	CHECK_STR(r.rua[0].value, "https://reporting.example.com/v1/tlsrpt");
	tlsrpt_record_clear(&r);

	/* two URIs, spaces around the comma, a trailing delimiter, an extension */
	CHECK(parse("v=TLSRPTv1 ; rua=mailto:a@b.test , https://r.b.test:8443/x ; ext-1=v;", &r) == 1);
	CHECK(r.rua_count == 2);
	CHECK_STR(r.rua[0].value, "a@b.test");
	CHECK_STR(r.rua[1].value, "https://r.b.test:8443/x");
	tlsrpt_record_clear(&r);

	/* hfields ignored, percent-decoding, an unknown scheme skipped */
	CHECK(parse("v=TLSRPTv1; rua=mailto:tls%2Brpt@b.test?subject=x,ftp://x.test/", &r) == 1);
	CHECK(r.rua_count == 1);
	CHECK_STR(r.rua[0].value, "tls+rpt@b.test");
	tlsrpt_record_clear(&r);

	/* only unknown schemes: valid, nothing to send to */
	CHECK(parse("v=TLSRPTv1; rua=ftp://x.test/", &r) == 1);
	CHECK(r.rua_count == 0);
	tlsrpt_record_clear(&r);
}

static void test_record_not_tlsrpt(void)
{
	struct tlsrpt_record r;

	CHECK(parse("v=spf1 -all", &r) == 0);
	CHECK(parse("", &r) == 0);
	CHECK(parse("v=TLSRPTv10; rua=mailto:a@b.test", &r) == 0);
	CHECK(parse("v=tlsrptv1; rua=mailto:a@b.test", &r) == 0);   /* %s: case-sensitive */
	CHECK(parse(" v=TLSRPTv1; rua=mailto:a@b.test", &r) == 0);
}

static void test_record_bad(void)
{
	struct tlsrpt_record r;
	const char *bad[] = {
		"v=TLSRPTv1",                                   /* no rua */
		"v=TLSRPTv1;",                                  /* no rua */
		"v=TLSRPTv1; ext=1",                            /* no rua */
		"v=TLSRPTv1 rua=mailto:a@b.test",               /* no ';' */
		"v=TLSRPTv1; rua=mailto:a@b.test; rua=mailto:c@d.test",  /* twice */
		"v=TLSRPTv1; rua=",                             /* empty URI */
		"v=TLSRPTv1; rua=mailto:a@b.test,",             /* empty URI */
		"v=TLSRPTv1; rua=mailto:nobody",                /* no domain */
		"v=TLSRPTv1; rua=mailto:a@b.test%",             /* bad percent */
		"v=TLSRPTv1; rua=mailto:a%0d%0aBcc:x@b.test",   /* CR LF smuggled */
		"v=TLSRPTv1; rua=mailto:a@-",                   /* bad domain? label '-' ok; see below */
		"v=TLSRPTv1; rua=https://",                     /* no host */
		"v=TLSRPTv1; rua=https://h.test:0/x",           /* bad port */
		"v=TLSRPTv1; rua=https://h.test:99999/x",       /* bad port */
		"v=TLSRPTv1; rua=https://h_x.test/",            /* bad host */
		"v=TLSRPTv1; rua=notauri",                      /* no scheme */
		"v=TLSRPTv1; rua mailto:a@b.test",              /* no '=' */
		"v=TLSRPTv1; rua=mailto:a@b.test; =x",          /* empty name */
		"v=TLSRPTv1; rua=mailto:a@b.test; e=",          /* empty value */
		"v=TLSRPTv1; rua=mailto:a@b.test; e=a b",       /* space in value */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i], &r);
		if (i == 10) {
			/* "-" is a syntactically odd but accepted label */
			if (rc == 1)
				tlsrpt_record_clear(&r);
			continue;
		}
		if (rc != -1)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		CHECK(rc == -1);
	}
	/* NUL inside */
	const char nul[] = "v=TLSRPTv1; rua=mailto:a@b.test\0x";
	const char *err = NULL;
	CHECK(tlsrpt_record_parse(nul, sizeof(nul) - 1, &r, &err) == -1);
}

static void test_record_limits(void)
{
	struct tlsrpt_record r;
	struct buf b;

	/* more URIs than kept: the first TLSRPT_RUA_MAX */
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "v=TLSRPTv1; rua=");
	for (int i = 0; i < 20; i++)
		buf_printf(&b, "%smailto:r%d@b.test", i ? "," : "", i);
	CHECK(parse(buf_cstr(&b), &r) == 1);
	CHECK(r.rua_count == TLSRPT_RUA_MAX);
	CHECK_STR(r.rua[TLSRPT_RUA_MAX - 1].value, "r7@b.test");
	tlsrpt_record_clear(&r);

	/* a record over TLSRPT_RECORD_MAX */
	buf_reset(&b);
	buf_append_str(&b, "v=TLSRPTv1; rua=mailto:a@b.test; x=");
	for (int i = 0; i < TLSRPT_RECORD_MAX; i++)
		buf_append_str(&b, "a");
	CHECK(parse(buf_cstr(&b), &r) == -1);

	/* a URI over TLSRPT_URI_MAX */
	buf_reset(&b);
	buf_append_str(&b, "v=TLSRPTv1; rua=https://h.test/");
	for (int i = 0; i < TLSRPT_URI_MAX; i++)
		buf_append_str(&b, "a");
	CHECK(parse(buf_cstr(&b), &r) == -1);

	/* too many fields */
	buf_reset(&b);
	buf_append_str(&b, "v=TLSRPTv1; rua=mailto:a@b.test");
	for (int i = 0; i < TLSRPT_FIELDS_MAX + 1; i++)
		buf_printf(&b, "; e%d=1", i);
	CHECK(parse(buf_cstr(&b), &r) == -1);
	buf_free(&b);
}

/* ---- the report ---- */

static const struct store_tls_result ROWS[] = {
	{ 20000, "b.test", "sts", "version: STSv1\nmode: enforce\nmx: mx.b.test\nmax_age: 86400",
	  "mx.b.test", "192.0.2.1", "", "", 3, false },
	{ 20000, "b.test", "sts", "version: STSv1\nmode: enforce\nmx: mx.b.test\nmax_age: 86400",
	  "mx.b.test", "192.0.2.1", "certificate-expired", "certificate has expired", 2, false },
	{ 20001, "b.test", "sts", "version: STSv1\nmode: enforce\nmx: mx.b.test\nmax_age: 86400",
	  "mx.b.test", "192.0.2.1", "certificate-expired", "certificate has expired", 1, false },
	{ 20000, "b.test", "tlsa", "3 1 1 abcd", "mx2.b.test", "192.0.2.2", "", "", 4, false },
	{ 20000, "b.test", "no-policy-found", "", "mx3.b.test", "192.0.2.3",
	  "starttls-not-supported", "", 1, false },
};

static const char GOLDEN[] =
	"{\"organization-name\":\"Example Org\","
	"\"date-range\":{\"start-datetime\":\"2024-10-04T00:00:00Z\","
	"\"end-datetime\":\"2024-10-05T23:59:59Z\"},"
	"\"contact-info\":\"postmaster@a.test\",\"report-id\":\"r1@a.test\","
	"\"policies\":["
	"{\"policy\":{\"policy-type\":\"sts\",\"policy-string\":[\"version: STSv1\","
	"\"mode: enforce\",\"mx: mx.b.test\",\"max_age: 86400\"],\"policy-domain\":\"b.test\","
	"\"mx-host\":[\"mx.b.test\"]},"
	"\"summary\":{\"total-successful-session-count\":3,\"total-failure-session-count\":3},"
	"\"failure-details\":[{\"result-type\":\"certificate-expired\",\"receiving-ip\":\"192.0.2.1\","
	"\"receiving-mx-hostname\":\"mx.b.test\",\"failed-session-count\":3,"
	"\"failure-reason-code\":\"certificate has expired\"}]},"
	"{\"policy\":{\"policy-type\":\"tlsa\",\"policy-string\":[\"3 1 1 abcd\"],"
	"\"policy-domain\":\"b.test\",\"mx-host\":[\"mx2.b.test\"]},"
	"\"summary\":{\"total-successful-session-count\":4,\"total-failure-session-count\":0}},"
	"{\"policy\":{\"policy-type\":\"no-policy-found\",\"policy-domain\":\"b.test\"},"
	"\"summary\":{\"total-successful-session-count\":0,\"total-failure-session-count\":1},"
	"\"failure-details\":[{\"result-type\":\"starttls-not-supported\",\"receiving-ip\":\"192.0.2.3\","
	"\"receiving-mx-hostname\":\"mx3.b.test\",\"failed-session-count\":1}]}]}";

static char *report(void)
{
	const char *err = NULL;
	struct tlsrpt_report p = {
		.organization = "Example Org", .contact = "postmaster@a.test", .report_id = "r1@a.test",
		.policy_domain = "b.test", .start = 20000 * 86400, .end = 20002 * 86400 - 1,
		.rows = ROWS, .count = sizeof(ROWS) / sizeof(ROWS[0]),
	};
	return tlsrpt_report_json(&p, &err);
}

static void test_report_golden(void)
{
	char *j = report();

	CHECK_STR(j, GOLDEN);
	free(j);
}

static void test_report_python_json(void)
{
	char *j = report();
	char path[] = "/tmp/tern-tlsrpt-json-XXXXXX";
	int fd = mkstemp(path);
	char cmd[256];

	CHECK(fd >= 0);
	CHECK(write(fd, j, strlen(j)) == (ssize_t)strlen(j));
	close(fd);
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1]));"
		 " assert r[\"policies\"][0][\"summary\"][\"total-failure-session-count\"]==3'"
		 " %s 2>/dev/null", path);
	CHECK(system(cmd) == 0);
	unlink(path);
	free(j);
}

static void test_gzip_roundtrip(void)
{
	char *j = report();
	struct buf gz;
	const char *err = NULL;
	unsigned char out[8192];
	z_stream z;

	buf_init(&gz, BUF_UNLIMITED);
	CHECK(tlsrpt_gzip(j, strlen(j), &gz, &err) == 0);
	CHECK(gz.len > 18 && (unsigned char)gz.data[0] == 0x1f && (unsigned char)gz.data[1] == 0x8b);
	memset(&z, 0, sizeof(z));
	CHECK(inflateInit2(&z, 15 + 16) == Z_OK);
	z.next_in = (unsigned char *)gz.data;
	z.avail_in = (uInt)gz.len;
	z.next_out = out;
	z.avail_out = sizeof(out);
	CHECK(inflate(&z, Z_FINISH) == Z_STREAM_END);
	CHECK(z.total_out == strlen(j) && memcmp(out, j, strlen(j)) == 0);
	inflateEnd(&z);
	buf_free(&gz);
	free(j);
}

static void test_mail(void)
{
	struct buf m;
	const char *err = NULL;
	struct tlsrpt_mail mail = {
		.from = "noreply-tlsrpt@a.test", .to = "tlsrpt@b.test", .submitter = "mail.a.test",
		.policy_domain = "b.test", .report_id = "r1@mail.a.test",
		.start = 1728000000, .end = 1728086399, .date = 1728090000,
		.gz = "\x1f\x8b" "abc", .gz_len = 5,
	};

	buf_init(&m, BUF_UNLIMITED);
	CHECK(tlsrpt_mail_build(&mail, &m, &err) == 0);
	const char *s = buf_cstr(&m);
	CHECK(strstr(s, "Subject: Report Domain: b.test Submitter: mail.a.test "
		     "Report-ID: <r1@mail.a.test>\r\n") != NULL);
	CHECK(strstr(s, "\r\nTLS-Report-Domain: b.test\r\n") != NULL);
	CHECK(strstr(s, "\r\nTLS-Report-Submitter: mail.a.test\r\n") != NULL);
	CHECK(strstr(s, "Content-Type: multipart/report; report-type=\"tlsrpt\";") != NULL);
	CHECK(strstr(s, "Content-Type: application/tlsrpt+gzip\r\n") != NULL);
	CHECK(strstr(s, "filename=\"mail.a.test!b.test!1728000000!1728086399.json.gz\"") != NULL);
	CHECK(strstr(s, "\r\nH4thYmM=\r\n") != NULL);   /* base64 of the 5 bytes */
	/* bare LF nowhere */
	for (size_t i = 0; i < m.len; i++)
		if (m.data[i] == '\n' && (i == 0 || m.data[i - 1] != '\r')) {
			CHECK(!"bare LF");
			break;
		}
	buf_reset(&m);
	mail.policy_domain = "b.test\r\nBcc: x@y.test";
	CHECK(tlsrpt_mail_build(&mail, &m, &err) == -1);
	buf_free(&m);
}

static void test_classify(void)
{
	CHECK_STR(tlsrpt_classify_tls_failure("TLS handshake failed: certificate verification: "
					      "Hostname mismatch", false), TLSRPT_CERT_HOST_MISMATCH);
	CHECK_STR(tlsrpt_classify_tls_failure("TLS handshake failed: certificate verification: "
					      "certificate has expired", false), TLSRPT_CERT_EXPIRED);
	CHECK_STR(tlsrpt_classify_tls_failure("TLS handshake failed: certificate verification: "
					      "self-signed certificate", false),
		  TLSRPT_CERT_NOT_TRUSTED);
	CHECK_STR(tlsrpt_classify_tls_failure("TLS handshake failed: certificate verification: "
					      "No matching DANE TLSA records", true),
		  TLSRPT_TLSA_INVALID);
	CHECK_STR(tlsrpt_classify_tls_failure("TLS handshake failed: connection closed", false),
		  TLSRPT_VALIDATION_FAILURE);
	CHECK_STR(tlsrpt_classify_tls_failure(NULL, true), TLSRPT_VALIDATION_FAILURE);
}

/* ---- the store ---- */

struct collect {
	int64_t total;
	size_t rows, reported;
};

static int collect_row(void *ctx, const struct store_tls_result *r)
{
	struct collect *c = ctx;

	c->rows++;
	c->total += r->count;
	c->reported += r->reported;
	return 0;
}

static struct collect count_rows(struct store *s, bool unreported)
{
	struct collect c = { 0 };
	struct store_tlsrpt_filter f = { .unreported_only = unreported, .max_day = -1 };
	const char *err = NULL;

	CHECK(store_tlsrpt_list(s, &f, collect_row, &c, &err) == 0);
	return c;
}

static void test_store(void)
{
	char dirbuf[64];
	const char *dir = store_test_mkdtemp(dirbuf, "/tmp/tern-tlsrpt-XXXXXX");
	struct store *s = store_test_open(dir, &(struct store_options){ 0 });
	const char *err = NULL;
	struct store_tls_result bad = ROWS[0];

	CHECK(store_tlsrpt_add_sync(s, ROWS, 5, &err) == 0);
	CHECK(store_tlsrpt_add_sync(s, ROWS, 1, &err) == 0);   /* adds up */
	struct collect c = count_rows(s, true);
	CHECK(c.rows == 5 && c.total == 14);

	/* CR/LF in a field is refused */
	bad.mx_host = "mx\r\n.b.test";
	CHECK(store_tlsrpt_add_sync(s, &bad, 1, &err) == -1);

	/* mark: a row that grew since the listing keeps the difference */
	struct store_tls_result listed[5];
	memcpy(listed, ROWS, sizeof(listed));
	listed[0].count = 6;    /* as it is now (3 + 3) */
	CHECK(store_tlsrpt_add_sync(s, ROWS + 3, 1, &err) == 0);   /* row 3 grows by 4 */
	CHECK(store_tlsrpt_mark(s, listed, 5, &err) == 0);
	c = count_rows(s, true);
	CHECK(c.rows == 1 && c.total == 4);
	c = count_rows(s, false);
	CHECK(c.reported == 4);

	/* a new count into a reported row starts it again */
	CHECK(store_tlsrpt_add_sync(s, ROWS, 1, &err) == 0);
	c = count_rows(s, true);
	CHECK(c.rows == 2 && c.total == 7);

	/* prune */
	int64_t n = 0;
	CHECK(store_tlsrpt_prune(s, 20001, &n, &err) == 0);
	CHECK(n == 4);
	c = count_rows(s, false);
	CHECK(c.rows == 1);
	store_close(&s);
	store_test_rm_rf(dir);
}

/* ---- the tlsrpt config group ---- */

static void test_config(void)
{
	char *error = NULL;
	struct config *cfg = config_parse_string("hostname = \"mail.a.test\";\n", "/tmp/t.conf",
						 &error);

	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK(cfg->tlsrpt.enabled);
		CHECK(cfg->tlsrpt.send_hour == 1 && cfg->tlsrpt.keep_days == 14);
		CHECK(cfg->tlsrpt.sender == NULL && cfg->tlsrpt.organization == NULL);
		config_free(&cfg);
	}
	cfg = config_parse_string("hostname = \"mail.a.test\";\n"
				  "tlsrpt = { enabled = false; organization = \"Org\";\n"
				  "  sender = \"r@a.test\"; send_hour = 23; ca_file = \"ca.pem\"; };\n",
				  "/tmp/t.conf", &error);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK(!cfg->tlsrpt.enabled && cfg->tlsrpt.send_hour == 23);
		CHECK_STR(cfg->tlsrpt.organization, "Org");
		CHECK_STR(cfg->tlsrpt.sender, "r@a.test");
		CHECK_STR(cfg->tlsrpt.ca_file, "/tmp/ca.pem");
		config_free(&cfg);
	}
	const char *bad[] = {
		"tlsrpt = { send_hour = 24; };",
		"tlsrpt = { sender = \"nobody\"; };",
		"tlsrpt = { contact = \"a\\nb\"; };",
		"tlsrpt = { keep_days = 0; };",
		"tlsrpt = { colour = 1; };",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *text = xasprintf("hostname = \"mail.a.test\";\n%s\n", bad[i]);
		error = NULL;
		cfg = config_parse_string(text, "/tmp/t.conf", &error);
		CHECK(cfg == NULL);
		CHECK(error != NULL && strncmp(error, "/tmp/t.conf:2:", 14) == 0);
		if (cfg == NULL && (error == NULL || strncmp(error, "/tmp/t.conf:2:", 14) != 0))
			fprintf(stderr, "  %s -> %s\n", bad[i], error ? error : "(none)");
		config_free(&cfg);
		free(error);
		free(text);
	}
}

int main(void)
{
	RUN(test_record_valid);
	RUN(test_record_not_tlsrpt);
	RUN(test_record_bad);
	RUN(test_record_limits);
	RUN(test_report_golden);
	RUN(test_report_python_json);
	RUN(test_gzip_roundtrip);
	RUN(test_mail);
	RUN(test_classify);
	RUN(test_store);
	RUN(test_config);
	return unit_summary("tlsrpt");
}
