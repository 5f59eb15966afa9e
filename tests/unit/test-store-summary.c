/* Unit tests for schema 4 of the store: message summaries (delivery,
 * APPEND, COPY, MOVE, ranges, the ENVELOPE equal to the one FETCH computes
 * from the file, SORT/DISPLAY keys, sent date, preview, SAVEDATE),
 * EMAILID/THREADID/MAILBOXID (syntax, sharing, threading by Message-ID,
 * In-Reply-To and References, RENAME keeps the MAILBOXID), the message
 * count quota (store_quota_exceeded, APPEND and COPY OVERQUOTA), METADATA
 * annotations (set, replace, remove, depth, usage, binary values, missing
 * and foreign mailboxes, kept across RENAME, removed with the mailbox),
 * and the in-place upgrade of a schema 3 data folder (summaries computed
 * once from the files and saved, read-only stores served unsaved), with
 * store_verify clean throughout. */
#include "unit.h"
#include "store-test-util.h"
#include "store/store.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "mail/imap-envelope.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXS 32

/* ------------------------------------------------------------- helpers */


static char dirbuf[64];

static const char *new_dir(void)
{
	return store_test_mkdtemp(dirbuf, "/tmp/tern-ssum-XXXXXX");
}

static struct store *open_store(const char *dir, bool readonly)
{
	struct store_options o = { .readonly = readonly };

	return store_test_open(dir, &o);
}

static int64_t add_user(struct store *s, const char *addr)
{
	struct store_user u = { 0 };
	const char *err = NULL;
	int64_t id = 0;

	store_domain_add(s, "example.test", &err);
	CHECK(store_user_add(s, addr, NULL, NULL, 0, &err) == 0);
	if (store_user_get(s, addr, &u, &err) == 1)
		id = u.id;
	store_user_clear(&u);
	return id;
}

static void deliver(struct store *s, int64_t user, const char *addr, const char *body)
{
	struct store_delivery_rcpt r = { .user_id = user, .delivered_to = addr };
	struct store_delivery d = { .return_path = "sender@remote.test", .body = body,
				    .body_len = strlen(body), .rcpts = &r, .rcpt_count = 1 };
	const char *err = NULL;

	CHECK(store_deliver_sync(s, &d, &err) == 0);
}

static int64_t mbox(struct store *s, int64_t user, const char *name, char **objectid_r)
{
	struct store_mailbox mb = { 0 };
	const char *err = NULL;
	int64_t id = 0;

	if (store_mailbox_get(s, user, name, &mb, &err) == 1) {
		id = mb.id;
		if (objectid_r != NULL)
			*objectid_r = mb.objectid ? xstrdup(mb.objectid) : NULL;
	}
	store_mailbox_clear(&mb);
	return id;
}

/* Owned copy of a summary. */
struct sum {
	uint32_t uid;
	time_t internal_date, sent_date, savedate;
	int64_t size;
	char *envelope, *subject, *from_mailbox, *to_mailbox, *cc_mailbox, *from_display;
	char *to_display, *message_id, *in_reply_to, *references, *preview, *emailid, *threadid;
};

struct sums {
	int n;
	int stop_after;         /* 0 = all */
	struct sum s[MAXS];
};

static int sum_cb(void *ctx, const struct store_summary *s)
{
	struct sums *l = ctx;

	if (l->n < MAXS) {
		struct sum *o = &l->s[l->n++];
		o->uid = s->uid;
		o->internal_date = s->internal_date;
		o->sent_date = s->sent_date;
		o->savedate = s->savedate;
		o->size = s->size;
		o->envelope = xstrdup(s->envelope);
		o->subject = xstrdup(s->subject);
		o->from_mailbox = xstrdup(s->from_mailbox);
		o->to_mailbox = xstrdup(s->to_mailbox);
		o->cc_mailbox = xstrdup(s->cc_mailbox);
		o->from_display = xstrdup(s->from_display);
		o->to_display = xstrdup(s->to_display);
		o->message_id = xstrdup(s->message_id);
		o->in_reply_to = xstrdup(s->in_reply_to);
		o->references = xstrdup(s->references);
		o->preview = xstrdup(s->preview);
		o->emailid = xstrdup(s->emailid);
		o->threadid = xstrdup(s->threadid);
	}
	return l->stop_after > 0 && l->n >= l->stop_after;
}

