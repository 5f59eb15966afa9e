/* Unit tests for the store's POP3 / expunge additions: store_pop3_update
 * (expunge with counters, usage, history and file removal; \Seen and
 * pop3_retrieved; EXPIRE; move to Trash; UIDs already gone), the async
 * path with an event loop, store_message_exists, and the in-place upgrade
 * of a version 1 data folder to version 2. */
#include "store-test-util.h"
#include "unit.h"
#include "store/store.h"
#include "store/unlink.h"
#include "lib/buf.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpl[64];

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(path);
}

static struct store *open_store(const char *dir)
{
	struct store_options o = { 0 };
	struct store *s = NULL;
	const char *err = NULL;

	if (store_open(dir, &o, &s, &err) < 0) {
		fprintf(stderr, "store_open: %s\n", err);
		exit(1);
	}
	return s;
}

static int64_t setup_user(struct store *s, const char *addr)
{
	struct store_user u = { 0 };
	const char *err = NULL;
	int64_t id;

	store_domain_add(s, "example.test", &err);
	CHECK(store_user_add(s, addr, NULL, NULL, 0, &err) == 0);
	CHECK(store_user_get(s, addr, &u, &err) == 1);
	id = u.id;
	store_user_clear(&u);
	return id;
}

static void deliver(struct store *s, int64_t uid, const char *addr, int n)
{
	for (int i = 0; i < n; i++) {
		char body[64];
		snprintf(body, sizeof(body), "Subject: %d\r\n\r\nbody %d\r\n", i, i);
		struct store_delivery_rcpt r = { .user_id = uid, .delivered_to = addr };
		struct store_delivery d = { .return_path = "x@y.test", .body = body,
					    .body_len = strlen(body), .rcpts = &r, .rcpt_count = 1 };
		const char *err = NULL;
		CHECK(store_deliver_sync(s, &d, &err) == 0);
	}
}

struct list {
	uint32_t uids[16];
	char *paths[16];
	char *flags[16];
	int n;
};

static int list_cb(void *ctx, const struct store_message *m)
{
	struct list *l = ctx;
	if (l->n < 16) {
		l->uids[l->n] = m->uid;
		l->paths[l->n] = xstrdup(m->path);
		l->flags[l->n] = xstrdup(m->flags);
		l->n++;
	}
	return 0;
}

static void list_free(struct list *l)
{
	for (int i = 0; i < l->n; i++) {
		free(l->paths[i]);
		free(l->flags[i]);
	}
	l->n = 0;
}

static void mailbox(struct store *s, int64_t uid, const char *name, struct store_mailbox *mb,
		    struct list *l)
{
	const char *err = NULL;
	CHECK(store_mailbox_get(s, uid, name, mb, &err) == 1);
	l->n = 0;
	CHECK(store_message_list(s, mb->id, 1, list_cb, l, &err) == 0);
}

static void verify_cb(void *ctx, const char *problem)
{
	(void)ctx;
	fprintf(stderr, "  verify: %s\n", problem);
}

