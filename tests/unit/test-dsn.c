/* mail/dsn: the DSN builder against golden files, with a fixed clock,
 * Message-ID and boundary: tests/unit/data/dsn/NAME.ref is the exact
 * expected message (CRLF); the originals are data/dsn/original*.eml.
 * TERN_GOLDEN_UPDATE=1 rewrites the .ref files (review the diff!).
 * Also: the MIME structure of every result (through mail/mime), line
 * lengths and line ends, sanitising of hostile replies, the refusals
 * (null sender) and dsn_should_notify(). */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mail/dsn.h"
#include "mail/header.h"
#include "mail/mime.h"
#include "unit.h"

#define DATA "tests/unit/data/dsn/"

/* Sat, 28 Nov 2026 ... UTC */
#define T_ARRIVAL 1795856400    /* 09:00:00 */
#define T_ATTEMPT 1795870800    /* 13:00:00 */
#define T_NOW 1795870805
#define T_GIVE_UP 1796288400    /* 5 days after arrival */

static char *read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	buf_init(&b, BUF_UNLIMITED);
	if (f == NULL) {
		*len_r = 0;
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	*len_r = b.len;
	return buf_steal(&b);
}

static void params_init(struct dsn_params *p, const struct dsn_recipient *r, size_t n,
			const char *original, size_t original_len)
{
	memset(p, 0, sizeof(*p));
	p->hostname = "mx.example.org";
	p->sender = "alice@example.org";
	p->arrival = T_ARRIVAL;
	p->rcpts = r;
	p->rcpt_count = n;
	p->original = original;
	p->original_len = original_len;
	p->now = T_NOW;
	p->message_id = "20261128130005.dsn.4f3a2b1c";
	p->boundary = "=_tern_golden_boundary";
}

/* Every line ends in CRLF and has at most 998 bytes; no NUL; no bare CR
 * or LF anywhere. */
static bool lines_ok(const char *m, size_t len)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (m[i] == '\0')
			return false;
		if (m[i] == '\r') {
			if (i + 1 >= len || m[i + 1] != '\n')
				return false;
			if (i - start > 998)
				return false;
			i++;
			start = i + 1;
		} else if (m[i] == '\n') {
			return false;
		}
	}
	return start == len;
}

/* multipart/report with the report-type, and the expected part types */
static void check_structure(const char *m, size_t len, const char *report_type,
			    const char *type3)
{
	struct mime_part *root = NULL;
	const char *err = NULL;

	CHECK(mime_parse(m, len, &root, &err) == 0);
	if (root == NULL)
		return;
	CHECK_STR(root->type, "multipart");
	CHECK_STR(root->subtype, "report");
	CHECK_STR(mime_param_get(root->params, root->n_params, "report-type"), report_type);
	CHECK(root->n_children == (type3 != NULL ? 3u : 2u));
	struct mime_part *c = root->children;
	if (c != NULL) {
		CHECK_STR(c->type, "text");
		CHECK_STR(c->subtype, "plain");
		c = c->next;
	}
	if (c != NULL) {
		char want[64];
		snprintf(want, sizeof(want), "%s", report_type);
		CHECK_STR(c->type, "message");
		CHECK_STR(c->subtype, want);
		c = c->next;
	}
	if (type3 != NULL && c != NULL) {
		char *t = malloc(strlen(c->type) + strlen(c->subtype) + 2);
		sprintf(t, "%s/%s", c->type, c->subtype);
		CHECK_STR(t, type3);
		free(t);
	}
	mime_part_free(&root);
}