static void sums_free(struct sums *l)
{
	for (int i = 0; i < l->n; i++) {
		struct sum *o = &l->s[i];
		char **f[] = { &o->envelope, &o->subject, &o->from_mailbox, &o->to_mailbox,
			       &o->cc_mailbox, &o->from_display, &o->to_display, &o->message_id,
			       &o->in_reply_to, &o->references, &o->preview, &o->emailid,
			       &o->threadid };
		for (size_t j = 0; j < sizeof(f) / sizeof(f[0]); j++)
			free(*f[j]);
	}
	memset(l, 0, sizeof(*l));
}

static void list_sums(struct store *s, int64_t mailbox, uint32_t min, uint32_t max,
		      struct sums *l)
{
	const char *err = NULL;
	int stop = l->stop_after;

	sums_free(l);
	l->stop_after = stop;
	CHECK(store_summary_list(s, mailbox, min, max, sum_cb, l, &err) == 0);
}

/* RFC 8474 objectid: 1*255 of ALPHA / DIGIT / "_" / "-". */
static bool objectid_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 255)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* The ENVELOPE as FETCH computes it from the stored file
 * (imap/cmd-fetch.c att_envelope). */
struct path_list {
	int n;
	char *paths[MAXS];
	int64_t size[MAXS];
};

static int path_cb(void *ctx, const struct store_message *m)
{
	struct path_list *l = ctx;

	if (l->n < MAXS) {
		l->paths[l->n] = xstrdup(m->path);
		l->size[l->n++] = m->size;
	}
	return 0;
}

static void paths_free(struct path_list *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->paths[i]);
	l->n = 0;
}

static size_t fetch_header_len(const char *p, size_t len)
{
	if (len >= 2 && p[0] == '\r' && p[1] == '\n')
		return 2;
	for (size_t i = 0; i + 3 < len; i++)
		if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
			return i + 4;
	return len;
}

static char *file_envelope(const char *path, int64_t size)
{
	int fd = open(path, O_RDONLY);
	char *data = xmalloc((size_t)size + 1);
	ssize_t n = fd >= 0 ? read(fd, data, (size_t)size) : -1;
	struct buf b;

	if (fd >= 0)
		close(fd);
	if (n < 0)
		n = 0;
	buf_init(&b, BUF_UNLIMITED);
	imap_envelope_write(&b, data, fetch_header_len(data, (size_t)n));
	free(data);
	char *s = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return s;
}

