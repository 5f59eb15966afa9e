/* Unit tests for the store's search index (src/store/search.c,
 * search-extract.c): folding, text extraction, decoded matching (base64,
 * quoted-printable, ISO-8859-1, UTF-8, RFC 2047), Unicode case
 * insensitivity, short keys, HEADER, FTS5 quoting, search right after
 * delivery, expunged messages, reopening, a deleted search.db, a read-only
 * store, and the timings of indexing and searching 10 000 messages. */
#include "unit.h"
#include "store-test-util.h"
#include "store/search-private.h"
#include "store/search.h"
#include "store/store.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpl[64];

static const char *mktemp_dir(void)
{
	return store_test_mkdtemp(tmpl, "/tmp/tern-search-XXXXXX");
}

static struct store *open_store(const char *dir, bool readonly)
{
	struct store_options o = { .readonly = readonly };

	return store_test_open(dir, &o);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* A user "u@example.com"; returns its INBOX id. */
static int64_t setup_user(struct store *s, int64_t *user_id_r)
{
	struct store_user u;
	struct store_mailbox mb;
	const char *err = NULL;
	int64_t id;

	if (store_domain_add(s, "example.com", &err) < 0 ||
	    store_user_add(s, "u@example.com", NULL, NULL, 0, &err) < 0 ||
	    store_user_get(s, "u@example.com", &u, &err) != 1) {
		fprintf(stderr, "setup: %s\n", err);
		exit(1);
	}
	*user_id_r = u.id;
	store_user_clear(&u);
	if (store_mailbox_get(s, *user_id_r, "INBOX", &mb, &err) != 1) {
		fprintf(stderr, "INBOX: %s\n", err);
		exit(1);
	}
	id = mb.id;
	store_mailbox_clear(&mb);
	return id;
}

static int deliver(struct store *s, int64_t user_id, const char *msg)
{
	struct store_delivery_rcpt r = { .user_id = user_id, .delivered_to = "u@example.com" };
	struct store_delivery d = {
		.return_path = "sender@example.org", .body = msg, .body_len = strlen(msg),
		.internal_date = 1700000000, .rcpts = &r, .rcpt_count = 1,
	};
	const char *err = NULL;
	int rc = store_deliver_sync(s, &d, &err);

	if (rc < 0)
		fprintf(stderr, "deliver: %s\n", err);
	return rc;
}

struct result {
	char text[512];
	size_t count;
};

static int collect(void *ctx, uint32_t uid)
{
	struct result *r = ctx;
	size_t n = strlen(r->text);

	snprintf(r->text + n, sizeof(r->text) - n, "%s%u", n ? " " : "", uid);
	r->count++;
	return 0;
}

/* The UIDs matching, as "1 3 4" ("" for none, "ERR" on error). */
static const char *search(struct store *s, int64_t mailbox, enum store_search_field f,
			  const char *hdr, const char *needle)
{
	static struct result r;
	const char *err = NULL;

	memset(&r, 0, sizeof(r));
	if (store_search_text(s, mailbox, f, hdr, needle, collect, &r, &err) < 0) {
		fprintf(stderr, "  search %s: %s\n", needle, err);
		return "ERR";
	}
	return r.text;
}

/* ------------------------------------------------------------ messages */

/* 1: plain ASCII, several recipients */
static const char MSG_PLAIN[] =
	"From: Alice Example <alice@example.org>\r\n"
	"To: Bob <bob@example.com>, Carol <carol@example.net>\r\n"
	"Cc: dave@example.com\r\n"
	"Bcc: eve@example.com\r\n"
	"Subject: Quarterly report\r\n"
	"X-Mailer: TernTest 1.0\r\n"
	"\r\n"
	"Hello Bob,\r\nthe numbers are in. Say \"hi\" to everyone.\r\n";

/* 2: base64 UTF-8 body, RFC 2047 subject (B and Q) */
static const char MSG_B64[] =
	"From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>\r\n"
	"To: u@example.com\r\n"
	"Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgZGVyIFN0cmHDn2U=?=\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	/* "Wir wohnen in der Hauptstraße 5.\nÉcole Ω\n" */
	"V2lyIHdvaG5lbiBpbiBkZXIgSGF1cHRzdHJhw59lIDUuCsOJY29sZSDOqQo=\r\n";

/* 3: quoted-printable ISO-8859-1 in a multipart with an attachment */
static const char MSG_QP[] =
	"From: francoise@example.fr\r\n"
	"To: u@example.com\r\n"
	"Subject: =?ISO-8859-1?Q?R=E9sum=E9?= attached\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
	"\r\n"
	"preamble is not text\r\n"
	"--XX\r\n"
	"Content-Type: text/plain; charset=iso-8859-1\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Caf=E9 cr=E8me br=FBl=E9e, tr=E8s =\r\n"
	"bien.\r\n"
	"--XX\r\n"
	"Content-Type: image/png\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"aGlkZGVuIHdvcmRz\r\n"       /* "hidden words": not text, not indexed */
	"--XX\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"From: inner@example.org\r\n"
	"Subject: Forwarded thing\r\n"
	"\r\n"
	"Inner body text zebra\r\n"
	"--XX--\r\n";

static void test_fold(void)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	CHECK(search_fold("STRASSE Straße", strlen("STRASSE Straße"), &b) == 0);
	/* u8_casefold does full case folding: ß -> ss */
	CHECK_STR(buf_cstr(&b), "strasse strasse");
	buf_reset(&b);
	search_fold("ÉCOLE", strlen("ÉCOLE"), &b);
	/* NFKD: e + U+0301 */
	CHECK_STR(buf_cstr(&b), "e\xcc\x81" "cole");
	buf_reset(&b);
	search_fold("ΣΊΣΥΦΟΣ ﬁ", strlen("ΣΊΣΥΦΟΣ ﬁ"), &b);
	CHECK_STR(buf_cstr(&b), "σι\xcc\x81συφοσ fi");
	buf_reset(&b);
	search_fold("a\xff" "B\0c", 5, &b);       /* invalid byte, NUL */
	CHECK_STR(buf_cstr(&b), "a\xef\xbf\xbd" "b c");
	buf_free(&b);
}