/* Build, compare with DATA NAME.ref (or rewrite it), check lines. */
static void golden(const char *name, const struct dsn_params *p)
{
	struct buf out;
	const char *err = NULL;
	char path[256];
	size_t ref_len;

	buf_init(&out, BUF_UNLIMITED);
	CHECK(dsn_build(p, &out, &err) == 0);
	CHECK(lines_ok(out.data, out.len));
	snprintf(path, sizeof(path), DATA "%s.ref", name);
	if (getenv("TERN_GOLDEN_UPDATE") != NULL) {
		FILE *f = fopen(path, "wb");
		CHECK(f != NULL);
		if (f != NULL) {
			fwrite(out.data, 1, out.len, f);
			fclose(f);
		}
	}
	char *ref = read_file(path, &ref_len);
	CHECK(ref != NULL);
	if (ref != NULL && (ref_len != out.len || memcmp(ref, out.data, out.len) != 0)) {
		CHECK(!"golden mismatch");
		fprintf(stderr, "  golden mismatch: %s (got %zu bytes, want %zu)\n", name,
			out.len, ref_len);
	}
	free(ref);
	buf_free(&out);
}

static char *original(size_t *len_r)
{
	char *m = read_file(DATA "original.eml", len_r);
	CHECK(m != NULL);
	return m;
}

static void test_failed_remote(void)
{
	size_t len;
	char *orig = original(&len);
	struct dsn_recipient r = {
		.address = "bob@example.net",
		.action = DSN_ACTION_FAILED,
		.status = "5.1.1",
		.remote_mta = "mx1.example.net",
		.reply = "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
			 "550-5.1.1 Please try double-checking the recipient's email address for\r\n"
			 "550 5.1.1 typos or unnecessary spaces.",
		.last_attempt = T_ATTEMPT,
	};
	struct dsn_params p;

	params_init(&p, &r, 1, orig, len);
	golden("failed-remote", &p);
	struct buf out;
	const char *err;
	buf_init(&out, BUF_UNLIMITED);
	CHECK(dsn_build(&p, &out, &err) == 0);
	check_structure(out.data, out.len, "delivery-status", "text/rfc822-headers");
	struct header_field f;
	CHECK(header_find(out.data, out.len, "Subject", &f, NULL) == 1);
	CHECK(slice_eq(f.value, SLICE_C(" Undelivered Mail Returned to Sender")));
	CHECK(header_find(out.data, out.len, "Auto-Submitted", &f, NULL) == 1);
	CHECK(strstr(out.data, "Diagnostic-Code: smtp; 550-5.1.1 The email account") != NULL);
	/* the original body is not returned with RET=HDRS */
	CHECK(strstr(out.data, "shall we meet") == NULL);
	CHECK(strstr(out.data, "Subject: Lunch on Friday?\r\n") != NULL);
	buf_free(&out);
	free(orig);
}

static void test_delayed(void)
{
	size_t len;
	char *orig = original(&len);
	struct dsn_recipient r = {
		.address = "carol@example.com",
		.action = DSN_ACTION_DELAYED,
		.status = "4.4.1",
		.reason = "connect to mx.example.com[192.0.2.25]:25: Connection refused",
		.last_attempt = T_ATTEMPT,
		.will_retry_until = T_GIVE_UP,
	};
	struct dsn_params p;

	params_init(&p, &r, 1, orig, len);
	p.ret = DSN_RET_HDRS;
	golden("delayed", &p);
	free(orig);
}

static void test_mixed(void)
{
	size_t len;
	char *orig = original(&len);
	struct dsn_recipient r[] = {
		{ .address = "bob@example.net", .action = DSN_ACTION_DELIVERED,
		  .remote_mta = "mx1.example.net", .reply = "250 2.0.0 OK queued as 7A1B2C",
		  .last_attempt = T_ATTEMPT },
		{ .address = "carol@example.com", .action = DSN_ACTION_DELAYED,
		  .reason = "Host or domain name not found (temporary DNS failure)",
		  .status = "4.4.3", .last_attempt = T_ATTEMPT, .will_retry_until = T_GIVE_UP },
		{ .address = "nobody@example.org", .action = DSN_ACTION_FAILED, .status = "5.1.1",
		  .reason = "No such user here" },
		{ .address = "dave@example.edu", .action = DSN_ACTION_RELAYED,
		  .remote_mta = "relay.example.edu", .reply = "250 Ok",
		  .last_attempt = T_ATTEMPT },
	};
	struct dsn_params p;

	params_init(&p, r, 4, orig, len);
	golden("mixed", &p);
	free(orig);
}

