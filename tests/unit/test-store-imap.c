/* Unit tests for the store's IMAP section (store.h, "IMAP: ..."): mailbox
 * CREATE / DELETE / RENAME (children, INBOX) and subscriptions, APPEND,
 * STORE with modseq and UNCHANGEDSINCE, COPY / MOVE sharing files, EXPUNGE
 * with its history, \Recent claims, quota, every response code, notify
 * events on an event_base, flag and name normalisation, the upgrade of a
 * version 2 data folder, and store_verify clean after each. */
#include "unit.h"
#include "store-test-util.h"
#include "store/store.h"
#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/notify.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXU 64

/* ------------------------------------------------------------- helpers */


static char *new_dir(void)
{
	char buf[sizeof("/tmp/tern-simap-XXXXXX")];

	return xstrdup(store_test_mkdtemp(buf, "/tmp/tern-simap-XXXXXX"));
}

static void rm_dir(char *d)
{
	store_test_rm_rf(d);
	free(d);
}

static struct store *open_store(const char *dir)
{
	struct store_options o = { 0 };

	return store_test_open(dir, &o);
}

static int64_t add_user(struct store *s, const char *addr, int64_t quota)
{
	struct store_user u = { 0 };
	const char *err = NULL;
	int64_t id = 0;

	store_domain_add(s, "example.test", &err);
	CHECK(store_user_add(s, addr, NULL, NULL, quota, &err) == 0);
	if (store_user_get(s, addr, &u, &err) == 1)
		id = u.id;
	store_user_clear(&u);
	return id;
}

static void deliver(struct store *s, int64_t uid, const char *addr, const char *mailbox, int n)
{
	for (int i = 0; i < n; i++) {
		char body[64];
		snprintf(body, sizeof(body), "Subject: %d\r\n\r\nbody %d\r\n", i, i);
		struct store_delivery_rcpt r = { .user_id = uid, .delivered_to = addr,
						 .mailbox = mailbox };
		struct store_delivery d = { .return_path = "x@y.test", .body = body,
					    .body_len = strlen(body), .rcpts = &r, .rcpt_count = 1 };
		const char *err = NULL;
		CHECK(store_deliver_sync(s, &d, &err) == 0);
	}
}

static int64_t mbox_id(struct store *s, int64_t user, const char *name, struct store_mailbox *out)
{
	struct store_mailbox mb = { 0 };
	const char *err = NULL;
	int64_t id = 0;

	if (store_mailbox_get(s, user, name, &mb, &err) == 1)
		id = mb.id;
	if (out != NULL)
		*out = mb;
	else
		store_mailbox_clear(&mb);
	return id;
}

struct list {
	int n;
	uint32_t uids[MAXU];
	uint64_t modseq[MAXU];
	char *flags[MAXU];
	char *paths[MAXU];
	int64_t size[MAXU];
};

static int list_cb(void *ctx, const struct store_message *m)
{
	struct list *l = ctx;
	if (l->n < MAXU) {
		l->uids[l->n] = m->uid;
		l->modseq[l->n] = m->modseq;
		l->flags[l->n] = xstrdup(m->flags);
		l->paths[l->n] = xstrdup(m->path);
		l->size[l->n] = m->size;
		l->n++;
	}
	return 0;
}

static void list_free(struct list *l)
{
	for (int i = 0; i < l->n; i++) {
		free(l->flags[i]);
		free(l->paths[i]);
	}
	l->n = 0;
}