static void test_extract(void)
{
	struct search_doc d;

	search_doc_init(&d);
	search_doc_extract(MSG_B64, strlen(MSG_B64), &d);
	CHECK_STR(buf_cstr(&d.from), "ju\xcc\x88rgen mu\xcc\x88ller <jm@example.de>");
	CHECK_STR(buf_cstr(&d.subject), "gru\xcc\x88sse aus der strasse");
	CHECK(strstr(buf_cstr(&d.body), "hauptstrasse 5.") != NULL);
	CHECK(strstr(buf_cstr(&d.headers), "content-transfer-encoding: base64\n") != NULL);
	search_doc_free(&d);

	search_doc_init(&d);
	search_doc_extract(MSG_PLAIN, strlen(MSG_PLAIN), &d);
	CHECK_STR(buf_cstr(&d.to), "bob <bob@example.com>, carol <carol@example.net>");
	CHECK_STR(buf_cstr(&d.bcc), "eve@example.com");
	CHECK(strncmp(buf_cstr(&d.headers), "from: alice example <alice@example.org>\n"
		      "to: bob", 47) == 0);
	search_doc_free(&d);

	search_doc_init(&d);
	search_doc_extract(MSG_QP, strlen(MSG_QP), &d);
	CHECK(strstr(buf_cstr(&d.body), "cafe\xcc\x81 cre\xcc\x80me") != NULL);
	CHECK(strstr(buf_cstr(&d.body), "tre\xcc\x80s bien.") != NULL);  /* soft break */
	CHECK(strstr(buf_cstr(&d.body), "hidden") == NULL);
	CHECK(strstr(buf_cstr(&d.body), "preamble") == NULL);
	CHECK(strstr(buf_cstr(&d.body), "subject: forwarded thing\n") != NULL);
	CHECK(strstr(buf_cstr(&d.body), "inner body text zebra") != NULL);
	search_doc_free(&d);

	/* garbage never fails */
	search_doc_init(&d);
	search_doc_extract("\xff\xfe:\r\n\r\n\0\0", 8, &d);
	search_doc_extract("", 0, &d);
	search_doc_free(&d);
}