static void test_success(void)
{
	size_t len;
	char *orig = original(&len);
	struct dsn_recipient r = {
		.address = "bob@example.net", .action = DSN_ACTION_DELIVERED,
		.remote_mta = "mx1.example.net", .reply = "250 2.0.0 Ok: queued",
		.last_attempt = T_ATTEMPT,
	};
	struct dsn_params p;
	struct buf out;
	const char *err;
	struct header_field f;

	params_init(&p, &r, 1, orig, len);
	buf_init(&out, BUF_UNLIMITED);
	CHECK(dsn_build(&p, &out, &err) == 0);
	CHECK(header_find(out.data, out.len, "Subject", &f, NULL) == 1);
	CHECK(slice_eq(f.value, SLICE_C(" Successful Mail Delivery Report")));
	CHECK(strstr(out.data, "Action: delivered\r\nStatus: 2.0.0\r\n") != NULL);
	buf_free(&out);
	free(orig);
}

static void test_ret_full(void)
{
	size_t len;
	char *orig = original(&len);
	struct dsn_recipient r = {
		.address = "bob@example.net", .action = DSN_ACTION_FAILED, .status = "5.2.2",
		.remote_mta = "mx1.example.net", .reply = "552 5.2.2 Mailbox full",
		.last_attempt = T_ATTEMPT,
	};
	struct dsn_params p;

	params_init(&p, &r, 1, orig, len);
	p.ret = DSN_RET_FULL;
	golden("ret-full", &p);
	struct buf out;
	const char *err;
	buf_init(&out, BUF_UNLIMITED);
	CHECK(dsn_build(&p, &out, &err) == 0);
	CHECK(strstr(out.data, "shall we meet at noon on Friday?\r\n") != NULL);
	check_structure(out.data, out.len, "delivery-status", "message/rfc822");
	buf_reset(&out);

	/* over the cap: headers only, and the text says so */
	p.full_max = 100;
	golden("ret-full-too-big", &p);
	CHECK(dsn_build(&p, &out, &err) == 0);
	CHECK(strstr(out.data, "shall we meet") == NULL);
	CHECK(strstr(out.data, "larger than 100 bytes") != NULL);
	check_structure(out.data, out.len, "delivery-status", "text/rfc822-headers");
	buf_free(&out);
	free(orig);
}

static void test_envid_orcpt(void)
{
	size_t len;
	char *orig = original(&len);
	struct dsn_recipient r[] = {
		{ .address = "bob@example.net", .orcpt = "rfc822;Bob.Alias@example.org",
		  .action = DSN_ACTION_FAILED, .status = "5.7.1", .remote_mta = "mx1.example.net",
		  .reply = "550 5.7.1 Message rejected as spam", .last_attempt = T_ATTEMPT },
		{ .address = "carol@example.com", .orcpt = "no-semicolon",
		  .action = DSN_ACTION_FAILED, .status = "5.0", .reason = "Too many hops" },
	};
	struct dsn_params p;

	params_init(&p, r, 2, orig, len);
	p.envid = "QQ314159";
	golden("envid-orcpt", &p);
	struct buf out;
	const char *err;
	buf_init(&out, BUF_UNLIMITED);
	CHECK(dsn_build(&p, &out, &err) == 0);
	CHECK(strstr(out.data, "Original-Envelope-Id: QQ314159\r\n") != NULL);
	CHECK(strstr(out.data, "Original-Recipient: rfc822;Bob.Alias@example.org\r\n") != NULL);
	/* a malformed ORCPT is left out; an invalid status gets the default */
	CHECK(strstr(out.data, "no-semicolon") == NULL);
	CHECK(strstr(out.data, "Status: 5.0.0\r\n") != NULL);
	buf_free(&out);
	free(orig);
}