static void list_mb(struct store *s, int64_t mailbox_id, struct list *l)
{
	const char *err = NULL;
	list_free(l);
	CHECK(store_message_list(s, mailbox_id, 1, list_cb, l, &err) == 0);
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

struct names {
	char buf[1024];
};

static int names_cb(void *ctx, const char *name)
{
	struct names *n = ctx;
	size_t len = strlen(n->buf);
	snprintf(n->buf + len, sizeof(n->buf) - len, "%s%s", len ? " " : "", name);
	return 0;
}

static int mbnames_cb(void *ctx, const struct store_mailbox *m)
{
	return names_cb(ctx, m->name);
}

static int64_t user_used(struct store *s, const char *addr, int64_t *msgs_r)
{
	struct store_user u = { 0 };
	const char *err = NULL;
	int64_t b = -1;
	if (store_user_get(s, addr, &u, &err) == 1) {
		b = u.used_bytes;
		*msgs_r = u.used_messages;
	}
	store_user_clear(&u);
	return b;
}

static int uid_collect(void *ctx, uint32_t uid)
{
	struct list *l = ctx;
	if (l->n < MAXU)
		l->uids[l->n++] = uid;
	return 0;
}

/* ------------------------------------------------- flags and names */

static void test_flags_names(void)
{
	const char *err = NULL;
	char *f;

	f = store_flags_normalize("foo \\draft \\SEEN \\Recent Bar FOO \\seen", &err);
	CHECK_STR(f, "\\Seen \\Draft Bar foo");
	free(f);
	f = store_flags_normalize("", &err);
	CHECK_STR(f, "");
	free(f);
	f = store_flags_normalize("  \\Deleted   \\Answered \\Flagged ", &err);
	CHECK_STR(f, "\\Answered \\Flagged \\Deleted");
	free(f);
	CHECK(store_flags_normalize("\\Bogus", &err) == NULL);
	CHECK(store_flags_normalize("a(b", &err) == NULL);
	CHECK(store_flags_normalize("a]", &err) == NULL);
	CHECK(store_flags_normalize("caf\xc3\xa9", &err) == NULL);

	f = store_flags_apply("\\Seen foo", STORE_FLAGS_ADD, "\\Flagged FOO bar");
	CHECK_STR(f, "\\Seen \\Flagged bar foo");
	free(f);
	f = store_flags_apply("\\Seen \\Flagged bar foo", STORE_FLAGS_REMOVE, "\\Seen FOO");
	CHECK_STR(f, "\\Flagged bar");
	free(f);
	f = store_flags_apply("\\Seen bar", STORE_FLAGS_SET, "\\Draft");
	CHECK_STR(f, "\\Draft");
	free(f);

	const char *why;
	CHECK(store_mailbox_name_ok("INBOX", &why));
	CHECK(store_mailbox_name_ok("Lists/tern/\xc3\xa9t\xc3\xa9", &why));
	CHECK(!store_mailbox_name_ok("", &why));
	CHECK(!store_mailbox_name_ok("/a", &why));
	CHECK(!store_mailbox_name_ok("a/", &why));
	CHECK(!store_mailbox_name_ok("a//b", &why));
	CHECK(!store_mailbox_name_ok("a\tb", &why));
	CHECK(!store_mailbox_name_ok("a\x7f", &why));
	CHECK(!store_mailbox_name_ok("a*", &why));
	CHECK(!store_mailbox_name_ok("\xff", &why));
	CHECK(!store_mailbox_name_ok("\xc3", &why));
	CHECK(!store_mailbox_name_ok("\xed\xa0\x80", &why));   /* a surrogate */
	char long_name[300];
	memset(long_name, 'a', 256);
	long_name[256] = '\0';
	CHECK(!store_mailbox_name_ok(long_name, &why));
	long_name[255] = '\0';
	CHECK(store_mailbox_name_ok(long_name, &why));
	CHECK(store_mailbox_name_ok("1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", &why));
	CHECK(!store_mailbox_name_ok("1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17", &why));
	f = store_mailbox_canon("inBox");
	CHECK_STR(f, "INBOX");
	free(f);
	f = store_mailbox_canon("inbox/Sub");
	CHECK_STR(f, "INBOX/Sub");
	free(f);
	f = store_mailbox_canon("Inboxes");
	CHECK_STR(f, "Inboxes");
	free(f);
}

/* ------------------------------------------------ mailbox management */

static void test_mailboxes(void)
{
	char *dir = new_dir();
	struct store *s = open_store(dir);
	const char *err = NULL;
	struct res r;
	struct names nm = { "" };
	int64_t user = add_user(s, "a@example.test", 0);
	int64_t other = add_user(s, "b@example.test", 0);

	/* CREATE with parents */
	CHECK(RUNW(r, store_mailbox_create(s, NULL, user, "Work/Projects/tern", NULL, res_cb,
					   &r)) == 0);
	CHECK(r.mailbox_id > 0);
	CHECK(mbox_id(s, user, "Work", NULL) > 0);
	CHECK(mbox_id(s, user, "Work/Projects", NULL) > 0);
	CHECK(mbox_id(s, user, "Work/Projects/tern", NULL) == r.mailbox_id);
	CHECK(RUNW(r, store_mailbox_create(s, NULL, user, "Work/Projects", NULL, res_cb, &r)) < 0);
	CHECK_STR(r.code, "ALREADYEXISTS");
	CHECK(RUNW(r, store_mailbox_create(s, NULL, user, "inbox", NULL, res_cb, &r)) < 0);
	CHECK_STR(r.code, "ALREADYEXISTS");
	const char *bad[] = { "", "/x", "x/", "x//y", "x\ry", "\xfe" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(RUNW(r, store_mailbox_create(s, NULL, user, bad[i], NULL, res_cb, &r)) < 0);
		CHECK_STR(r.code, "CANNOT");
	}
	CHECK(store_mailbox_create(s, NULL, user, NULL, NULL, res_cb, &r) < 0);
	CHECK(RUNW(r, store_mailbox_create(s, NULL, user, "Old", "\\archive", res_cb, &r)) == 0);
	struct store_mailbox mb = { 0 };
	CHECK(store_mailbox_get_by_id(s, r.mailbox_id, &mb, &err) == 1);
	CHECK_STR(mb.name, "Old");
	CHECK_STR(mb.special_use, "\\Archive");
	CHECK(mb.user_id == user && mb.uidnext == 1 && mb.messages == 0);
	uint32_t old_uidv = mb.uidvalidity;
	store_mailbox_clear(&mb);
	CHECK(store_mailbox_get_by_id(s, 999999, &mb, &err) == 0);
	CHECK(RUNW(r, store_mailbox_create(s, NULL, user, "Odd", "\\Bogus", res_cb, &r)) < 0);
	CHECK_STR(r.code, "USEATTR");
	/* INBOX/child in canonical case */
	CHECK(RUNW(r, store_mailbox_create(s, NULL, user, "inbox/Child", NULL, res_cb, &r)) == 0);
	CHECK(mbox_id(s, user, "INBOX/Child", NULL) == r.mailbox_id);
	/* a user's other mailboxes are not visible */
	CHECK(mbox_id(s, other, "Work", NULL) == 0);

	/* DELETE */
	CHECK(RUNW(r, store_mailbox_delete(s, NULL, user, "INBOX", res_cb, &r)) < 0);
	CHECK_STR(r.code, "CANNOT");
	CHECK(RUNW(r, store_mailbox_delete(s, NULL, user, "Work", res_cb, &r)) < 0);
	CHECK_STR(r.code, "INUSE");
	CHECK(RUNW(r, store_mailbox_delete(s, NULL, user, "Nope", res_cb, &r)) < 0);
	CHECK_STR(r.code, "NONEXISTENT");
	CHECK(RUNW(r, store_mailbox_delete(s, NULL, user, "a//b", res_cb, &r)) < 0);
	CHECK_STR(r.code, "CANNOT");
	/* delete with messages: usage goes down, files go */
	int64_t tern_id = mbox_id(s, user, "Work/Projects/tern", NULL);
	deliver(s, user, "a@example.test", "Work/Projects/tern", 2);
	deliver(s, user, "a@example.test", NULL, 1);
	struct list l = { 0 };
	list_mb(s, tern_id, &l);
	CHECK(l.n == 2);
	int64_t msgs = 0;
	CHECK(user_used(s, "a@example.test", &msgs) > 0 && msgs == 3);
	CHECK(RUNW(r, store_mailbox_delete(s, NULL, user, "Work/Projects/tern", res_cb, &r)) == 0);
	CHECK(l.n == 2 && access(l.paths[0], F_OK) < 0 && access(l.paths[1], F_OK) < 0);
	CHECK(user_used(s, "a@example.test", &msgs) > 0 && msgs == 1);
	CHECK(mbox_id(s, user, "Work/Projects/tern", NULL) == 0);
	/* created again: a new UIDVALIDITY */
	CHECK(RUNW(r, store_mailbox_create(s, NULL, user, "Work/Projects/tern", NULL, res_cb,
					   &r)) == 0);
	CHECK(r.mailbox_id != tern_id);
	CHECK(verify(s) == 0);

	/* RENAME with children; UIDVALIDITY kept */
	struct store_mailbox before = { 0 };
	mbox_id(s, user, "Work/Projects", &before);
	CHECK(RUNW(r, store_mailbox_rename(s, NULL, user, "Work", "Play/Now", res_cb, &r)) == 0);
	CHECK(mbox_id(s, user, "Work", NULL) == 0);
	CHECK(mbox_id(s, user, "Play", NULL) > 0);
	CHECK(mbox_id(s, user, "Play/Now", NULL) > 0);
	struct store_mailbox after = { 0 };
	CHECK(mbox_id(s, user, "Play/Now/Projects", &after) == before.id);
	CHECK(after.uidvalidity == before.uidvalidity);
	CHECK(mbox_id(s, user, "Play/Now/Projects/tern", NULL) > 0);
	store_mailbox_clear(&before);
	store_mailbox_clear(&after);
	CHECK(RUNW(r, store_mailbox_rename(s, NULL, user, "Old", "Play", res_cb, &r)) < 0);
	CHECK_STR(r.code, "ALREADYEXISTS");
	CHECK(RUNW(r, store_mailbox_rename(s, NULL, user, "Old", "INBOX", res_cb, &r)) < 0);
	CHECK_STR(r.code, "ALREADYEXISTS");
	CHECK(RUNW(r, store_mailbox_rename(s, NULL, user, "Gone", "New", res_cb, &r)) < 0);
	CHECK_STR(r.code, "NONEXISTENT");
	CHECK(RUNW(r, store_mailbox_rename(s, NULL, user, "Play", "Play/Sub", res_cb, &r)) < 0);
	CHECK_STR(r.code, "CANNOT");
	CHECK(RUNW(r, store_mailbox_rename(s, NULL, user, "Old", "x//y", res_cb, &r)) < 0);
	CHECK_STR(r.code, "CANNOT");
	/* a child whose new name would clash */
	CHECK(RUNW(r, store_mailbox_create(s, NULL, user, "Old/Sub", NULL, res_cb, &r)) == 0);
	CHECK(RUNW(r, store_mailbox_create(s, NULL, user, "Q/Sub", NULL, res_cb, &r)) == 0);
	CHECK(RUNW(r, store_mailbox_delete(s, NULL, user, "Q", res_cb, &r)) < 0);
	CHECK(RUNW(r, store_mailbox_rename(s, NULL, user, "Q", "Renamed", res_cb, &r)) == 0);
	CHECK(RUNW(r, store_mailbox_rename(s, NULL, user, "Renamed/Sub", "Old/Sub", res_cb,
					   &r)) < 0);
	CHECK_STR(r.code, "ALREADYEXISTS");
	CHECK(RUNW(r, store_mailbox_rename(s, NULL, user, "Old", "Kept", res_cb, &r)) == 0);
	CHECK(mbox_id(s, user, "Kept", &mb) > 0);
	CHECK(mb.uidvalidity == old_uidv);
	store_mailbox_clear(&mb);

	/* RENAME INBOX: messages move (new UIDs), INBOX stays empty, children stay */
	int64_t inbox = mbox_id(s, user, "INBOX", NULL);
	deliver(s, user, "a@example.test", NULL, 2);
	list_mb(s, inbox, &l);
	CHECK(l.n == 3);
	uint32_t inbox_uids[3] = { l.uids[0], l.uids[1], l.uids[2] };
	char *first_path = xstrdup(l.paths[0]);
	struct store_mailbox ib = { 0 };
	mbox_id(s, user, "INBOX", &ib);
	CHECK(RUNW(r, store_mailbox_rename(s, NULL, user, "InBox", "Archive/2026", res_cb, &r)) ==
	      0);
	int64_t moved_id = mbox_id(s, user, "Archive/2026", &mb);
	CHECK(moved_id > 0 && r.mailbox_id == moved_id);
	CHECK(mb.messages == 3 && mb.uidnext == 4 && mb.uidvalidity != ib.uidvalidity);
	store_mailbox_clear(&mb);
	list_mb(s, moved_id, &l);
	CHECK(l.n == 3 && l.uids[0] == 1 && l.uids[2] == 3);
	CHECK(l.n == 3 && strcmp(l.paths[0], first_path) == 0 && access(first_path, F_OK) == 0);
	free(first_path);
	mbox_id(s, user, "INBOX", &mb);
	CHECK(mb.id == inbox && mb.messages == 0 && mb.uidvalidity == ib.uidvalidity);
	CHECK(mb.uidnext == ib.uidnext && mb.highestmodseq > ib.highestmodseq);
	store_mailbox_clear(&mb);
	store_mailbox_clear(&ib);
	CHECK(mbox_id(s, user, "INBOX/Child", NULL) > 0);
	/* again, into a child of INBOX: allowed (INBOX's children stay put) */
	deliver(s, user, "a@example.test", NULL, 1);
	CHECK(RUNW(r, store_mailbox_rename(s, NULL, user, "INBOX", "INBOX/old", res_cb, &r)) == 0);
	mbox_id(s, user, "INBOX/old", &mb);
	CHECK(mb.messages == 1 && mb.uidnext == 2);
	store_mailbox_clear(&mb);
	/* INBOX's old UIDs are in its expunge history */
	struct list ex = { 0 };
	CHECK(store_expunged_since(s, inbox, 0, uid_collect, &ex, &err) == 0);
	CHECK(ex.n == 4 && ex.uids[0] == inbox_uids[0] && ex.uids[2] == inbox_uids[2]);
	list_free(&l);
	/* the user's usage did not change by renaming */
	CHECK(user_used(s, "a@example.test", &msgs) > 0 && msgs == 4);

	/* SUBSCRIBE: the special-use set was subscribed when it was created */
	CHECK(store_subscription_list(s, user, names_cb, &nm, &err) == 0);
	CHECK_STR(nm.buf, "Archive Drafts INBOX Junk Sent Trash");
	CHECK(RUNW(r, store_subscribe(s, NULL, user, "Archive", false, res_cb, &r)) == 0);
	CHECK(RUNW(r, store_subscribe(s, NULL, user, "Junk", false, res_cb, &r)) == 0);
	nm.buf[0] = '\0';
	CHECK(RUNW(r, store_subscribe(s, NULL, user, "b", true, res_cb, &r)) == 0);
	CHECK(RUNW(r, store_subscribe(s, NULL, user, "inbox", true, res_cb, &r)) == 0);
	CHECK(RUNW(r, store_subscribe(s, NULL, user, "a/not/there", true, res_cb, &r)) == 0);
	CHECK(RUNW(r, store_subscribe(s, NULL, user, "b", true, res_cb, &r)) == 0);
	CHECK(RUNW(r, store_subscribe(s, NULL, user, "x//", true, res_cb, &r)) < 0);
	CHECK_STR(r.code, "CANNOT");
	CHECK(store_subscription_list(s, user, names_cb, &nm, &err) == 0);
	CHECK_STR(nm.buf, "Drafts INBOX Sent Trash a/not/there b");
	CHECK(RUNW(r, store_subscribe(s, NULL, user, "a/not/there", false, res_cb, &r)) == 0);
	nm.buf[0] = '\0';
	CHECK(store_subscription_list(s, user, names_cb, &nm, &err) == 0);
	CHECK_STR(nm.buf, "Drafts INBOX Sent Trash b");
	nm.buf[0] = '\0';
	CHECK(store_subscription_list(s, other, names_cb, &nm, &err) == 0);
	CHECK_STR(nm.buf, "");

	/* LIMIT: a user with the maximum number of mailboxes */
	sqlite3 *db;
	char path[256];
	snprintf(path, sizeof(path), "%s/index.db", dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	char *sql = xasprintf("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
			      " WHERE i < 10000) INSERT INTO mailboxes(user_id, name, uidvalidity)"
			      " SELECT %lld, 'filler' || i, i FROM n", (long long)other);
	CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
	free(sql);
	sqlite3_close(db);
	CHECK(RUNW(r, store_mailbox_create(s, NULL, other, "More", NULL, res_cb, &r)) < 0);
	CHECK_STR(r.code, "LIMIT");
	/* nonexistent user */
	CHECK(RUNW(r, store_mailbox_create(s, NULL, 424242, "X", NULL, res_cb, &r)) < 0);
	CHECK_STR(r.code, "NONEXISTENT");

	nm.buf[0] = '\0';
	CHECK(store_mailbox_list(s, user, mbnames_cb, &nm, &err) == 0);
	CHECK(strstr(nm.buf, "Play/Now/Projects/tern") != NULL);
	CHECK(verify(s) == 0);
	store_close(&s);
	rm_dir(dir);
}

/* ------------------------------------------------- APPEND and STORE */

static int changed_cb(void *ctx, const struct store_message *m)
{
	return list_cb(ctx, m);
}

static void test_append_flags(void)
{
	char *dir = new_dir();
	struct store *s = open_store(dir);
	const char *err = NULL;
	struct res r;
	struct list l = { 0 };
	int64_t user = add_user(s, "a@example.test", 0);
	int64_t msgs = 0;

	const char msg[] = "Subject: hi\nX: y\r\n\nbody\n";
	CHECK(RUNW(r, store_append(s, NULL, user, "INBOX", msg, strlen(msg),
				   "foo \\seen \\Recent Bar", 1700000000, res_cb, &r)) == 0);
	CHECK(r.count == 1 && r.dst[0] == 1 && r.uidvalidity > 0 && r.modseq > 1);
	struct store_mailbox mb = { 0 };
	int64_t inbox = mbox_id(s, user, "inbox", &mb);
	CHECK(mb.uidvalidity == r.uidvalidity && mb.highestmodseq == r.modseq);
	CHECK(mb.messages == 1 && mb.uidnext == 2);
	store_mailbox_clear(&mb);
	list_mb(s, inbox, &l);
	CHECK(l.n == 1);
	CHECK_STR(l.flags[0], "\\Seen Bar foo");
	const char want[] = "Subject: hi\r\nX: y\r\n\r\nbody\r\n";
	CHECK(l.size[0] == (int64_t)strlen(want));
	char got[128] = { 0 };
	int fd = open(l.paths[0], O_RDONLY);
	CHECK(fd >= 0 && read(fd, got, sizeof(got) - 1) == (ssize_t)strlen(want));
	if (fd >= 0)
		close(fd);
	CHECK_STR(got, want);
	CHECK(user_used(s, "a@example.test", &msgs) == (int64_t)strlen(want) && msgs == 1);
	char *kw = store_mailbox_keywords(s, inbox, &err);
	CHECK_STR(kw, "Bar foo");
	free(kw);

	/* errors */
	CHECK(RUNW(r, store_append(s, NULL, user, "Nope", msg, strlen(msg), "", 0, res_cb, &r)) <
	      0);
	CHECK_STR(r.code, "NONEXISTENT");
	CHECK(store_append(s, NULL, user, "INBOX", msg, strlen(msg), "\\Bogus", 0, res_cb, &r) < 0);
	CHECK(store_append(s, NULL, user, "INBOX", msg, strlen(msg), "", 0, NULL, NULL) < 0);
	/* special-use mailboxes exist without a listing first */
	CHECK(RUNW(r, store_append(s, NULL, user, "Drafts", msg, strlen(msg), "\\Draft", 0,
				   res_cb, &r)) == 0);
	/* more messages in INBOX */
	for (int i = 0; i < 3; i++)
		CHECK(RUNW(r, store_append(s, NULL, user, "INBOX", msg, strlen(msg), "", 0,
					   res_cb, &r)) == 0 && r.dst[0] == (uint32_t)(i + 2));
	list_mb(s, inbox, &l);
	CHECK(l.n == 4);
	uint64_t m4 = l.modseq[3];

	/* STORE +FLAGS on 1..4 plus a missing UID: only changed ones get the modseq */
	uint32_t all[] = { 4, 2, 3, 1, 77 };
	CHECK(RUNW(r, store_flags_update(s, NULL, inbox, all, 5, STORE_FLAGS_ADD, "\\Seen", 0,
					 res_cb, &r)) == 0);
	uint64_t ms1 = r.modseq;
	CHECK(ms1 > m4 && r.modified_count == 0);
	list_mb(s, inbox, &l);
	CHECK(l.modseq[0] < ms1 && l.modseq[1] == ms1 && l.modseq[3] == ms1);
	CHECK_STR(l.flags[0], "\\Seen Bar foo");
	CHECK_STR(l.flags[1], "\\Seen");
	/* a STORE that changes nothing takes no modseq */
	CHECK(RUNW(r, store_flags_update(s, NULL, inbox, all, 4, STORE_FLAGS_ADD, "\\seen", 0,
					 res_cb, &r)) == 0);
	CHECK(r.modseq == ms1);
	mbox_id(s, user, "INBOX", &mb);
	CHECK(mb.highestmodseq == ms1);
	store_mailbox_clear(&mb);
	/* -FLAGS and FLAGS */
	uint32_t one[] = { 1 }, two[] = { 2 };
	CHECK(RUNW(r, store_flags_update(s, NULL, inbox, one, 1, STORE_FLAGS_REMOVE, "FOO \\Seen",
					 0, res_cb, &r)) == 0 && r.modseq == ms1 + 1);
	CHECK(RUNW(r, store_flags_update(s, NULL, inbox, two, 1, STORE_FLAGS_SET,
					 "\\Flagged $Junk", 0, res_cb, &r)) == 0);
	uint64_t ms3 = r.modseq;
	CHECK(ms3 == ms1 + 2);
	list_mb(s, inbox, &l);
	CHECK_STR(l.flags[0], "Bar");
	CHECK_STR(l.flags[1], "\\Flagged $Junk");
	kw = store_mailbox_keywords(s, inbox, &err);
	CHECK_STR(kw, "$Junk Bar foo");
	free(kw);
	CHECK(store_flags_update(s, NULL, inbox, one, 1, STORE_FLAGS_ADD, "a{b", 0, res_cb,
				 &r) < 0);

	/* UNCHANGEDSINCE: uid 2 changed at ms3, uid 3 and 4 at ms1 */
	uint32_t cond[] = { 2, 3, 4 };
	CHECK(RUNW(r, store_flags_update(s, NULL, inbox, cond, 3, STORE_FLAGS_ADD, "\\Deleted",
					 ms1, res_cb, &r)) == 0);
	CHECK(r.modified_count == 1 && r.modified[0] == 2);
	uint64_t ms4 = r.modseq;
	CHECK(ms4 == ms3 + 1);
	list_mb(s, inbox, &l);
	CHECK_STR(l.flags[1], "\\Flagged $Junk");
	CHECK_STR(l.flags[2], "\\Seen \\Deleted");

	/* changes since a modseq */
	struct list ch = { 0 };
	CHECK(store_message_list_changed(s, inbox, ms3 - 1, changed_cb, &ch, &err) == 0);
	CHECK(ch.n == 3 && ch.uids[0] == 2 && ch.uids[1] == 3 && ch.uids[2] == 4);
	list_free(&ch);
	CHECK(store_message_list_changed(s, inbox, ms4, changed_cb, &ch, &err) == 0);
	CHECK(ch.n == 0);
	CHECK(RUNW(r, store_flags_update(s, NULL, 987654, one, 1, STORE_FLAGS_ADD, "\\Seen", 0,
					 res_cb, &r)) < 0);
	CHECK_STR(r.code, "NONEXISTENT");
	/* deliveries still start with no flags */
	deliver(s, user, "a@example.test", NULL, 1);
	list_mb(s, inbox, &l);
	CHECK(l.n == 5);
	CHECK_STR(l.flags[4], "");
	/* a failed file write fails the APPEND alone and leaves nothing behind */
	mbox_id(s, user, "INBOX", &mb);
	store_fault_inject(s, 1, ENOSPC);
	CHECK(RUNW(r, store_append(s, NULL, user, "INBOX", msg, strlen(msg), "", 0, res_cb,
				   &r)) < 0);
	CHECK(r.code[0] == '\0' && strstr(r.error, "No space") != NULL);
	struct store_mailbox mb2 = { 0 };
	mbox_id(s, user, "INBOX", &mb2);
	CHECK(mb2.uidnext == mb.uidnext && mb2.messages == mb.messages &&
	      mb2.highestmodseq == mb.highestmodseq);
	store_mailbox_clear(&mb);
	store_mailbox_clear(&mb2);
	CHECK(RUNW(r, store_append(s, NULL, user, "INBOX", msg, strlen(msg), "", 0, res_cb,
				   &r)) == 0);
	list_free(&l);
	CHECK(verify(s) == 0);
	store_close(&s);
	rm_dir(dir);
}

/* ---------------------------------------- COPY, MOVE, EXPUNGE, quota */

static void test_copy_move_expunge(void)
{
	char *dir = new_dir();
	struct store *s = open_store(dir);
	const char *err = NULL;
	struct res r;
	struct list l = { 0 }, a = { 0 }, e = { 0 };
	int64_t user = add_user(s, "a@example.test", 0);
	int64_t other = add_user(s, "b@example.test", 0);
	int64_t msgs = 0;

	deliver(s, user, "a@example.test", NULL, 4);
	deliver(s, other, "b@example.test", NULL, 1);
	int64_t inbox = mbox_id(s, user, "INBOX", NULL);
	int64_t archive = mbox_id(s, user, "Archive", NULL);
	int64_t other_inbox = mbox_id(s, other, "INBOX", NULL);
	uint32_t one[] = { 1 };
	CHECK(RUNW(r, store_flags_update(s, NULL, inbox, one, 1, STORE_FLAGS_ADD, "\\Seen kw1",
					 0, res_cb, &r)) == 0);
	int64_t used0 = user_used(s, "a@example.test", &msgs);
	CHECK(msgs == 4);

	/* COPY 3, 1 and a missing UID: shared files, new UIDs, flags kept */
	uint32_t cp[] = { 3, 1, 99 };
	CHECK(RUNW(r, store_copy(s, NULL, inbox, cp, 3, archive, false, res_cb, &r)) == 0);
	CHECK(r.count == 2 && r.src[0] == 1 && r.src[1] == 3 && r.dst[0] == 1 && r.dst[1] == 2);
	struct store_mailbox mb = { 0 };
	mbox_id(s, user, "Archive", &mb);
	CHECK(r.uidvalidity == mb.uidvalidity && r.modseq == mb.highestmodseq);
	CHECK(mb.messages == 2);
	store_mailbox_clear(&mb);
	list_mb(s, inbox, &l);
	list_mb(s, archive, &a);
	CHECK(a.n == 2 && strcmp(a.paths[0], l.paths[0]) == 0 &&
	      strcmp(a.paths[1], l.paths[2]) == 0);
	CHECK(a.n == 2 && strcmp(a.flags[0], "\\Seen kw1") == 0);
	char *kw = store_mailbox_keywords(s, archive, &err);
	CHECK_STR(kw, "kw1");
	free(kw);
	CHECK(user_used(s, "a@example.test", &msgs) == used0 + a.size[0] + a.size[1] &&
	      msgs == 6);
	CHECK(verify(s) == 0);     /* shared files are fine */

	/* expunge one copy: the other stays readable */
	CHECK(RUNW(r, store_expunge(s, NULL, inbox, one, 1, res_cb, &r)) == 0);
	CHECK(r.count == 1 && r.src[0] == 1);
	uint64_t ex_modseq = r.modseq;
	CHECK(access(a.paths[0], R_OK) == 0);
	CHECK(store_message_exists(s, inbox, 1, &err) == 0);
	CHECK(verify(s) == 0);
	/* and the last one: the file goes */
	CHECK(RUNW(r, store_expunge(s, NULL, archive, one, 1, res_cb, &r)) == 0);
	CHECK(access(a.paths[0], F_OK) < 0);
	CHECK(user_used(s, "a@example.test", &msgs) > 0 && msgs == 4);
	/* expunging nothing changes nothing */
	CHECK(RUNW(r, store_expunge(s, NULL, inbox, one, 1, res_cb, &r)) == 0);
	CHECK(r.count == 0 && r.modseq == ex_modseq);
	CHECK(RUNW(r, store_expunge(s, NULL, 55555, one, 1, res_cb, &r)) < 0);
	CHECK_STR(r.code, "NONEXISTENT");
	CHECK(verify(s) == 0);

	/* MOVE 2 and 4 to Archive: expunged from INBOX, usage unchanged */
	int64_t used1 = user_used(s, "a@example.test", &msgs);
	uint32_t mv[] = { 4, 2 };
	list_mb(s, inbox, &l);
	CHECK(l.n == 3);
	char *p2 = xstrdup(l.paths[0]);
	CHECK(RUNW(r, store_copy(s, NULL, inbox, mv, 2, archive, true, res_cb, &r)) == 0);
	CHECK(r.count == 2 && r.src[0] == 2 && r.src[1] == 4 && r.dst[0] == 3 && r.dst[1] == 4);
	uint64_t mv_modseq = r.modseq;
	mbox_id(s, user, "INBOX", &mb);
	CHECK(mb.highestmodseq == mv_modseq && mb.messages == 1);
	store_mailbox_clear(&mb);
	CHECK(store_message_exists(s, inbox, 2, &err) == 0);
	CHECK(store_message_exists(s, archive, 3, &err) == 1);
	CHECK(access(p2, R_OK) == 0);
	free(p2);
	CHECK(user_used(s, "a@example.test", &msgs) == used1 && msgs == 4);
	/* expunge history for VANISHED */
	CHECK(store_expunged_since(s, inbox, 0, uid_collect, &e, &err) == 0);
	CHECK(e.n == 3 && e.uids[0] == 1 && e.uids[1] == 2 && e.uids[2] == 4);
	e.n = 0;
	CHECK(store_expunged_since(s, inbox, ex_modseq, uid_collect, &e, &err) == 0);
	CHECK(e.n == 2 && e.uids[0] == 2 && e.uids[1] == 4);
	e.n = 0;
	CHECK(store_expunged_since(s, inbox, mv_modseq, uid_collect, &e, &err) == 0);
	CHECK(e.n == 0);
	/* the moved messages are "changed" in the destination */
	struct list ch = { 0 };
	CHECK(store_message_list_changed(s, archive, 0, changed_cb, &ch, &err) == 0);
	CHECK(ch.n == 3);
	list_free(&ch);

	/* COPY/MOVE errors */
	uint32_t three[] = { 3 };
	CHECK(RUNW(r, store_copy(s, NULL, inbox, three, 1, other_inbox, false, res_cb, &r)) < 0);
	CHECK_STR(r.code, "NONEXISTENT");
	CHECK(RUNW(r, store_copy(s, NULL, inbox, three, 1, 777777, true, res_cb, &r)) < 0);
	CHECK_STR(r.code, "NONEXISTENT");
	CHECK(RUNW(r, store_copy(s, NULL, 777777, three, 1, inbox, false, res_cb, &r)) < 0);
	CHECK_STR(r.code, "NONEXISTENT");
	CHECK(store_copy(s, NULL, inbox, NULL, 1, archive, false, res_cb, &r) < 0);
	/* nothing to copy: OK, empty result */
	CHECK(RUNW(r, store_copy(s, NULL, inbox, one, 1, archive, false, res_cb, &r)) == 0);
	CHECK(r.count == 0);
	/* COPY into the same mailbox, MOVE within it */
	CHECK(RUNW(r, store_copy(s, NULL, inbox, three, 1, inbox, false, res_cb, &r)) == 0);
	CHECK(r.count == 1 && r.dst[0] == 5);
	CHECK(RUNW(r, store_copy(s, NULL, inbox, three, 1, inbox, true, res_cb, &r)) == 0);
	CHECK(r.count == 1 && r.dst[0] == 6);
	list_mb(s, inbox, &l);
	CHECK(l.n == 2 && l.uids[0] == 5 && l.uids[1] == 6);
	CHECK(verify(s) == 0);

	/* quota on APPEND and COPY */
	int64_t used = user_used(s, "a@example.test", &msgs);
	CHECK(store_user_set_quota(s, "a@example.test", used + 10, &err) == 0);
	const char big[] = "Subject: big\r\n\r\nmore than ten bytes\r\n";
	CHECK(RUNW(r, store_append(s, NULL, user, "INBOX", big, strlen(big), "", 0, res_cb, &r)) <
	      0);
	CHECK_STR(r.code, "OVERQUOTA");
	uint32_t five[] = { 5 };
	CHECK(RUNW(r, store_copy(s, NULL, inbox, five, 1, archive, false, res_cb, &r)) < 0);
	CHECK_STR(r.code, "OVERQUOTA");
	/* MOVE does not add usage */
	CHECK(RUNW(r, store_copy(s, NULL, inbox, five, 1, archive, true, res_cb, &r)) == 0);
	CHECK(RUNW(r, store_append(s, NULL, user, "INBOX", "x\r\n", 3, "", 0, res_cb, &r)) == 0);
	CHECK(user_used(s, "a@example.test", &msgs) == used + 3);
	list_free(&l);
	list_free(&a);
	CHECK(verify(s) == 0);
	store_close(&s);
	rm_dir(dir);
}

/* ------------------------------------------------------------ \Recent */

static void test_recent(void)
{
	char *dir = new_dir();
	struct store *s = open_store(dir);
	const char *err = NULL;
	uint32_t first = 0;
	int64_t user = add_user(s, "a@example.test", 0);

	deliver(s, user, "a@example.test", NULL, 2);
	int64_t inbox = mbox_id(s, user, "INBOX", NULL);
	CHECK(store_mailbox_claim_recent(s, inbox, &first, &err) == 0);
	CHECK(first == 1);      /* both are recent for the first session */
	CHECK(store_mailbox_claim_recent(s, inbox, &first, &err) == 0);
	CHECK(first == 3);      /* none for the second */
	deliver(s, user, "a@example.test", NULL, 1);
	CHECK(store_mailbox_claim_recent(s, inbox, &first, &err) == 0);
	CHECK(first == 3);
	CHECK(store_mailbox_claim_recent(s, inbox, &first, &err) == 0);
	CHECK(first == 4);
	CHECK(store_mailbox_claim_recent(s, 31337, &first, &err) < 0);
	CHECK(verify(s) == 0);
	store_close(&s);
	rm_dir(dir);
}

/* -------------------------------------------------------------- notify */

struct evs {
	struct event_base *base;
	int n;
	struct notify_event ev[32];
	int want;
};

static void ev_cb(void *ctx, const struct notify_event *ev)
{
	struct evs *e = ctx;
	if (e->n < 32)
		e->ev[e->n++] = *ev;
	if (e->n >= e->want)
		event_base_loopbreak(e->base);
}

/* Run the loop until want events arrived (or 5 s passed). */
static void ev_wait(struct evs *e, int want)
{
	struct timeval tv = { 5, 0 };
	e->want = want;
	if (e->n >= want)
		return;
	event_base_loopexit(e->base, &tv);
	event_base_dispatch(e->base);
}

struct async_res {
	struct event_base *base;
	int calls;
	int status;
	uint32_t dst;
};

static void async_cb(void *ctx, const struct store_write_result *r)
{
	struct async_res *a = ctx;
	a->calls++;
	a->status = r->status;
	a->dst = r->count > 0 ? r->dst_uids[0] : 0;
}

static void test_notify(void)
{
	char *dir = new_dir();
	struct store *s = open_store(dir);
	struct res r;
	int64_t user = add_user(s, "a@example.test", 0);
	int64_t other = add_user(s, "b@example.test", 0);
	struct evs e = { .base = event_base_new() };
	struct notify_sub *sub = notify_subscribe(user, e.base, ev_cb, &e);

	deliver(s, other, "b@example.test", NULL, 1);     /* not ours */
	deliver(s, user, "a@example.test", NULL, 1);
	ev_wait(&e, 1);
	int64_t inbox = mbox_id(s, user, "INBOX", NULL);
	struct store_mailbox mb = { 0 };
	mbox_id(s, user, "INBOX", &mb);
	CHECK(e.n == 1 && e.ev[0].user_id == user && e.ev[0].mailbox_id == inbox &&
	      e.ev[0].kinds == NOTIFY_MESSAGE_NEW && e.ev[0].modseq == mb.highestmodseq);
	store_mailbox_clear(&mb);

	/* STORE: NOTIFY_FLAGS with the new modseq */
	uint32_t one[] = { 1 };
	e.n = 0;
	CHECK(RUNW(r, store_flags_update(s, NULL, inbox, one, 1, STORE_FLAGS_ADD, "\\Flagged", 0,
					 res_cb, &r)) == 0);
	ev_wait(&e, 1);
	CHECK(e.n == 1 && e.ev[0].kinds == NOTIFY_FLAGS && e.ev[0].modseq == r.modseq);

	/* APPEND completing on the event_base, then its event */
	struct async_res a = { .base = e.base };
	e.n = 0;
	CHECK(store_append(s, e.base, user, "INBOX", "a\r\n", 3, "", 0, async_cb, &a) == 0);
	ev_wait(&e, 1);
	for (int i = 0; i < 100 && a.calls == 0; i++) {
		struct timeval tv = { 0, 10000 };
		event_base_loopexit(e.base, &tv);
		event_base_dispatch(e.base);
	}
	CHECK(a.calls == 1 && a.status == 0 && a.dst == 2);
	CHECK(e.n == 1 && e.ev[0].kinds == NOTIFY_MESSAGE_NEW && e.ev[0].mailbox_id == inbox);

	/* MOVE: EXPUNGE on the source, NEW on the destination */
	int64_t trash = mbox_id(s, user, "Trash", NULL);
	e.n = 0;
	CHECK(RUNW(r, store_copy(s, NULL, inbox, one, 1, trash, true, res_cb, &r)) == 0);
	ev_wait(&e, 2);
	CHECK(e.n == 2);
	bool saw_exp = false, saw_new = false;
	for (int i = 0; i < e.n; i++) {
		if (e.ev[i].mailbox_id == inbox && (e.ev[i].kinds & NOTIFY_MESSAGE_EXPUNGE) &&
		    e.ev[i].modseq == r.modseq)
			saw_exp = true;
		if (e.ev[i].mailbox_id == trash && (e.ev[i].kinds & NOTIFY_MESSAGE_NEW))
			saw_new = true;
	}
	CHECK(saw_exp && saw_new);

	/* EXPUNGE, CREATE, POP3 update */
	uint32_t two[] = { 2 };
	e.n = 0;
	CHECK(RUNW(r, store_expunge(s, NULL, inbox, two, 1, res_cb, &r)) == 0);
	ev_wait(&e, 1);
	CHECK(e.n == 1 && e.ev[0].kinds == NOTIFY_MESSAGE_EXPUNGE && e.ev[0].modseq == r.modseq);
	e.n = 0;
	CHECK(RUNW(r, store_mailbox_create(s, NULL, user, "New", NULL, res_cb, &r)) == 0);
	ev_wait(&e, 1);
	CHECK(e.n == 1 && e.ev[0].kinds == NOTIFY_MAILBOX && e.ev[0].mailbox_id == r.mailbox_id);
	deliver(s, user, "a@example.test", NULL, 1);
	ev_wait(&e, 2);
	e.n = 0;
	uint32_t three[] = { 3 };
	const char *err = NULL;
	struct store_pop3_update up = { .user_id = user, .mailbox_id = inbox,
					.expunge_uids = three, .expunge_count = 1 };
	CHECK(store_pop3_update_sync(s, &up, &err) == 0);
	ev_wait(&e, 1);
	CHECK(e.n == 1 && (e.ev[0].kinds & NOTIFY_MESSAGE_EXPUNGE) && e.ev[0].mailbox_id == inbox);

	/* a failed write publishes nothing */
	e.n = 0;
	CHECK(RUNW(r, store_mailbox_create(s, NULL, user, "New", NULL, res_cb, &r)) < 0);
	struct timeval tv = { 0, 100000 };
	event_base_loopexit(e.base, &tv);
	event_base_dispatch(e.base);
	CHECK(e.n == 0);

	notify_unsubscribe(&sub);
	event_base_free(e.base);
	CHECK(verify(s) == 0);
	store_close(&s);
	rm_dir(dir);
}

/* ----------------------------------------------------- upgrade from v2 */

static void test_upgrade_v2(void)
{
	char *dir = new_dir();
	struct store *s = open_store(dir);
	struct res r;
	const char *err = NULL;
	int64_t user = add_user(s, "a@example.test", 0);

	deliver(s, user, "a@example.test", NULL, 3);
	store_close(&s);

	/* make it a version 2 store */
	sqlite3 *db;
	char path[256];
	snprintf(path, sizeof(path), "%s/index.db", dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, STORE_TEST_UNDO_V4
			       "DROP INDEX messages_modseq; DROP INDEX messages_file;"
			       "DROP TABLE keywords; DROP TABLE subscriptions;"
			       "ALTER TABLE mailboxes DROP COLUMN recent_uid;"
			       "DELETE FROM schema_version WHERE version = 3;",
			   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);

	s = open_store(dir);
	CHECK(store_schema_version(s) == STORE_SCHEMA_VERSION_CURRENT);
	int64_t inbox = mbox_id(s, user, "INBOX", NULL);
	uint32_t first = 0;
	/* existing mail is not recent after the upgrade */
	CHECK(store_mailbox_claim_recent(s, inbox, &first, &err) == 0);
	CHECK(first == 4);
	uint32_t cp[] = { 1, 2 };
	int64_t archive = mbox_id(s, user, "Archive", NULL);
	CHECK(RUNW(r, store_copy(s, NULL, inbox, cp, 2, archive, false, res_cb, &r)) == 0);
	CHECK(RUNW(r, store_subscribe(s, NULL, user, "Archive", true, res_cb, &r)) == 0);
	CHECK(RUNW(r, store_flags_update(s, NULL, archive, cp, 1, STORE_FLAGS_ADD, "$Label1", 0,
					 res_cb, &r)) == 0);
	char *kw = store_mailbox_keywords(s, archive, &err);
	CHECK_STR(kw, "$Label1");
	free(kw);
	CHECK(verify(s) == 0);
	store_close(&s);
	rm_dir(dir);
}

int main(void)
{
	evthread_use_pthreads();
	setenv("TZ", "UTC", 1);
	umask(022);
	RUN(test_flags_names);
	RUN(test_mailboxes);
	RUN(test_append_flags);
	RUN(test_copy_move_expunge);
	RUN(test_recent);
	RUN(test_notify);
	RUN(test_upgrade_v2);
	return unit_summary("store-imap");
}