static void test_search(void)
{
	const char *dir = mktemp_dir();
	struct store *s = open_store(dir, false);
	int64_t user_id, inbox = setup_user(s, &user_id);

	CHECK(deliver(s, user_id, MSG_PLAIN) == 0);
	CHECK(deliver(s, user_id, MSG_B64) == 0);
	CHECK(deliver(s, user_id, MSG_QP) == 0);

	/* fields */
	CHECK_STR(search(s, inbox, STORE_SEARCH_FROM, NULL, "alice"), "1");
	CHECK_STR(search(s, inbox, STORE_SEARCH_FROM, NULL, "MÜLLER"), "2");
	CHECK_STR(search(s, inbox, STORE_SEARCH_TO, NULL, "carol@"), "1");
	CHECK_STR(search(s, inbox, STORE_SEARCH_TO, NULL, "u@example.com"), "2 3");
	CHECK_STR(search(s, inbox, STORE_SEARCH_CC, NULL, "dave"), "1");
	CHECK_STR(search(s, inbox, STORE_SEARCH_BCC, NULL, "EVE@"), "1");
	CHECK_STR(search(s, inbox, STORE_SEARCH_CC, NULL, "eve@"), "");
	CHECK_STR(search(s, inbox, STORE_SEARCH_SUBJECT, NULL, "quarterly"), "1");
	/* RFC 2047 B (UTF-8) and Q (ISO-8859-1) */
	CHECK_STR(search(s, inbox, STORE_SEARCH_SUBJECT, NULL, "grüße"), "2");
	CHECK_STR(search(s, inbox, STORE_SEARCH_SUBJECT, NULL, "RÉSUMÉ"), "3");
	/* i;unicode-casemap-like folding: ß = ss, any case */
	CHECK_STR(search(s, inbox, STORE_SEARCH_SUBJECT, NULL, "STRASSE"), "2");
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "HAUPTSTRASSE"), "2");
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "hauptstraße"), "2");
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "école ω"), "2");
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "ÉCOLE Ω"), "2");
	/* base64 body is searched decoded, never encoded */
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "V2lyIHdvaG5l"), "");
	/* quoted-printable ISO-8859-1, soft line break joined */
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "crème brûlée"), "3");
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "très bien"), "3");
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "=E8"), "");
	/* attachments are not text; embedded messages are */
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "hidden words"), "");
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "forwarded thing"), "3");
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "ZEBRA"), "3");
	/* BODY is not headers; TEXT is both */
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "quarterly"), "");
	CHECK_STR(search(s, inbox, STORE_SEARCH_TEXT, NULL, "quarterly"), "1");
	CHECK_STR(search(s, inbox, STORE_SEARCH_TEXT, NULL, "numbers are"), "1");
	CHECK_STR(search(s, inbox, STORE_SEARCH_TEXT, NULL, "delivered-to: u@"), "1 2 3");
	CHECK_STR(search(s, inbox, STORE_SEARCH_TEXT, NULL, "no such text anywhere"), "");
	/* FTS5 syntax in the key is just text */
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "say \"hi\""), "1");
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "\"hi\""), "1");
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "the OR zebra"), "");
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "NEAR(a b)*"), "");
	CHECK_STR(search(s, inbox, STORE_SEARCH_TEXT, NULL, "{body}:"), "");

	/* short keys: scan of the indexed text */
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "Ω"), "2");
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "ω"), "2");
	CHECK_STR(search(s, inbox, STORE_SEARCH_SUBJECT, NULL, "ß"), "2");  /* folds to "ss" */
	CHECK_STR(search(s, inbox, STORE_SEARCH_SUBJECT, NULL, "RE"), "1 3");
	CHECK_STR(search(s, inbox, STORE_SEARCH_FROM, NULL, "@"), "1 2 3");
	CHECK_STR(search(s, inbox, STORE_SEARCH_TEXT, NULL, "\""), "1 3");  /* boundary="XX" */
	CHECK_STR(search(s, inbox, STORE_SEARCH_CC, NULL, "x"), "1");
	CHECK_STR(search(s, inbox, STORE_SEARCH_CC, NULL, "q"), "");
	/* two characters, three bytes: still a scan */
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "é"), "2 3");
	/* empty key: everything */
	CHECK_STR(search(s, inbox, STORE_SEARCH_SUBJECT, NULL, ""), "1 2 3");

	/* HEADER name value */
	CHECK_STR(search(s, inbox, STORE_SEARCH_HEADER, "X-Mailer", "terntest"), "1");
	CHECK_STR(search(s, inbox, STORE_SEARCH_HEADER, "x-mailer", "1.0"), "1");
	CHECK_STR(search(s, inbox, STORE_SEARCH_HEADER, "X-MAILER", ""), "1");
	CHECK_STR(search(s, inbox, STORE_SEARCH_HEADER, "Subject", "STRASSE"), "2");
	CHECK_STR(search(s, inbox, STORE_SEARCH_HEADER, "Subject", "alice"), "");
	CHECK_STR(search(s, inbox, STORE_SEARCH_HEADER, "From", "alice"), "1");
	CHECK_STR(search(s, inbox, STORE_SEARCH_HEADER, "Content-Type", "charset"), "2");
	CHECK_STR(search(s, inbox, STORE_SEARCH_HEADER, "Content-Type", "boundary=\"xx\""), "3");
	CHECK_STR(search(s, inbox, STORE_SEARCH_HEADER, "Content-Type", ""), "2 3");
	CHECK_STR(search(s, inbox, STORE_SEARCH_HEADER, "Content", ""), "");
	CHECK_STR(search(s, inbox, STORE_SEARCH_HEADER, "MIME-Version", "1"), "2 3");
	CHECK_STR(search(s, inbox, STORE_SEARCH_HEADER, "Return-Path", "sender@"), "1 2 3");

	/* errors */
	const char *err = NULL;
	struct result r = { 0 };
	CHECK(store_search_text(s, inbox, STORE_SEARCH_BODY, NULL, "\xff\xfe", collect, &r,
				&err) < 0 && err != NULL);
	CHECK(store_search_text(s, inbox, STORE_SEARCH_HEADER, NULL, "x", collect, &r,
				&err) < 0);
	/* a mailbox that does not exist has no matches */
	CHECK_STR(search(s, 999999, STORE_SEARCH_BODY, NULL, "hello"), "");

	store_close(&s);
	store_test_rm_rf(dir);
}