static void test_smtputf8(void)
{
	size_t len;
	char *orig = read_file(DATA "original-utf8.eml", &len);
	struct dsn_recipient r = {
		.address = "m\xc3\xbcller@example.net", .action = DSN_ACTION_FAILED,
		.status = "5.6.7", .reason = "The remote server does not support SMTPUTF8",
		.remote_mta = "mx.example.net",
	};
	struct dsn_params p;

	CHECK(orig != NULL);
	params_init(&p, &r, 1, orig, len);
	p.sender = "j\xc3\xb6rg@b\303\274cher.example";
	p.smtputf8 = true;
	golden("smtputf8", &p);
	struct buf out;
	const char *err;
	buf_init(&out, BUF_UNLIMITED);
	CHECK(dsn_build(&p, &out, &err) == 0);
	CHECK(strstr(out.data, "Final-Recipient: utf-8; m\xc3\xbcller@example.net\r\n") != NULL);
	check_structure(out.data, out.len, "global-delivery-status", "message/global-headers");
	buf_reset(&out);
	p.ret = DSN_RET_FULL;
	CHECK(dsn_build(&p, &out, &err) == 0);
	check_structure(out.data, out.len, "global-delivery-status", "message/global");

	/* without SMTPUTF8 the same 8-bit reply bytes become '?' in the report */
	struct dsn_recipient r2 = {
		.address = "bob@example.net", .action = DSN_ACTION_FAILED,
		.remote_mta = "mx.example.net", .reply = "550 Unbekannter Empf\xc3\xa4nger \xff",
	};
	size_t olen;
	char *o = original(&olen);
	params_init(&p, &r2, 1, o, olen);
	buf_reset(&out);
	CHECK(dsn_build(&p, &out, &err) == 0);
	CHECK(strstr(out.data, "Diagnostic-Code: smtp; 550 Unbekannter Empf?nger ?\r\n") != NULL);
	for (size_t i = 0; i < out.len; i++)
		CHECK((unsigned char)out.data[i] < 0x80);
	buf_free(&out);
	free(o);
	free(orig);
}

static void test_hostile_reply(void)
{
	struct buf reply, out;
	const char *err = NULL;

	/* CR/LF injection, NUL is impossible in a C string but other controls
	 * are not, and a 5000-byte token with no space */
	buf_init(&reply, BUF_UNLIMITED);
	buf_append_str(&reply, "550 no\r\nX-Injected: yes\r\n\r\nbody\x01\x1b[31m\tend ");
	for (int i = 0; i < 5000; i++)
		buf_append(&reply, "A", 1);
	struct dsn_recipient r = {
		.address = "bob@example.net", .action = DSN_ACTION_FAILED,
		.remote_mta = "mx1.example.net\r\nX-Evil: 1", .reply = buf_cstr(&reply),
		.reason = "Long\nreason",
	};
	struct dsn_params p;
	params_init(&p, &r, 1, NULL, 0);
	p.envid = "id\r\nX-Evil: 2";
	golden("hostile", &p);
	buf_init(&out, BUF_UNLIMITED);
	CHECK(dsn_build(&p, &out, &err) == 0);
	CHECK(lines_ok(out.data, out.len));
	CHECK(strstr(out.data, "\r\nX-Injected") == NULL);
	CHECK(strstr(out.data, "\r\nX-Evil") == NULL);
	CHECK(strstr(out.data, "\x1b") == NULL);
	CHECK(strstr(out.data, "\x01") == NULL);
	CHECK(strstr(out.data, "Diagnostic-Code: smtp; 550 no X-Injected: yes body[31m end") !=
	      NULL);
	/* the reply was cut at DSN_REPLY_MAX */
	CHECK(out.len < 2 * DSN_REPLY_MAX + 4096);
	check_structure(out.data, out.len, "delivery-status", NULL);
	buf_free(&out);
	buf_free(&reply);
}