/* Run SQL on index.db behind the store's back (0 or -1). */
static int exec_sql(const char *dir, const char *sql)
{
	char path[128];
	sqlite3 *db;
	int rc;

	snprintf(path, sizeof(path), "%s/index.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
	sqlite3_close(db);
	return rc;
}

static void verify_cb(void *ctx, const char *problem)
{
	(void)ctx;
	fprintf(stderr, "  verify: %s\n", problem);
}

static int verify(struct store *s)
{
	const char *err = NULL;
	return store_verify(s, verify_cb, NULL, &err);
}

static const char MSG1[] =
	"Date: Tue, 1 Jul 2025 10:00:00 +0200\r\n"
	"From: =?utf-8?q?J=C3=BCrgen?= <juergen@Example.ORG>, other@x.test\r\n"
	"To: undisclosed:;, \"Bob B\" <bob@example.test>\r\n"
	"Cc: carol@example.test\r\n"
	"Subject: =?iso-8859-1?q?Caf=E9?= menu\r\n"
	" (folded)\r\n"
	"Message-ID:  <m1@example.org> \r\n"
	"Content-Type: multipart/alternative; boundary=b\r\n"
	"\r\n"
	"--b\r\nContent-Type: text/plain\r\n\r\nLunch  is\r\nat noon.\r\n"
	"--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--b--\r\n";
static const char MSG2[] =
	"From: bob@example.test\r\n"
	"Subject: Re: Cafe menu\r\n"
	"Date: not a date\r\n"
	"Message-ID: <m2@example.test>\r\n"
	"In-Reply-To: <m1@example.org>\r\n"
	"References: <m1@example.org>\r\n"
	"\r\nSounds good\r\n";
static const char MSG3[] =
	"From: \"\" <dave@example.test>\r\n"
	"Subject: other\r\n"
	"Message-ID: <m3@example.test>\r\n"
	"References: <unknown@x> <m2@example.test>\r\n"
	"  <also-unknown@y>\r\n"
	"\r\n<html>no content type: plain</html>\r\n";
static const char MSG4[] = "Subject: unrelated\r\n\r\n";

/* -------------------------------------------------------------- tests */

static void test_delivery_summaries(void)
{
	const char *dir = new_dir();
	struct store *s = open_store(dir, false);
	int64_t user = add_user(s, "a@example.test");
	struct sums l = { 0 };
	struct path_list pl = { 0 };
	const char *err = NULL;

	time_t before = clock_now();
	deliver(s, user, "a@example.test", MSG1);
	deliver(s, user, "a@example.test", MSG2);
	deliver(s, user, "a@example.test", MSG3);
	deliver(s, user, "a@example.test", MSG4);
	int64_t inbox = mbox(s, user, "INBOX", NULL);
	list_sums(s, inbox, 1, 0, &l);
	CHECK(l.n == 4);
	CHECK(store_message_list(s, inbox, 1, path_cb, &pl, &err) == 0);
	CHECK(pl.n == 4);
	for (int i = 0; i < l.n && i < pl.n; i++) {
		char *env = file_envelope(pl.paths[i], pl.size[i]);
		CHECK_STR(l.s[i].envelope, env);
		free(env);
		CHECK(l.s[i].size == pl.size[i]);
		CHECK(l.s[i].savedate >= before && l.s[i].savedate <= clock_now());
		CHECK(objectid_ok(l.s[i].emailid) && objectid_ok(l.s[i].threadid));
		CHECK(l.s[i].uid == (uint32_t)i + 1);
	}
	struct sum *a = &l.s[0], *b = &l.s[1], *c = &l.s[2], *d = &l.s[3];
	CHECK(a->sent_date == 1751356800);      /* 2025-07-01 08:00:00 UTC */
	CHECK(b->sent_date == b->internal_date);
	CHECK_STR(a->subject, "Caf\xc3\xa9 menu (folded)");
	CHECK_STR(a->from_mailbox, "juergen");
	CHECK_STR(a->from_display, "J\xc3\xbcrgen");
	CHECK_STR(a->to_mailbox, "bob");
	CHECK_STR(a->to_display, "Bob B");
	CHECK_STR(a->cc_mailbox, "carol");
	CHECK_STR(a->message_id, "<m1@example.org>");
	CHECK_STR(a->in_reply_to, "");
	CHECK_STR(a->preview, "Lunch is at noon.");
	CHECK_STR(b->from_display, "bob@example.test");
	CHECK_STR(b->in_reply_to, "<m1@example.org>");
	CHECK_STR(b->references, "<m1@example.org>");
	CHECK_STR(c->from_display, "dave@example.test");
	/* unfolding removes the line break only (RFC 5322 2.2.3) */
	CHECK_STR(c->references, "<unknown@x> <m2@example.test>  <also-unknown@y>");
	CHECK_STR(c->preview, "<html>no content type: plain</html>");
	CHECK_STR(c->to_mailbox, "");
	CHECK_STR(d->from_mailbox, "");
	CHECK_STR(d->message_id, "");
	CHECK_STR(d->preview, "");
	CHECK_STR(d->envelope, "(NIL \"unrelated\" NIL NIL NIL NIL NIL NIL NIL NIL)");
	/* threads: 2 replies to 1, 3 references 2; 4 stands alone */
	CHECK_STR(b->threadid, a->threadid);
	CHECK_STR(c->threadid, a->threadid);
	CHECK(strcmp(d->threadid, a->threadid) != 0);
	CHECK(strcmp(a->emailid, b->emailid) != 0);

	/* ranges and stopping */
	list_sums(s, inbox, 2, 3, &l);
	CHECK(l.n == 2 && l.s[0].uid == 2 && l.s[1].uid == 3);
	l.stop_after = 1;
	list_sums(s, inbox, 1, 0, &l);
	CHECK(l.n == 1);
	l.stop_after = 0;
	list_sums(s, inbox, 5, 0, &l);
	CHECK(l.n == 0);
	list_sums(s, 999999, 1, 0, &l);
	CHECK(l.n == 0);

	sums_free(&l);
	paths_free(&pl);
	CHECK(verify(s) == 0);
	/* verify notices a summary filed under the wrong user and a mailbox
	 * without a MAILBOXID */
	CHECK(exec_sql(dir, "UPDATE summaries SET user_id = user_id + 100 WHERE id = 1;"
			    "UPDATE mailboxes SET objectid = NULL WHERE name = 'Junk'") == 0);
	CHECK(verify(s) == 2);
	store_close(&s);
	store_test_rm_rf(dir);
}

static void test_append_copy_move(void)
{
	const char *dir = new_dir();
	struct store *s = open_store(dir, false);
	int64_t user = add_user(s, "a@example.test");
	int64_t other = add_user(s, "b@example.test");
	struct sums l = { 0 }, m = { 0 };
	struct res r;

	deliver(s, other, "b@example.test", MSG1);      /* another user's thread */
	CHECK(RUNW(r, store_append(s, NULL, user, "INBOX", MSG1, strlen(MSG1), "\\Seen",
				   1700000000, res_cb, &r)) == 0);
	/* bare LF data: the summary is of the stored (CRLF) form */
	const char *lf = "Subject: lf\nMessage-ID: <lf@x>\nIn-Reply-To: <m1@example.org>\n\nbody\n";
	CHECK(RUNW(r, store_append(s, NULL, user, "INBOX", lf, strlen(lf), "", 0, res_cb,
				   &r)) == 0);
	int64_t inbox = mbox(s, user, "INBOX", NULL);
	int64_t archive = mbox(s, user, "Archive", NULL);
	int64_t trash = mbox(s, user, "Trash", NULL);
	list_sums(s, inbox, 1, 0, &l);
	CHECK(l.n == 2);
	CHECK(l.s[0].internal_date == 1700000000);
	CHECK(l.s[0].savedate >= clock_now() - 5);
	CHECK_STR(l.s[0].subject, "Caf\xc3\xa9 menu (folded)");
	CHECK_STR(l.s[1].subject, "lf");
	CHECK_STR(l.s[1].preview, "body");
	CHECK_STR(l.s[1].threadid, l.s[0].threadid);
	struct sums o = { 0 };
	list_sums(s, mbox(s, other, "INBOX", NULL), 1, 0, &o);
	CHECK(o.n == 1);
	if (o.n == 1) /* threads never cross users */
		CHECK(strcmp(o.s[0].threadid, l.s[0].threadid) != 0);
	sums_free(&o);

	/* COPY keeps the summary and the IDs; SAVEDATE is the copy's time */
	clock_advance(1000);
	uint32_t both[] = { 1, 2 };
	CHECK(RUNW(r, store_copy(s, NULL, inbox, both, 2, archive, false, res_cb, &r)) == 0);
	list_sums(s, archive, 1, 0, &m);
	CHECK(m.n == 2);
	for (int i = 0; i < 2 && i < m.n; i++) {
		CHECK_STR(m.s[i].emailid, l.s[i].emailid);
		CHECK_STR(m.s[i].threadid, l.s[i].threadid);
		CHECK_STR(m.s[i].envelope, l.s[i].envelope);
		CHECK_STR(m.s[i].preview, l.s[i].preview);
		CHECK(m.s[i].internal_date == l.s[i].internal_date);
		CHECK(m.s[i].savedate >= l.s[i].savedate + 1000);
	}
	/* MOVE keeps them too, with a new SAVEDATE */
	clock_advance(1000);
	uint32_t one[] = { 1 };
	CHECK(RUNW(r, store_copy(s, NULL, archive, one, 1, trash, true, res_cb, &r)) == 0);
	struct sums t = { 0 };
	list_sums(s, trash, 1, 0, &t);
	CHECK(t.n == 1);
	if (t.n == 1 && m.n == 2) {
		CHECK_STR(t.s[0].emailid, m.s[0].emailid);
		CHECK_STR(t.s[0].subject, m.s[0].subject);
		CHECK(t.s[0].savedate >= m.s[0].savedate + 1000);
	}
	/* a reply arriving later joins the appended thread */
	deliver(s, user, "a@example.test", MSG2);
	list_sums(s, inbox, 3, 3, &l);
	CHECK(l.n == 1);
	if (l.n == 1 && t.n == 1)
		CHECK_STR(l.s[0].threadid, t.s[0].threadid);
	/* expunging the last row that has it removes the summary row too */
	CHECK(RUNW(r, store_expunge(s, NULL, trash, one, 1, res_cb, &r)) == 0);
	list_sums(s, trash, 1, 0, &t);
	CHECK(t.n == 0);
	sums_free(&t);
	sums_free(&l);
	sums_free(&m);
	CHECK(verify(s) == 0);
	store_close(&s);
	store_test_rm_rf(dir);
}

static void test_mailboxid(void)
{
	const char *dir = new_dir();
	struct store *s = open_store(dir, false);
	int64_t user = add_user(s, "a@example.test");
	char *inbox_id = NULL, *a_id = NULL, *renamed_id = NULL, *again_id = NULL;
	struct res r;

	mbox(s, user, "INBOX", &inbox_id);
	CHECK(objectid_ok(inbox_id));
	CHECK(RUNW(r, store_mailbox_create(s, NULL, user, "Projects/A", NULL, res_cb, &r)) == 0);
	mbox(s, user, "Projects/A", &a_id);
	CHECK(objectid_ok(a_id));
	CHECK(a_id && inbox_id && strcmp(a_id, inbox_id) != 0);
	CHECK(RUNW(r, store_mailbox_rename(s, NULL, user, "Projects/A", "Projects/B", res_cb,
					   &r)) == 0);
	mbox(s, user, "Projects/B", &renamed_id);
	CHECK_STR(renamed_id, a_id);
	CHECK(RUNW(r, store_mailbox_delete(s, NULL, user, "Projects/B", res_cb, &r)) == 0);
	CHECK(RUNW(r, store_mailbox_create(s, NULL, user, "Projects/B", NULL, res_cb, &r)) == 0);
	mbox(s, user, "Projects/B", &again_id);
	CHECK(objectid_ok(again_id));
	CHECK(again_id && a_id && strcmp(again_id, a_id) != 0);
	/* every listing carries it */
	struct store_mailbox mb = { 0 };
	const char *err = NULL;
	CHECK(store_mailbox_get_by_id(s, mbox(s, user, "INBOX", NULL), &mb, &err) == 1);
	CHECK_STR(mb.objectid, inbox_id);
	store_mailbox_clear(&mb);
	CHECK(mb.objectid == NULL);
	free(inbox_id);
	free(a_id);
	free(renamed_id);
	free(again_id);
	store_close(&s);
	store_test_rm_rf(dir);
}

static void test_quota_messages(void)
{
	const char *dir = new_dir();
	struct store *s = open_store(dir, false);
	int64_t user = add_user(s, "a@example.test");
	struct store_user u = { 0 };
	const char *err = NULL;
	struct res r;

	CHECK(store_user_set_quota_messages(s, "A@example.test", 2, &err) == 0);
	CHECK(store_user_set_quota_messages(s, "a@example.test", -1, &err) < 0);
	CHECK(store_user_set_quota_messages(s, "nobody@example.test", 5, &err) < 0);
	CHECK(store_user_get(s, "a@example.test", &u, &err) == 1);
	CHECK(u.quota_messages == 2 && u.quota_bytes == 0);
	store_user_clear(&u);
	CHECK(store_quota_exceeded(s, user, 10, &err) == 0);
	deliver(s, user, "a@example.test", MSG4);
	CHECK(store_quota_exceeded(s, user, 10, &err) == 0);
	CHECK(RUNW(r, store_append(s, NULL, user, "INBOX", MSG4, strlen(MSG4), "", 0, res_cb,
				   &r)) == 0);
	CHECK(store_quota_exceeded(s, user, 10, &err) == 1);
	CHECK(RUNW(r, store_append(s, NULL, user, "INBOX", MSG4, strlen(MSG4), "", 0, res_cb,
				   &r)) < 0);
	CHECK_STR(r.code, "OVERQUOTA");
	int64_t inbox = mbox(s, user, "INBOX", NULL);
	int64_t archive = mbox(s, user, "Archive", NULL);
	uint32_t one[] = { 1 };
	CHECK(RUNW(r, store_copy(s, NULL, inbox, one, 1, archive, false, res_cb, &r)) < 0);
	CHECK_STR(r.code, "OVERQUOTA");
	/* MOVE adds no message: allowed */
	CHECK(RUNW(r, store_copy(s, NULL, inbox, one, 1, archive, true, res_cb, &r)) == 0);
	/* raising it lets one COPY through (2 + 1 <= 3), then not (3 + 1) */
	CHECK(store_user_set_quota_messages(s, "a@example.test", 3, &err) == 0);
	CHECK(RUNW(r, store_copy(s, NULL, archive, one, 1, inbox, false, res_cb, &r)) == 0);
	CHECK(RUNW(r, store_copy(s, NULL, archive, one, 1, inbox, false, res_cb, &r)) < 0);
	CHECK_STR(r.code, "OVERQUOTA");
	/* a COPY counts every message: 3 + 2 > 4, 3 + 1 <= 4 */
	CHECK(store_user_set_quota_messages(s, "a@example.test", 4, &err) == 0);
	uint32_t two[] = { 2, 3 };
	CHECK(RUNW(r, store_copy(s, NULL, inbox, two, 2, archive, false, res_cb, &r)) < 0);
	CHECK_STR(r.code, "OVERQUOTA");
	CHECK(RUNW(r, store_copy(s, NULL, inbox, two, 1, archive, false, res_cb, &r)) == 0);
	/* 0 = unlimited */
	CHECK(store_user_set_quota_messages(s, "a@example.test", 0, &err) == 0);
	CHECK(store_quota_exceeded(s, user, 10, &err) == 0);
	CHECK(verify(s) == 0);
	store_close(&s);
	store_test_rm_rf(dir);
}

struct ann {
	int n;
	char names[16][64];
	char values[16][64];
	size_t lens[16];
};

static int ann_cb(void *ctx, const char *entry, const char *value, size_t len)
{
	struct ann *a = ctx;

	if (a->n < 16) {
		snprintf(a->names[a->n], 64, "%s", entry);
		memcpy(a->values[a->n], value, len < 63 ? len : 63);
		a->values[a->n][len < 63 ? len : 63] = '\0';
		a->lens[a->n++] = len;
	}
	return 0;
}

static size_t slen(const char *s)
{
	return s != NULL ? strlen(s) : 0;
}

static struct ann ann_get(struct store *s, int64_t user, int64_t mb, const char *entry, int depth)
{
	struct ann a = { 0 };
	const char *err = NULL;

	CHECK(store_annotation_get(s, user, mb, entry, depth, ann_cb, &a, &err) == 0);
	return a;
}

static void test_annotations(void)
{
	const char *dir = new_dir();
	struct store *s = open_store(dir, false);
	int64_t user = add_user(s, "a@example.test");
	int64_t other = add_user(s, "b@example.test");
	int64_t inbox = mbox(s, user, "INBOX", NULL);
	int64_t other_inbox = mbox(s, other, "INBOX", NULL);
	const char *err = NULL;
	struct res r;
	struct ann a;
	int64_t count, bytes;

#define SET(mb, e, v) RUNW(r, store_annotation_set(s, NULL, user, mb, e, v, slen(v), \
						   res_cb, &r))
	CHECK(SET(inbox, "/private/comment", "hello") == 0);
	CHECK(SET(inbox, "/private/comment", "replaced") == 0);
	CHECK(SET(inbox, "/private/comment/sub", "child") == 0);
	CHECK(SET(inbox, "/private/comment/sub/deep", "grandchild") == 0);
	CHECK(SET(inbox, "/private/commentary", "sibling") == 0);
	CHECK(SET(inbox, "/shared/vendor/x/y", "") == 0);
	CHECK(SET(0, "/private/comment", "server") == 0);
	CHECK(RUNW(r, store_annotation_set(s, NULL, user, inbox, "/private/bin", "a\0b", 3,
					   res_cb, &r)) == 0);

	a = ann_get(s, user, inbox, "/private/comment", 0);
	CHECK(a.n == 1 && strcmp(a.values[0], "replaced") == 0);
	a = ann_get(s, user, inbox, "/private/comment", 1);
	CHECK(a.n == 2);
	CHECK_STR(a.names[0], "/private/comment");
	CHECK_STR(a.names[1], "/private/comment/sub");
	a = ann_get(s, user, inbox, "/private/comment", -1);
	CHECK(a.n == 3);
	CHECK_STR(a.names[2], "/private/comment/sub/deep");
	a = ann_get(s, user, inbox, "/shared/vendor/x/y", 0);
	CHECK(a.n == 1 && a.lens[0] == 0);
	a = ann_get(s, user, inbox, "/private/bin", 0);
	CHECK(a.n == 1 && a.lens[0] == 3 && memcmp(a.values[0], "a\0b", 3) == 0);
	a = ann_get(s, user, 0, "/private/comment", -1);
	CHECK(a.n == 1 && strcmp(a.values[0], "server") == 0);
	a = ann_get(s, other, inbox, "/private/comment", -1);
	CHECK(a.n == 0);
	a = ann_get(s, user, inbox, "/private/none", -1);
	CHECK(a.n == 0);

	CHECK(store_annotation_usage(s, user, &count, &bytes, &err) == 0);
	CHECK(count == 7);
	CHECK(bytes == 8 + 5 + 10 + 7 + 0 + 6 + 3);
	CHECK(store_annotation_usage(s, other, &count, &bytes, &err) == 0);
	CHECK(count == 0 && bytes == 0);

	/* removal; removing a missing entry is no error */
	CHECK(SET(inbox, "/private/comment/sub/deep", NULL) == 0);
	CHECK(SET(inbox, "/private/never-set", NULL) == 0);
	a = ann_get(s, user, inbox, "/private/comment", -1);
	CHECK(a.n == 2);

	/* missing or foreign mailboxes */
	CHECK(SET(999999, "/private/comment", "x") < 0);
	CHECK_STR(r.code, "NONEXISTENT");
	CHECK(SET(other_inbox, "/private/comment", "x") < 0);
	CHECK_STR(r.code, "NONEXISTENT");
	CHECK(store_annotation_set(s, NULL, user, inbox, "", "x", 1, res_cb, &r) < 0);

	/* kept across RENAME, removed with the mailbox */
	CHECK(RUNW(r, store_mailbox_create(s, NULL, user, "Old", NULL, res_cb, &r)) == 0);
	int64_t old = mbox(s, user, "Old", NULL);
	CHECK(SET(old, "/private/comment", "travels") == 0);
	CHECK(RUNW(r, store_mailbox_rename(s, NULL, user, "Old", "New", res_cb, &r)) == 0);
	CHECK(mbox(s, user, "New", NULL) == old);
	a = ann_get(s, user, old, "/private/comment", 0);
	CHECK(a.n == 1 && strcmp(a.values[0], "travels") == 0);
	CHECK(RUNW(r, store_mailbox_delete(s, NULL, user, "New", res_cb, &r)) == 0);
	a = ann_get(s, user, old, "/private/comment", 0);
	CHECK(a.n == 0);
	CHECK(store_annotation_usage(s, user, &count, &bytes, &err) == 0);
	CHECK(count == 6);
	/* removed with the user */
	CHECK(store_user_remove(s, "a@example.test", &err) == 0);
	CHECK(store_annotation_usage(s, user, &count, &bytes, &err) == 0);
	CHECK(count == 0);