static void test_fresh_and_expunged(void)
{
	const char *dir = mktemp_dir();
	struct store *s = open_store(dir, false);
	int64_t user_id, inbox = setup_user(s, &user_id);
	char msg[256];

	/* each message searched the moment its delivery returns */
	for (int i = 1; i <= 20; i++) {
		snprintf(msg, sizeof(msg), "Subject: fresh %d\r\n\r\nunique-token-%04d here\r\n",
			 i, i);
		CHECK(deliver(s, user_id, msg) == 0);
		char key[32], want[16];
		snprintf(key, sizeof(key), "UNIQUE-TOKEN-%04d", i);
		snprintf(want, sizeof(want), "%d", i);
		CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, key), want);
	}
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "unique-token-000"),
		  "1 2 3 4 5 6 7 8 9");

	/* expunge 2, 3 and 10 */
	uint32_t gone[] = { 3, 2, 10 };
	struct store_pop3_update u = {
		.user_id = user_id, .mailbox_id = inbox, .expunge_uids = gone,
		.expunge_count = 3,
	};
	const char *err = NULL;
	CHECK(store_pop3_update_sync(s, &u, &err) == 0);
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "unique-token-000"),
		  "1 4 5 6 7 8 9");
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "unique-token-001"),
		  "11 12 13 14 15 16 17 18 19");
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "e"), "1 4 5 6 7 8 9 11 12 13 14 "
		  "15 16 17 18 19 20");
	CHECK_STR(search(s, inbox, STORE_SEARCH_SUBJECT, NULL, ""), "1 4 5 6 7 8 9 11 12 13 14 "
		  "15 16 17 18 19 20");
	CHECK_STR(search(s, inbox, STORE_SEARCH_HEADER, "subject", "fresh 2"), "20");

	/* the cleanup removes their documents */
	int64_t docs = 0, indexed = 0;
	CHECK(store_search_sync(s, &err) == 0);
	CHECK(store_search_stats(s, &docs, &indexed, &err) == 0);
	CHECK(docs == 17);
	CHECK(indexed == 20);

	/* reopening keeps the index: nothing is indexed again */
	store_close(&s);
	s = open_store(dir, false);
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "token-0005"), "5");
	CHECK(store_search_stats(s, &docs, &indexed, &err) == 0);
	CHECK(docs == 17);
	CHECK(indexed == 0);

	/* a read-only store searches the existing index */
	struct store *ro = open_store(dir, true);
	CHECK_STR(search(ro, inbox, STORE_SEARCH_BODY, NULL, "token-0007"), "7");
	CHECK_STR(search(ro, inbox, STORE_SEARCH_BODY, NULL, "9"), "9 19");
	store_close(&ro);

	/* a deleted search.db is rebuilt */
	store_close(&s);
	char path[128];
	snprintf(path, sizeof(path), "%s/search.db", dir);
	CHECK(unlink(path) == 0);
	snprintf(path, sizeof(path), "%s/search.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/search.db-shm", dir);
	unlink(path);
	s = open_store(dir, false);
	CHECK_STR(search(s, inbox, STORE_SEARCH_BODY, NULL, "token-0014"), "14");
	CHECK(store_search_sync(s, &err) == 0);
	CHECK(store_search_stats(s, &docs, &indexed, &err) == 0);
	CHECK(docs == 17);
	CHECK(indexed == 17);

	/* a corrupt search.db is replaced on open */
	store_close(&s);
	snprintf(path, sizeof(path), "%s/search.db", dir);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	if (f != NULL) {
		for (int i = 0; i < 512; i++)
			fputs("not a database ", f);
		fclose(f);
	}
	s = open_store(dir, false);
	CHECK_STR(search(s, inbox, STORE_SEARCH_SUBJECT, NULL, "fresh 11"), "11");

	/* reindex from scratch */
	CHECK(store_search_reindex(s, &err) == 0);
	CHECK(store_search_stats(s, &docs, &indexed, &err) == 0);
	CHECK(docs == 17);
	CHECK_STR(search(s, inbox, STORE_SEARCH_SUBJECT, NULL, "fresh 11"), "11");

	store_close(&s);
	store_test_rm_rf(dir);
}