static void test_update(void)
{
	struct store *s;
	struct store_mailbox mb = { 0 }, trash = { 0 };
	struct store_user u = { 0 };
	struct list l = { 0 }, t = { 0 };
	const char *err = NULL;
	int64_t uid;

	strcpy(tmpl, "/tmp/tern-pop3s-XXXXXX");
	CHECK(mkdtemp(tmpl) != NULL);
	s = open_store(tmpl);
	uid = setup_user(s, "a@example.test");
	deliver(s, uid, "a@example.test", 5);
	mailbox(s, uid, "INBOX", &mb, &l);
	CHECK(l.n == 5 && mb.messages == 5);
	uint64_t modseq0 = mb.highestmodseq;

	/* expunge 1 and 3, retrieve 2; 99 does not exist */
	uint32_t ex[] = { l.uids[0], l.uids[2], 99 };
	uint32_t re[] = { l.uids[1] };
	struct store_pop3_update up = { .user_id = uid, .mailbox_id = mb.id, .expunge_uids = ex,
					.expunge_count = 3, .retrieved_uids = re,
					.retrieved_count = 1, .retrieved_at = 1000 };
	CHECK(store_pop3_update_sync(s, &up, &err) == 0);
	/* the rows are gone at once; the files go on the unlink thread */
	CHECK(store_message_exists(s, mb.id, l.uids[2], &err) == 0);
	store_unlink_wait(s);
	CHECK(access(l.paths[0], F_OK) < 0 && access(l.paths[2], F_OK) < 0);
	CHECK(access(l.paths[1], F_OK) == 0);
	CHECK(store_message_exists(s, mb.id, l.uids[0], &err) == 0);
	CHECK(store_message_exists(s, mb.id, l.uids[1], &err) == 1);
	list_free(&l);
	store_mailbox_clear(&mb);
	mailbox(s, uid, "INBOX", &mb, &l);
	CHECK(l.n == 3 && mb.messages == 3);
	CHECK(mb.highestmodseq == modseq0 + 1);
	CHECK_STR(l.flags[0], "\\Seen");
	CHECK_STR(l.flags[1], "");
	CHECK(store_user_get(s, "a@example.test", &u, &err) == 1);
	CHECK(u.used_messages == 3 && u.used_bytes == mb.bytes);
	store_user_clear(&u);
	CHECK(store_verify(s, verify_cb, NULL, &err) == 0);

	/* EXPIRE: the retrieved message (at t=1000) goes, others stay */
	struct store_pop3_update exp = { .user_id = uid, .mailbox_id = mb.id,
					 .expire_before = 2000 };
	CHECK(store_pop3_update_sync(s, &exp, &err) == 0);
	list_free(&l);
	store_mailbox_clear(&mb);
	mailbox(s, uid, "INBOX", &mb, &l);
	CHECK(l.n == 2);

	/* to Trash: the file stays, the usage stays, Trash gets the next UID */
	uint32_t tr[] = { l.uids[0] };
	struct store_pop3_update mv = { .user_id = uid, .mailbox_id = mb.id, .expunge_uids = tr,
					.expunge_count = 1, .to_trash = true };
	CHECK(store_pop3_update_sync(s, &mv, &err) == 0);
	CHECK(access(l.paths[0], F_OK) == 0);
	mailbox(s, uid, "Trash", &trash, &t);
	CHECK(t.n == 1 && trash.messages == 1 && t.uids[0] == 1);
	CHECK(store_user_get(s, "a@example.test", &u, &err) == 1);
	CHECK(u.used_messages == 2);
	store_user_clear(&u);
	CHECK(store_verify(s, verify_cb, NULL, &err) == 0);

	/* the expunge history */
	sqlite3 *db;
	sqlite3_stmt *st;
	char path[128];
	snprintf(path, sizeof(path), "%s/index.db", tmpl);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, "SELECT count(*) FROM expunged WHERE mailbox_id = ?", -1,
				 &st, NULL) == SQLITE_OK);
	sqlite3_bind_int64(st, 1, mb.id);
	CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 4);
	sqlite3_finalize(st);
	sqlite3_close(db);

	/* invalid requests are refused */
	struct store_pop3_update bad = { .user_id = uid, .mailbox_id = 0 };
	CHECK(store_pop3_update_sync(s, &bad, &err) < 0);

	list_free(&l);
	list_free(&t);
	store_mailbox_clear(&mb);
	store_mailbox_clear(&trash);
	store_close(&s);
	nftw(tmpl, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

struct async_wait {
	struct event_base *base;
	int status;
	int calls;
};

static void async_done(void *ctx, int status, const char *error)
{
	struct async_wait *w = ctx;
	(void)error;
	w->status = status;
	w->calls++;
	event_base_loopexit(w->base, NULL);
}

static void guard_cb(evutil_socket_t fd, short what, void *base)
{
	(void)fd; (void)what;
	event_base_loopbreak(base);
}

static void test_async_and_upgrade(void)
{
	struct store *s;
	struct store_mailbox mb = { 0 };
	struct list l = { 0 };
	const char *err = NULL;
	int64_t uid;

	strcpy(tmpl, "/tmp/tern-pop3s-XXXXXX");
	CHECK(mkdtemp(tmpl) != NULL);
	s = open_store(tmpl);
	uid = setup_user(s, "b@example.test");
	deliver(s, uid, "b@example.test", 2);
	mailbox(s, uid, "INBOX", &mb, &l);

	evthread_use_pthreads();
	struct async_wait w = { .base = event_base_new(), .status = 1 };
	/* keeps the loop running until the completion arrives (or 10 s) */
	struct event *guard = evtimer_new(w.base, guard_cb, w.base);
	struct timeval ten = { 10, 0 };
	evtimer_add(guard, &ten);
	uint32_t ex[] = { l.uids[0] };
	struct store_pop3_update up = { .user_id = uid, .mailbox_id = mb.id, .expunge_uids = ex,
					.expunge_count = 1 };
	CHECK(store_pop3_update(s, w.base, &up, async_done, &w) == 0);
	event_base_dispatch(w.base);
	CHECK(w.calls == 1 && w.status == 0);
	CHECK(store_message_exists(s, mb.id, l.uids[0], &err) == 0);
	event_free(guard);
	event_base_free(w.base);
	list_free(&l);
	store_mailbox_clear(&mb);
	store_close(&s);

	/* make it a version 1 store again, then reopen: migrated in place */
	sqlite3 *db;
	char path[128];
	snprintf(path, sizeof(path), "%s/index.db", tmpl);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	/* (and undo the later migrations first: versions 5 and 4, then
	 * version 3, IMAP) */
	CHECK(sqlite3_exec(db, STORE_TEST_UNDO_V4
			       "DROP INDEX messages_modseq; DROP INDEX messages_file;"
			       "DROP TABLE keywords; DROP TABLE subscriptions;"
			       "ALTER TABLE mailboxes DROP COLUMN recent_uid;"
			       "DROP INDEX messages_pop3_retrieved;"
			       "ALTER TABLE messages DROP COLUMN pop3_retrieved;"
			       "DROP TABLE expunged;"
			       "DELETE FROM schema_version WHERE version >= 2;",
			   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	s = open_store(tmpl);
	CHECK(store_schema_version(s) == STORE_SCHEMA_VERSION_CURRENT);
	mailbox(s, uid, "INBOX", &mb, &l);
	CHECK(l.n == 1);
	uint32_t re[] = { l.uids[0] };
	struct store_pop3_update r2 = { .user_id = uid, .mailbox_id = mb.id, .retrieved_uids = re,
					.retrieved_count = 1 };
	CHECK(store_pop3_update_sync(s, &r2, &err) == 0);
	CHECK(store_verify(s, verify_cb, NULL, &err) == 0);
	list_free(&l);
	store_mailbox_clear(&mb);
	store_close(&s);
	nftw(tmpl, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	RUN(test_update);
	RUN(test_async_and_upgrade);
	return unit_summary("pop3-store");
}