static void test_refusals(void)
{
	struct dsn_recipient r = { .address = "bob@example.net", .action = DSN_ACTION_FAILED };
	struct dsn_params p;
	struct buf out;
	const char *err = NULL;

	buf_init(&out, BUF_UNLIMITED);
	params_init(&p, &r, 1, NULL, 0);
	p.sender = "";
	CHECK(dsn_build(&p, &out, &err) == -1 && err != NULL);
	p.sender = NULL;
	CHECK(dsn_build(&p, &out, &err) == -1);
	p.sender = "alice@example.org\r\nBcc: x@y";
	CHECK(dsn_build(&p, &out, &err) == -1);
	p.sender = "alice@example.org";
	p.rcpt_count = 0;
	CHECK(dsn_build(&p, &out, &err) == -1);
	p.rcpt_count = 1;
	p.hostname = "bad host";
	CHECK(dsn_build(&p, &out, &err) == -1);
	p.hostname = NULL;
	CHECK(dsn_build(&p, &out, &err) == -1);
	CHECK(out.len == 0);
	buf_free(&out);

	/* out's limit: nothing appended */
	p.hostname = "mx.example.org";
	buf_init(&out, 200);
	buf_append_str(&out, "keep");
	CHECK(dsn_build(&p, &out, &err) == -1);
	CHECK_STR(buf_cstr(&out), "keep");
	buf_free(&out);

	/* random Message-ID and boundary differ between two DSNs */
	struct buf a, b;
	buf_init(&a, BUF_UNLIMITED);
	buf_init(&b, BUF_UNLIMITED);
	p.message_id = NULL;
	p.boundary = NULL;
	p.now = 0;
	CHECK(dsn_build(&p, &a, &err) == 0);
	CHECK(dsn_build(&p, &b, &err) == 0);
	CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) != 0);
	CHECK(strstr(a.data, ".dsn@mx.example.org>\r\n") != NULL);
	check_structure(a.data, a.len, "delivery-status", NULL);
	buf_free(&a);
	buf_free(&b);
}

static void test_should_notify(void)
{
	/* NOTIFY not given: failures and delays */
	CHECK(dsn_should_notify(0, DSN_ACTION_FAILED));
	CHECK(dsn_should_notify(0, DSN_ACTION_DELAYED));
	CHECK(!dsn_should_notify(0, DSN_ACTION_DELIVERED));
	CHECK(!dsn_should_notify(0, DSN_ACTION_RELAYED));
	/* NEVER */
	CHECK(!dsn_should_notify(DSN_NOTIFY_NEVER, DSN_ACTION_FAILED));
	CHECK(!dsn_should_notify(DSN_NOTIFY_NEVER, DSN_ACTION_DELAYED));
	/* explicit lists */
	CHECK(dsn_should_notify(DSN_NOTIFY_SUCCESS, DSN_ACTION_DELIVERED));
	CHECK(dsn_should_notify(DSN_NOTIFY_SUCCESS, DSN_ACTION_RELAYED));
	CHECK(dsn_should_notify(DSN_NOTIFY_SUCCESS, DSN_ACTION_EXPANDED));
	CHECK(!dsn_should_notify(DSN_NOTIFY_SUCCESS, DSN_ACTION_FAILED));
	CHECK(dsn_should_notify(DSN_NOTIFY_FAILURE, DSN_ACTION_FAILED));
	CHECK(!dsn_should_notify(DSN_NOTIFY_FAILURE, DSN_ACTION_DELAYED));
	CHECK(dsn_should_notify(DSN_NOTIFY_DELAY | DSN_NOTIFY_SUCCESS, DSN_ACTION_DELAYED));
	CHECK(!dsn_should_notify(DSN_NOTIFY_DELAY | DSN_NOTIFY_SUCCESS, DSN_ACTION_FAILED));
	CHECK_STR(dsn_action_name(DSN_ACTION_RELAYED), "relayed");
}

int main(void)
{
	RUN(test_failed_remote);
	RUN(test_delayed);
	RUN(test_mixed);
	RUN(test_success);
	RUN(test_ret_full);
	RUN(test_envid_orcpt);
	RUN(test_smtputf8);
	RUN(test_hostile_reply);
	RUN(test_refusals);
	RUN(test_should_notify);
	return unit_summary("dsn");
}