#undef SET
	CHECK(verify(s) == 0);
	store_close(&s);
	store_test_rm_rf(dir);
}

/* Count rows of a table straight from index.db. */
static int count_rows(const char *dir, const char *sql)
{
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = -1;

	snprintf(path, sizeof(path), "%s/index.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return n;
}

static void test_upgrade_v3(void)
{
	const char *dir = new_dir();
	struct store *s = open_store(dir, false);
	int64_t user = add_user(s, "a@example.test");
	struct sums l = { 0 }, again = { 0 };
	struct path_list pl = { 0 };
	const char *err = NULL;
	struct res r;

	deliver(s, user, "a@example.test", MSG1);
	deliver(s, user, "a@example.test", MSG2);
	deliver(s, user, "a@example.test", MSG4);
	int64_t inbox = mbox(s, user, "INBOX", NULL);
	int64_t archive = mbox(s, user, "Archive", NULL);
	uint32_t one[] = { 1 };
	CHECK(RUNW(r, store_copy(s, NULL, inbox, one, 1, archive, false, res_cb, &r)) == 0);
	store_close(&s);

	/* make it a schema 3 store, as tern before this change left it */
	sqlite3 *db;
	char path[128];
	snprintf(path, sizeof(path), "%s/index.db", dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, STORE_TEST_UNDO_V4, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	CHECK(count_rows(dir, "SELECT max(version) FROM schema_version") == 3);

	/* opening migrates in place: every mailbox gets a MAILBOXID */
	s = open_store(dir, false);
	CHECK(store_schema_version(s) == STORE_SCHEMA_VERSION_CURRENT);
	CHECK(count_rows(dir, "SELECT count(*) FROM mailboxes WHERE objectid IS NULL") == 0);
	CHECK(count_rows(dir, "SELECT count(DISTINCT objectid) = count(*) FROM mailboxes") == 1);
	CHECK(count_rows(dir, "SELECT count(*) FROM summaries") == 0);
	CHECK(verify(s) == 0);

	/* first listing: computed from the files and saved, for the whole
	 * mailbox in UID order (threads), not the copy in Archive yet */
	list_sums(s, inbox, 2, 0, &l);
	CHECK(l.n == 2);
	CHECK(count_rows(dir, "SELECT count(*) FROM summaries") == 3);
	list_sums(s, inbox, 1, 0, &l);
	CHECK(l.n == 3);
	CHECK(count_rows(dir, "SELECT count(*) FROM summaries") == 3);
	CHECK(store_message_list(s, inbox, 1, path_cb, &pl, &err) == 0);
	for (int i = 0; i < l.n && i < pl.n; i++) {
		char *env = file_envelope(pl.paths[i], pl.size[i]);
		CHECK_STR(l.s[i].envelope, env);
		free(env);
		CHECK(objectid_ok(l.s[i].emailid) && objectid_ok(l.s[i].threadid));
		CHECK(l.s[i].savedate == l.s[i].internal_date);
	}
	if (l.n == 3) {
		CHECK_STR(l.s[0].subject, "Caf\xc3\xa9 menu (folded)");
		CHECK_STR(l.s[0].preview, "Lunch is at noon.");
		CHECK(l.s[0].sent_date == 1751356800);
		CHECK_STR(l.s[1].threadid, l.s[0].threadid);
		CHECK(strcmp(l.s[2].threadid, l.s[0].threadid) != 0);
	}
	/* the second listing reads the same, saved values */
	list_sums(s, inbox, 1, 0, &again);
	CHECK(again.n == 3);
	for (int i = 0; i < again.n && i < l.n; i++) {
		CHECK_STR(again.s[i].emailid, l.s[i].emailid);
		CHECK_STR(again.s[i].threadid, l.s[i].threadid);
		CHECK_STR(again.s[i].envelope, l.s[i].envelope);
	}
	/* the old copy shares the file, so it shares the EMAILID */
	list_sums(s, archive, 1, 0, &again);
	CHECK(again.n == 1);
	if (again.n == 1 && l.n == 3)
		CHECK_STR(again.s[0].emailid, l.s[0].emailid);
	/* new mail and quota work on the upgraded store */
	deliver(s, user, "a@example.test", MSG2);
	CHECK(store_user_set_quota_messages(s, "a@example.test", 100, &err) == 0);
	CHECK(verify(s) == 0);
	store_close(&s);

	/* a read-only store serves unsaved summaries of old rows */
	s = open_store(dir, false);
	store_close(&s);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "DELETE FROM summaries", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	s = open_store(dir, true);
	list_sums(s, inbox, 1, 0, &again);
	CHECK(again.n == 4);
	if (again.n == 4 && l.n == 3) {
		CHECK_STR(again.s[0].envelope, l.s[0].envelope);
		CHECK_STR(again.s[0].emailid, l.s[0].emailid);
		CHECK_STR(again.s[0].preview, l.s[0].preview);
	}
	store_close(&s);
	CHECK(count_rows(dir, "SELECT count(*) FROM summaries") == 0);

	sums_free(&l);
	sums_free(&again);
	paths_free(&pl);
	store_test_rm_rf(dir);
}

/* More old messages than one backfill request takes: listing the end of
 * the mailbox summarises it in chunks from the start, in UID order. */
static void test_backfill_chunks(void)
{
	const char *dir = new_dir();
	struct store *s = open_store(dir, false);
	int64_t user = add_user(s, "a@example.test");
	struct sums l = { 0 };
	char body[128];

	for (int i = 1; i <= 300; i++) {
		if (i == 1)
			snprintf(body, sizeof(body), "Message-ID: <root@x>\r\n\r\nroot\r\n");
		else
			snprintf(body, sizeof(body), "Message-ID: <%d@x>\r\nReferences: <%d@x>"
				 " <root@x>\r\n\r\nmessage %d\r\n", i, 1000 + i, i);
		deliver(s, user, "a@example.test", body);
	}
	int64_t inbox = mbox(s, user, "INBOX", NULL);
	store_close(&s);
	CHECK(exec_sql(dir, STORE_TEST_UNDO_V4) == 0);
	s = open_store(dir, false);
	list_sums(s, inbox, 290, 0, &l);
	CHECK(l.n == 11);
	CHECK(count_rows(dir, "SELECT count(*) FROM summaries") == 300);
	CHECK(count_rows(dir, "SELECT count(DISTINCT threadid) FROM summaries") == 1);
	if (l.n == 11) {
		CHECK(l.s[0].uid == 290 && l.s[10].uid == 300);
		CHECK_STR(l.s[10].preview, "message 300");
	}
	sums_free(&l);
	CHECK(verify(s) == 0);
	store_close(&s);
	store_test_rm_rf(dir);
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	umask(022);
	RUN(test_delivery_summaries);
	RUN(test_append_copy_move);
	RUN(test_mailboxid);
	RUN(test_quota_messages);
	RUN(test_annotations);
	RUN(test_upgrade_v3);
	RUN(test_backfill_chunks);
	return unit_summary("store-summary");
}