/* Background indexing: deliveries are indexed without any search. */
static void test_background(void)
{
	const char *dir = mktemp_dir();
	struct store *s = open_store(dir, false);
	int64_t user_id;
	const char *err = NULL;
	int64_t docs = 0, indexed = 0;

	setup_user(s, &user_id);
	for (int i = 0; i < 5; i++)
		CHECK(deliver(s, user_id, "Subject: bg\r\n\r\nbackground\r\n") == 0);
	for (int i = 0; i < 200 && docs < 5; i++) {
		usleep(10000);
		CHECK(store_search_stats(s, &docs, &indexed, &err) == 0);
	}
	CHECK(docs == 5);
	store_close(&s);
	store_test_rm_rf(dir);
}

/* ------------------------------------------------------------ timings */

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int left, failed;
};

static void delivered(void *ctx, int status, const char *error)
{
	struct waiter *w = ctx;

	(void)error;
	pthread_mutex_lock(&w->lock);
	if (status < 0)
		w->failed++;
	w->left--;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

struct counter {
	size_t n;
	uint32_t last;
	bool ordered;
};

static int count_cb(void *ctx, uint32_t uid)
{
	struct counter *c = ctx;
	if (c->n > 0 && uid <= c->last)
		c->ordered = false;
	c->last = uid;
	c->n++;
	return 0;
}

static size_t timed_search(struct store *s, int64_t mailbox, enum store_search_field f,
			   const char *hdr, const char *needle, const char *label)
{
	struct counter c = { .ordered = true };
	const char *err = NULL;
	double t0 = now_ms();
	int rc = store_search_text(s, mailbox, f, hdr, needle, count_cb, &c, &err);
	double t1 = now_ms();

	CHECK(rc == 0);
	CHECK(c.ordered);
	printf("  search %-28s %6zu hits %8.2f ms\n", label, c.n, t1 - t0);
	return c.n;
}

static void test_timing(void)
{
	const char *dir = mktemp_dir();
	struct store *s = open_store(dir, false);
	int64_t user_id, inbox = setup_user(s, &user_id);
	const int N = getenv("TERN_SANITIZED") ? 2000 : 10000;
	static const char *const words[] = {
		"meeting", "invoice", "holiday", "project", "report", "budget", "deadline",
		"coffee", "release", "server", "Grüße", "Straße", "naïve", "café",
	};
	struct waiter w = { .left = N };
	struct store_delivery_rcpt r = { .user_id = user_id, .delivered_to = "u@example.com" };
	char msg[1024];

	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	double t0 = now_ms();
	for (int i = 0; i < N; i++) {
		const char *a = words[i % 14], *b = words[(i / 14) % 14], *c = words[(i * 7) % 14];
		int len = snprintf(msg, sizeof(msg),
				   "From: Sender %d <s%d@example.org>\r\n"
				   "To: u@example.com\r\n"
				   "Subject: %s about %s #%d\r\n"
				   "Message-ID: <%d@example.org>\r\n"
				   "\r\n"
				   "Hello,\r\n\r\nthis note is about the %s and the %s, number %d.\r\n"
				   "Regards,\r\nsender %d\r\n",
				   i, i, a, b, i, i, b, c, i, i);
		struct store_delivery d = {
			.return_path = "s@example.org", .body = msg, .body_len = (size_t)len,
			.internal_date = 1700000000, .rcpts = &r, .rcpt_count = 1,
		};
		CHECK(store_deliver(s, NULL, &d, delivered, &w) == 0);
	}
	pthread_mutex_lock(&w.lock);
	while (w.left > 0)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	CHECK(w.failed == 0);
	double t1 = now_ms();
	printf("  delivered %d messages in %.0f ms\n", N, t1 - t0);

	const char *err = NULL;
	double t2 = now_ms();
	CHECK(store_search_reindex(s, &err) == 0);
	double t3 = now_ms();
	printf("  indexed %d messages in %.0f ms (%.0f messages/s)\n", N, t3 - t2,
	       N / ((t3 - t2) / 1000.0));

	size_t n = timed_search(s, inbox, STORE_SEARCH_SUBJECT, NULL, "invoice about",
				"SUBJECT \"invoice about\"");
	CHECK(n > 0 && n < (size_t)N);
	n = timed_search(s, inbox, STORE_SEARCH_BODY, NULL, "number 4242.", "BODY \"number 4242.\"");
	CHECK(n == (N > 4242 ? 1u : 0u));
	n = timed_search(s, inbox, STORE_SEARCH_TEXT, NULL, "STRASSE", "TEXT \"STRASSE\"");
	CHECK(n > 0);
	n = timed_search(s, inbox, STORE_SEARCH_FROM, NULL, "s1234@", "FROM \"s1234@\"");
	CHECK(n == 1);
	n = timed_search(s, inbox, STORE_SEARCH_BODY, NULL, "zz", "BODY \"zz\" (scan)");
	CHECK(n == 0);
	n = timed_search(s, inbox, STORE_SEARCH_SUBJECT, NULL, "#7", "SUBJECT \"#7\" (scan)");
	CHECK(n > 0);
	n = timed_search(s, inbox, STORE_SEARCH_HEADER, "message-id", "<77@",
			 "HEADER Message-ID \"<77@\"");
	CHECK(n == 1);
	n = timed_search(s, inbox, STORE_SEARCH_TEXT, NULL, "the", "TEXT \"the\" (all)");
	CHECK(n == (size_t)N);

	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cond);
	store_close(&s);
	store_test_rm_rf(dir);
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);   /* the corrupt-file test warns */
	RUN(test_fold);
	RUN(test_extract);
	RUN(test_search);
	RUN(test_fresh_and_expunged);
	RUN(test_background);
	RUN(test_timing);
	return unit_summary("store-search");
}
