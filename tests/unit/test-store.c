/* Unit tests for src/store: open/migrate/reopen, directory CRUD and error
 * strings, recipient resolution, sender policy, quotas, delivery (file
 * content byte for byte, counters, UIDs across reopen, concurrent
 * deliveries, completion on an event_base), fault injection and verify. */
#include "unit.h"
#include "store-test-util.h"
#include "store/store.h"
#include "lib/buf.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char tmpl[64];

static const char *mktemp_dir(void)
{
	return store_test_mkdtemp(tmpl, "/tmp/tern-store-XXXXXX");
}

static struct store *open_store(const char *dir, enum store_fsync_mode mode)
{
	struct store_options o = { .fsync_mode = mode };

	return store_test_open(dir, &o);
}

/* Count regular files under messages/. */
static int count_files(const char *dir)
{
	char path[512];
	int n = 0;

	for (int i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "%s/messages/%02x", dir, i);
		DIR *d = opendir(path);
		struct dirent *de;
		if (d == NULL)
			continue;
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				n++;
		closedir(d);
	}
	return n;
}

static char *read_file(const char *path, size_t *len_r)
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
	*len_r = b.len;
	return buf_steal(&b);
}

/* Set up example.test with users a, b, c and return their ids. */
static void setup_dir(struct store *s, int64_t ids[3])
{
	const char *err = NULL;
	const char *users[3] = { "a@example.test", "b@example.test", "c@example.test" };
	struct store_user u;

	CHECK(store_domain_add(s, "example.test", &err) == 0);
	for (int i = 0; i < 3; i++) {
		CHECK(store_user_add(s, users[i], "$y$hash", NULL, 0, &err) == 0);
		CHECK(store_user_get(s, users[i], &u, &err) == 1);
		ids[i] = u.id;
		store_user_clear(&u);
	}
}

static int deliver1(struct store *s, int64_t uid, const char *to, const char *body,
		    const char *mailbox)
{
	struct store_delivery_rcpt r = { .user_id = uid, .delivered_to = to, .mailbox = mailbox };
	struct store_delivery d = {
		.return_path = "sender@remote.test", .body = body, .body_len = strlen(body),
		.internal_date = 1700000000, .rcpts = &r, .rcpt_count = 1,
	};
	const char *err = NULL;
	int rc = store_deliver_sync(s, &d, &err);
	if (rc < 0)
		fprintf(stderr, "  (deliver: %s)\n", err);
	return rc;
}

struct msgs {
	uint32_t uids[1024];
	char *paths[1024];
	int64_t sizes[1024];
	size_t n;
};

static int collect_msg(void *ctx, const struct store_message *m)
{
	struct msgs *ms = ctx;
	if (ms->n < 1024) {
		ms->uids[ms->n] = m->uid;
		ms->sizes[ms->n] = m->size;
		ms->paths[ms->n] = xstrdup(m->path);
		ms->n++;
	}
	return 0;
}

static void msgs_free(struct msgs *ms)
{
	for (size_t i = 0; i < ms->n; i++)
		free(ms->paths[i]);
	ms->n = 0;
}

static int64_t inbox_id(struct store *s, int64_t user_id, struct store_mailbox *mb)
{
	const char *err = NULL;
	struct store_mailbox tmp;
	if (mb == NULL)
		mb = &tmp;
	if (store_mailbox_get(s, user_id, "INBOX", mb, &err) != 1)
		return -1;
	int64_t id = mb->id;
	if (mb == &tmp)
		store_mailbox_clear(mb);
	return id;
}

/* ------------------------------------------------------------------ tests */

static void test_open_migrate(void)
{
	const char *dir = mktemp_dir();
	struct store *s = open_store(dir, STORE_FSYNC_SYNCFS);
	char path[512];
	struct stat sb;

	CHECK(store_schema_version(s) == STORE_SCHEMA_VERSION_CURRENT);
	snprintf(path, sizeof(path), "%s/index.db", dir);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0640);
	snprintf(path, sizeof(path), "%s/index.db-wal", dir);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0640);
	snprintf(path, sizeof(path), "%s/messages/ff", dir);
	CHECK(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 07777) == 0750);
	snprintf(path, sizeof(path), "%s/tmp", dir);
	CHECK(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
	store_close(&s);
	CHECK(s == NULL);

	/* the WAL mode, one recorded migration */
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/index.db", dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	sqlite3_stmt *st;
	CHECK(sqlite3_prepare_v2(db, "SELECT count(*), max(version) FROM schema_version", -1,
				 &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK(sqlite3_column_int(st, 0) == STORE_SCHEMA_VERSION_CURRENT &&
	      sqlite3_column_int(st, 1) == STORE_SCHEMA_VERSION_CURRENT);
	sqlite3_finalize(st);
	CHECK(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_STR((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);

	/* reopen: nothing re-applied */
	s = open_store(dir, STORE_FSYNC_SYNCFS);
	CHECK(store_schema_version(s) == STORE_SCHEMA_VERSION_CURRENT);
	store_close(&s);

	/* read-only open works, and refuses writes */
	struct store_options ro = { .readonly = true };
	const char *err = NULL;
	CHECK(store_open(dir, &ro, &s, &err) == 0);
	CHECK(store_domain_add(s, "x.test", &err) < 0);
	CHECK(err != NULL && strstr(err, "read-only") != NULL);
	store_close(&s);

	/* read-only on an empty folder fails with a reason */
	char empty[600];
	snprintf(empty, sizeof(empty), "%s/tmp", dir);
	CHECK(store_open(empty, &ro, &s, &err) < 0);
	CHECK(s == NULL);
	store_test_rm_rf(dir);
}

static int count_cb(void *ctx, const void *x)
{
	(void)x;
	(*(int *)ctx)++;
	return 0;
}

static void test_directory(void)
{
	const char *dir = mktemp_dir();
	struct store *s = open_store(dir, STORE_FSYNC_SYNCFS);
	const char *err = NULL;
	struct store_domain d;
	struct store_user u;
	int n;

	CHECK(store_domain_add(s, "Example.TEST", &err) == 0);
	CHECK(store_domain_add(s, "example.test", &err) < 0);
	CHECK_STR(err, "domain example.test exists");
	CHECK(store_domain_add(s, "bad domain", &err) < 0);
	CHECK(store_domain_get(s, "EXAMPLE.test", &d, &err) == 1);
	CHECK_STR(d.name, "example.test");
	CHECK(d.sender_policy == STORE_SENDER_OWN);
	store_domain_clear(&d);
	CHECK(store_domain_get(s, "nope.test", &d, &err) == 0);

	CHECK(store_user_add(s, "x@nope.test", NULL, NULL, 0, &err) < 0);
	CHECK_STR(err, "domain nope.test does not exist");
	CHECK(store_user_add(s, "Alice@Example.test", "$y$abc", "scram", 1000, &err) == 0);
	CHECK(store_user_add(s, "alice@example.test", NULL, NULL, 0, &err) < 0);
	CHECK_STR(err, "user alice@example.test exists");
	CHECK(store_user_add(s, "no-at-sign", NULL, NULL, 0, &err) < 0);
	CHECK(store_user_add(s, "bob@example.test", NULL, NULL, 0, &err) == 0);

	CHECK(store_user_get(s, "ALICE@example.test", &u, &err) == 1);
	CHECK_STR(u.address, "alice@example.test");
	CHECK_STR(u.password_hash, "$y$abc");
	CHECK_STR(u.scram_sha256, "scram");
	CHECK(u.quota_bytes == 1000 && u.used_bytes == 0 && u.used_messages == 0);
	int64_t alice = u.id;
	store_user_clear(&u);
	CHECK(store_user_get_by_id(s, alice, &u, &err) == 1);
	CHECK_STR(u.address, "alice@example.test");
	store_user_clear(&u);
	CHECK(store_user_get(s, "carol@example.test", &u, &err) == 0);

	CHECK(store_user_set_password(s, "alice@example.test", "$y$new", NULL, &err) == 0);
	CHECK(store_user_set_quota(s, "alice@example.test", 5000, &err) == 0);
	CHECK(store_user_get(s, "alice@example.test", &u, &err) == 1);
	CHECK_STR(u.password_hash, "$y$new");
	CHECK(u.scram_sha256 == NULL);
	CHECK(u.quota_bytes == 5000);
	store_user_clear(&u);
	CHECK(store_user_set_quota(s, "carol@example.test", 1, &err) < 0);
	CHECK_STR(err, "user carol@example.test does not exist");
	CHECK(store_user_set_password(s, "carol@example.test", "x", NULL, &err) < 0);

	n = 0;
	CHECK(store_user_list(s, NULL, (int (*)(void *, const struct store_user *))count_cb, &n,
			      &err) == 0);
	CHECK(n == 2);
	n = 0;
	CHECK(store_user_list(s, "example.test",
			      (int (*)(void *, const struct store_user *))count_cb, &n, &err) == 0);
	CHECK(n == 2);
	n = 0;
	CHECK(store_domain_list(s, (int (*)(void *, const struct store_domain *))count_cb, &n,
				&err) == 0);
	CHECK(n == 1);

	CHECK(store_alias_add(s, "Sales@example.test", "alice@example.test", &err) == 0);
	CHECK(store_alias_add(s, "sales@example.test", "bob@example.test", &err) == 0);
	CHECK(store_alias_add(s, "sales@example.test", "bob@example.test", &err) < 0);
	CHECK_STR(err, "alias sales@example.test -> bob@example.test exists");
	CHECK(store_alias_add(s, "x@nope.test", "bob@example.test", &err) < 0);
	CHECK_STR(err, "domain nope.test does not exist");
	CHECK(store_alias_add(s, "@example.test", "bob@example.test", &err) == 0);
	n = 0;
	CHECK(store_alias_list(s, "sales@example.test",
			       (int (*)(void *, const struct store_alias *))count_cb, &n,
			       &err) == 0);
	CHECK(n == 2);
	CHECK(store_alias_remove(s, "sales@example.test", "bob@example.test", &err) == 0);
	CHECK(store_alias_remove(s, "sales@example.test", "bob@example.test", &err) < 0);
	CHECK_STR(err, "alias sales@example.test -> bob@example.test does not exist");
	CHECK(store_alias_remove(s, "sales@example.test", NULL, &err) == 0);
	CHECK(store_alias_remove(s, "sales@example.test", NULL, &err) < 0);
	CHECK_STR(err, "alias sales@example.test does not exist");

	CHECK(store_domain_set_sender_policy(s, "example.test", STORE_SENDER_ANY, &err) == 0);
	CHECK(store_domain_get(s, "example.test", &d, &err) == 1);
	CHECK(d.sender_policy == STORE_SENDER_ANY);
	store_domain_clear(&d);
	CHECK(store_domain_set_sender_policy(s, "nope.test", STORE_SENDER_ANY, &err) < 0);
	CHECK_STR(err, "domain nope.test does not exist");

	/* user removal deletes the user's files */
	CHECK(deliver1(s, alice, "alice@example.test", "Subject: x\r\n\r\nhi\r\n", NULL) == 0);
	CHECK(count_files(dir) == 1);
	CHECK(store_user_remove(s, "alice@example.test", &err) == 0);
	CHECK(count_files(dir) == 0);
	CHECK(store_user_remove(s, "alice@example.test", &err) < 0);
	CHECK_STR(err, "user alice@example.test does not exist");

	/* domain removal */
	CHECK(store_user_get(s, "bob@example.test", &u, &err) == 1);
	CHECK(deliver1(s, u.id, "bob@example.test", "Subject: y\r\n\r\nhi\r\n", NULL) == 0);
	store_user_clear(&u);
	CHECK(store_domain_remove(s, "example.test", false, &err) < 0);
	CHECK(err != NULL && strstr(err, "has 1 user") != NULL);
	CHECK(count_files(dir) == 1);
	CHECK(store_domain_remove(s, "example.test", true, &err) == 0);
	CHECK(count_files(dir) == 0);
	CHECK(store_domain_get(s, "example.test", &d, &err) == 0);
	n = 0;
	CHECK(store_alias_list(s, NULL, (int (*)(void *, const struct store_alias *))count_cb, &n,
			       &err) == 0);
	CHECK(n == 0);
	CHECK(store_domain_remove(s, "example.test", false, &err) < 0);
	CHECK_STR(err, "domain example.test does not exist");
	CHECK(store_verify(s, NULL, NULL, &err) == 0);
	store_close(&s);
	store_test_rm_rf(dir);
}

static bool rcpt_has_user(const struct store_rcpt *r, int64_t id)
{
	for (size_t i = 0; i < r->user_count; i++)
		if (r->users[i].user_id == id)
			return true;
	return false;
}

static void test_resolve(void)
{
	const char *dir = mktemp_dir();
	struct store *s = open_store(dir, STORE_FSYNC_SYNCFS);
	const char *err = NULL;
	struct store_rcpt r;
	int64_t ids[3];

	setup_dir(s, ids);
	CHECK(store_domain_add(s, "other.test", &err) == 0);
	CHECK(store_user_add(s, "z@other.test", NULL, NULL, 0, &err) == 0);

	/* exact, case-insensitive */
	CHECK(store_rcpt_resolve(s, "A@Example.Test", "+", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_LOCAL && r.user_count == 1 && r.remote_count == 0);
	CHECK(r.user_count == 1 && r.users[0].user_id == ids[0]);
	CHECK(r.user_count == 1 && strcmp(r.users[0].address, "a@example.test") == 0);
	store_rcpt_clear(&r);

	/* remote */
	CHECK(store_rcpt_resolve(s, "x@elsewhere.test", "+", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_REMOTE && r.user_count == 0);
	store_rcpt_clear(&r);

	/* unknown */
	CHECK(store_rcpt_resolve(s, "nobody@example.test", "+", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_UNKNOWN);
	store_rcpt_clear(&r);

	/* alias chain: list -> team -> {a, b, remote}, plus a duplicate */
	CHECK(store_alias_add(s, "list@example.test", "team@example.test", &err) == 0);
	CHECK(store_alias_add(s, "list@example.test", "a@example.test", &err) == 0);
	CHECK(store_alias_add(s, "team@example.test", "a@example.test", &err) == 0);
	CHECK(store_alias_add(s, "team@example.test", "B@example.test", &err) == 0);
	CHECK(store_alias_add(s, "team@example.test", "Friend@Remote.test", &err) == 0);
	CHECK(store_alias_add(s, "team@example.test", "ghost@example.test", &err) == 0);
	CHECK(store_rcpt_resolve(s, "LIST@example.test", "+", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_LOCAL);
	CHECK(r.user_count == 2 && rcpt_has_user(&r, ids[0]) && rcpt_has_user(&r, ids[1]));
	CHECK(r.remote_count == 1 && strcmp(r.remote[0], "friend@remote.test") == 0);
	store_rcpt_clear(&r);

	/* subaddress with a multi-character separator set */
	CHECK(store_rcpt_resolve(s, "c+news@example.test", "+-", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_LOCAL && r.user_count == 1 && rcpt_has_user(&r, ids[2]));
	store_rcpt_clear(&r);
	CHECK(store_rcpt_resolve(s, "c-news+x@example.test", "+-", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_LOCAL && r.user_count == 1 && rcpt_has_user(&r, ids[2]));
	store_rcpt_clear(&r);
	CHECK(store_rcpt_resolve(s, "team+x@example.test", "+", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_LOCAL && r.user_count == 2);
	store_rcpt_clear(&r);
	CHECK(store_rcpt_resolve(s, "c+news@example.test", NULL, &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_UNKNOWN);
	store_rcpt_clear(&r);

	/* alias loop ends, with no recipient */
	CHECK(store_alias_add(s, "l1@example.test", "l2@example.test", &err) == 0);
	CHECK(store_alias_add(s, "l2@example.test", "l1@example.test", &err) == 0);
	CHECK(store_rcpt_resolve(s, "l1@example.test", "+", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_UNKNOWN && r.user_count == 0);
	store_rcpt_clear(&r);
	/* a loop with an exit still reaches the user */
	CHECK(store_alias_add(s, "l2@example.test", "c@example.test", &err) == 0);
	CHECK(store_rcpt_resolve(s, "l1@example.test", "+", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_LOCAL && r.user_count == 1 && rcpt_has_user(&r, ids[2]));
	store_rcpt_clear(&r);

	/* depth limit: a chain of 12 aliases does not reach the user */
	char a1[64], a2[64];
	for (int i = 0; i < 12; i++) {
		snprintf(a1, sizeof(a1), "d%d@example.test", i);
		snprintf(a2, sizeof(a2), "d%d@example.test", i + 1);
		CHECK(store_alias_add(s, a1, a2, &err) == 0);
	}
	CHECK(store_alias_add(s, "d12@example.test", "a@example.test", &err) == 0);
	CHECK(store_rcpt_resolve(s, "d0@example.test", "+", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_UNKNOWN);
	store_rcpt_clear(&r);
	CHECK(store_rcpt_resolve(s, "d5@example.test", "+", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_LOCAL && rcpt_has_user(&r, ids[0]));
	store_rcpt_clear(&r);

	/* cross-domain alias target */
	CHECK(store_alias_add(s, "zed@example.test", "z@other.test", &err) == 0);
	CHECK(store_rcpt_resolve(s, "zed@example.test", "+", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_LOCAL && r.user_count == 1);
	CHECK(r.user_count == 1 && strcmp(r.users[0].address, "z@other.test") == 0);
	store_rcpt_clear(&r);

	/* catch-all, after exact matches */
	CHECK(store_alias_add(s, "@example.test", "b@example.test", &err) == 0);
	CHECK(store_rcpt_resolve(s, "nobody@example.test", "+", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_LOCAL && r.user_count == 1 && rcpt_has_user(&r, ids[1]));
	store_rcpt_clear(&r);
	CHECK(store_rcpt_resolve(s, "a@example.test", "+", &r, &err) == 0);
	CHECK(r.user_count == 1 && rcpt_has_user(&r, ids[0]));
	store_rcpt_clear(&r);

	/* bad input */
	CHECK(store_rcpt_resolve(s, "no-domain", "+", &r, &err) < 0);
	CHECK(store_rcpt_resolve(s, "a@exa mple.test", "+", &r, &err) < 0);
	/* a local part no account can have, in a local domain: nobody here */
	CHECK(store_rcpt_resolve(s, "a\r\n@example.test", "+", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_UNKNOWN && r.user_count == 0);
	store_rcpt_clear(&r);
	CHECK(store_rcpt_resolve(s, "\"a@remote.test\"@example.test", "+", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_UNKNOWN && r.remote_count == 0);
	store_rcpt_clear(&r);

	/* a user created by "another process" is seen without restart */
	struct store *s2 = open_store(dir, STORE_FSYNC_SYNCFS);
	CHECK(store_user_add(s2, "new@example.test", NULL, NULL, 0, &err) == 0);
	store_close(&s2);
	CHECK(store_rcpt_resolve(s, "new@example.test", "+", &r, &err) == 0);
	CHECK(r.kind == STORE_RCPT_LOCAL && r.user_count == 1 &&
	      strcmp(r.users[0].address, "new@example.test") == 0);
	store_rcpt_clear(&r);

	store_close(&s);
	store_test_rm_rf(dir);
}

static void test_sender_quota(void)
{
	const char *dir = mktemp_dir();
	struct store *s = open_store(dir, STORE_FSYNC_SYNCFS);
	const char *err = NULL;
	int64_t ids[3];

	setup_dir(s, ids);
	CHECK(store_domain_add(s, "other.test", &err) == 0);
	CHECK(store_alias_add(s, "info@example.test", "team@example.test", &err) == 0);
	CHECK(store_alias_add(s, "team@example.test", "a@example.test", &err) == 0);
	CHECK(store_alias_add(s, "a@other.test", "a@example.test", &err) == 0);
	CHECK(store_alias_add(s, "@other.test", "a@example.test", &err) == 0);

	CHECK(store_sender_allowed(s, ids[0], "a@example.test", "+", &err) == 1);
	CHECK(store_sender_allowed(s, ids[0], "A@EXAMPLE.TEST", "+", &err) == 1);
	CHECK(store_sender_allowed(s, ids[0], "a+lists@example.test", "+", &err) == 1);
	CHECK(store_sender_allowed(s, ids[0], "info@example.test", "+", &err) == 1);
	CHECK(store_sender_allowed(s, ids[0], "a@other.test", "+", &err) == 1);
	CHECK(store_sender_allowed(s, ids[0], "anything@other.test", "+", &err) == 0);
	CHECK(store_sender_allowed(s, ids[0], "b@example.test", "+", &err) == 0);
	CHECK(store_sender_allowed(s, ids[1], "info@example.test", "+", &err) == 0);
	CHECK(store_sender_allowed(s, ids[0], "x@remote.test", "+", &err) == 0);
	CHECK(store_sender_allowed(s, ids[0], "", "+", &err) == 0);

	CHECK(store_domain_set_sender_policy(s, "example.test", STORE_SENDER_DOMAIN, &err) == 0);
	CHECK(store_sender_allowed(s, ids[0], "b@example.test", "+", &err) == 1);
	CHECK(store_sender_allowed(s, ids[0], "whoever@example.test", "+", &err) == 1);
	CHECK(store_sender_allowed(s, ids[0], "a@other.test", "+", &err) == 1);
	CHECK(store_sender_allowed(s, ids[0], "x@remote.test", "+", &err) == 0);
	CHECK(store_domain_set_sender_policy(s, "example.test", STORE_SENDER_ANY, &err) == 0);
	CHECK(store_sender_allowed(s, ids[0], "x@remote.test", "+", &err) == 1);
	CHECK(store_sender_allowed(s, 99999, "x@remote.test", "+", &err) < 0);

	/* quota */
	CHECK(store_quota_exceeded(s, ids[0], 1000000, &err) == 0);      /* unlimited */
	CHECK(store_user_set_quota(s, "a@example.test", 100, &err) == 0);
	CHECK(store_quota_exceeded(s, ids[0], 100, &err) == 0);
	CHECK(store_quota_exceeded(s, ids[0], 101, &err) == 1);
	const char *body = "Subject: q\r\n\r\n0123456789\r\n";
	CHECK(deliver1(s, ids[0], "a@example.test", body, NULL) == 0);
	struct store_user u;
	CHECK(store_user_get_by_id(s, ids[0], &u, &err) == 1);
	int64_t used = u.used_bytes;
	CHECK(u.used_messages == 1 && used > (int64_t)strlen(body));
	store_user_clear(&u);
	CHECK(store_quota_exceeded(s, ids[0], 100 - used, &err) == 0);
	CHECK(store_quota_exceeded(s, ids[0], 101 - used, &err) == 1);
	CHECK(store_quota_exceeded(s, 99999, 1, &err) < 0);
	store_close(&s);
	store_test_rm_rf(dir);
}

struct mbcount {
	int n;
	int special;
	bool inbox_first;
};

static int mb_cb(void *ctx, const struct store_mailbox *m)
{
	struct mbcount *c = ctx;
	if (c->n == 0)
		c->inbox_first = strcmp(m->name, "INBOX") == 0;
	c->n++;
	if (m->special_use != NULL)
		c->special++;
	if (strcmp(m->name, "Sent") == 0 && strcmp(m->special_use, "\\Sent") != 0)
		c->special = -100;
	return 0;
}

static void test_deliver(void)
{
	const char *dir = mktemp_dir();
	struct store *s = open_store(dir, STORE_FSYNC_SYNCFS);
	const char *err = NULL;
	int64_t ids[3];
	struct msgs ms = { .n = 0 };

	setup_dir(s, ids);

	/* mailbox list creates the special-use set */
	struct mbcount mc = { 0 };
	CHECK(store_mailbox_list(s, ids[2], mb_cb, &mc, &err) == 0);
	CHECK(mc.n == 6 && mc.special == 5 && mc.inbox_first);
	mc = (struct mbcount){ 0 };
	CHECK(store_mailbox_list(s, ids[2], mb_cb, &mc, &err) == 0);
	CHECK(mc.n == 6);
	CHECK(store_mailbox_list(s, 99999, mb_cb, &mc, &err) < 0);

	/* one recipient, byte-exact */
	const char *body = "From: x@remote.test\r\nSubject: hello\r\n\r\nbody line\r\n.dot\r\n";
	CHECK(deliver1(s, ids[0], "a@example.test", body, NULL) == 0);
	struct store_mailbox mb;
	int64_t inbox = inbox_id(s, ids[0], &mb);
	CHECK(inbox > 0);
	CHECK(mb.messages == 1 && mb.uidnext == 2 && mb.uidvalidity > 0);
	CHECK(mb.highestmodseq >= 2);
	store_mailbox_clear(&mb);
	CHECK(store_message_list(s, inbox, 1, collect_msg, &ms, &err) == 0);
	CHECK(ms.n == 1 && ms.uids[0] == 1);
	if (ms.n == 1) {
		size_t len;
		char *data = read_file(ms.paths[0], &len);
		char *want = xasprintf("Return-Path: <sender@remote.test>\r\n"
				       "Delivered-To: a@example.test\r\n%s", body);
		CHECK(data != NULL && len == strlen(want) && memcmp(data, want, len) == 0);
		CHECK((int64_t)len == ms.sizes[0]);
		struct stat sb;
		CHECK(stat(ms.paths[0], &sb) == 0 && (sb.st_mode & 0777) == (0640 & ~022));
		CHECK(strstr(ms.paths[0], "/messages/") != NULL);
		free(data);
		free(want);
	}
	msgs_free(&ms);

	/* many recipients, one of them into Sent, one into a missing folder */
	struct store_delivery_rcpt rc[3] = {
		{ ids[0], "a@example.test", NULL },
		{ ids[1], "b@example.test", "Sent" },
		{ ids[2], "c@example.test", "No/Such" },
	};
	struct store_delivery d = {
		.return_path = "", .body = body, .body_len = strlen(body), .dsn = "RET=HDRS",
		.rcpts = rc, .rcpt_count = 3,
	};
	CHECK(store_deliver_sync(s, &d, &err) == 0);
	CHECK(count_files(dir) == 4);
	CHECK(store_message_list(s, inbox, 1, collect_msg, &ms, &err) == 0);
	CHECK(ms.n == 2 && ms.uids[0] == 1 && ms.uids[1] == 2);
	msgs_free(&ms);
	CHECK(store_message_list(s, inbox, 2, collect_msg, &ms, &err) == 0);
	CHECK(ms.n == 1 && ms.uids[0] == 2);
	if (ms.n == 1) {
		size_t len;
		char *data = read_file(ms.paths[0], &len);
		CHECK(data != NULL && strncmp(data, "Return-Path: <>\r\nDelivered-To: a@example.test"
					      "\r\nFrom:", 52) == 0);
		free(data);
	}
	msgs_free(&ms);
	CHECK(store_mailbox_get(s, ids[1], "Sent", &mb, &err) == 1);
	CHECK(mb.messages == 1 && mb.uidnext == 2);
	CHECK_STR(mb.special_use, "\\Sent");
	store_mailbox_clear(&mb);
	CHECK(store_mailbox_get(s, ids[1], "inbox", &mb, &err) == 1);
	CHECK(mb.messages == 0);
	CHECK_STR(mb.name, "INBOX");
	store_mailbox_clear(&mb);
	CHECK(store_mailbox_get(s, ids[2], "INBOX", &mb, &err) == 1);
	CHECK(mb.messages == 1);
	store_mailbox_clear(&mb);
	CHECK(store_mailbox_get(s, ids[2], "No/Such", &mb, &err) == 0);

	/* bad requests are refused before queueing */
	struct store_delivery_rcpt bad = { ids[0], "a@example.test\r\nX: y", NULL };
	d.rcpts = &bad;
	d.rcpt_count = 1;
	CHECK(store_deliver_sync(s, &d, &err) < 0);
	d.rcpt_count = 0;
	CHECK(store_deliver_sync(s, &d, &err) < 0);
	/* a user that does not exist fails the request, nothing left behind */
	struct store_delivery_rcpt ghost[2] = { { ids[0], "a@example.test", NULL },
						{ 99999, "ghost@example.test", NULL } };
	d.rcpts = ghost;
	d.rcpt_count = 2;
	CHECK(store_deliver_sync(s, &d, &err) < 0);
	CHECK(err != NULL && strstr(err, "does not exist") != NULL);
	CHECK(count_files(dir) == 4);
	CHECK(store_mailbox_get(s, ids[0], "INBOX", &mb, &err) == 1);
	CHECK(mb.messages == 2);
	store_mailbox_clear(&mb);
	CHECK(store_verify(s, NULL, NULL, &err) == 0);
	store_close(&s);
	store_test_rm_rf(dir);
}

static void test_uids_reopen(void)
{
	const char *dir = mktemp_dir();
	struct store *s = open_store(dir, STORE_FSYNC_FILE);
	const char *err = NULL;
	int64_t ids[3];
	struct store_mailbox mb;
	struct msgs ms = { .n = 0 };

	setup_dir(s, ids);
	for (int i = 0; i < 3; i++)
		CHECK(deliver1(s, ids[0], "a@example.test", "x\r\n", NULL) == 0);
	CHECK(inbox_id(s, ids[0], &mb) > 0);
	uint32_t uidv = mb.uidvalidity;
	store_mailbox_clear(&mb);
	store_close(&s);

	s = open_store(dir, STORE_FSYNC_SYNCFS);
	for (int i = 0; i < 2; i++)
		CHECK(deliver1(s, ids[0], "a@example.test", "y\r\n", NULL) == 0);
	int64_t inbox = inbox_id(s, ids[0], &mb);
	CHECK(mb.uidvalidity == uidv && mb.uidnext == 6 && mb.messages == 5);
	store_mailbox_clear(&mb);
	CHECK(store_message_list(s, inbox, 0, collect_msg, &ms, &err) == 0);
	CHECK(ms.n == 5);
	for (size_t i = 0; i < ms.n; i++)
		CHECK(ms.uids[i] == i + 1);
	msgs_free(&ms);

	/* UIDVALIDITY never repeats: every mailbox of every user differs */
	struct store_mailbox mb2;
	CHECK(store_mailbox_get(s, ids[0], "Sent", &mb2, &err) == 1);
	CHECK(mb2.uidvalidity != uidv);
	store_mailbox_clear(&mb2);
	CHECK(store_mailbox_get(s, ids[1], "INBOX", &mb2, &err) == 1);
	CHECK(mb2.uidvalidity > uidv);
	store_mailbox_clear(&mb2);
	CHECK(store_verify(s, NULL, NULL, &err) == 0);
	store_close(&s);
	store_test_rm_rf(dir);
}

#define THREADS 4
#define PER_THREAD 100

struct worker {
	struct store *s;
	int64_t user_id;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int status;
	int failures;
};

static void worker_cb(void *ctx, int status, const char *error)
{
	(void)error;
	struct worker *w = ctx;
	pthread_mutex_lock(&w->mu);
	w->status = status;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char body[4096];

	memset(body, 'x', sizeof(body));
	memcpy(body + sizeof(body) - 2, "\r\n", 2);
	for (int i = 0; i < PER_THREAD; i++) {
		struct store_delivery_rcpt r = { w->user_id, "a@example.test", NULL };
		struct store_delivery d = { .return_path = "s@remote.test", .body = body,
					    .body_len = sizeof(body), .rcpts = &r,
					    .rcpt_count = 1 };
		w->done = false;
		if (store_deliver(w->s, NULL, &d, worker_cb, w) < 0) {
			w->failures++;
			continue;
		}
		pthread_mutex_lock(&w->mu);
		while (!w->done)
			pthread_cond_wait(&w->cv, &w->mu);
		pthread_mutex_unlock(&w->mu);
		if (w->status < 0)
			w->failures++;
	}
	return NULL;
}

static void test_concurrent(void)
{
	const char *dir = mktemp_dir();
	struct store *s = open_store(dir, STORE_FSYNC_SYNCFS);
	const char *err = NULL;
	int64_t ids[3];
	struct worker w[THREADS];
	pthread_t th[THREADS];
	struct msgs ms = { .n = 0 };

	setup_dir(s, ids);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .s = s, .user_id = ids[0] };
		pthread_mutex_init(&w[i].mu, NULL);
		pthread_cond_init(&w[i].cv, NULL);
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	int failures = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		failures += w[i].failures;
		pthread_mutex_destroy(&w[i].mu);
		pthread_cond_destroy(&w[i].cv);
	}
	CHECK(failures == 0);
	int64_t inbox = inbox_id(s, ids[0], NULL);
	CHECK(store_message_list(s, inbox, 1, collect_msg, &ms, &err) == 0);
	CHECK(ms.n == THREADS * PER_THREAD);
	bool ok = true;
	for (size_t i = 0; i < ms.n; i++)
		if (ms.uids[i] != i + 1)
			ok = false;
	CHECK(ok);
	msgs_free(&ms);
	struct store_user u;
	CHECK(store_user_get_by_id(s, ids[0], &u, &err) == 1);
	CHECK(u.used_messages == THREADS * PER_THREAD);
	store_user_clear(&u);
	CHECK(count_files(dir) == THREADS * PER_THREAD);
	CHECK(store_verify(s, NULL, NULL, &err) == 0);
	store_close(&s);
	store_test_rm_rf(dir);
}

/* Completion on an event_base (the server's path). */
struct loop_ctx {
	struct event_base *base;
	int calls;
	int status;
	pthread_t thread;
};

static void loop_cb(void *ctx, int status, const char *error)
{
	(void)error;
	struct loop_ctx *c = ctx;
	c->calls++;
	c->status = status;
	c->thread = pthread_self();
	event_base_loopbreak(c->base);
}

static void test_event_base(void)
{
	const char *dir = mktemp_dir();
	struct store *s = open_store(dir, STORE_FSYNC_SYNCFS);
	int64_t ids[3];
	struct loop_ctx c = { 0 };

	evthread_use_pthreads();
	c.base = event_base_new();
	setup_dir(s, ids);
	struct store_delivery_rcpt r = { ids[1], "b@example.test", NULL };
	struct store_delivery d = { .return_path = "s@remote.test", .body = "x\r\n",
				    .body_len = 3, .rcpts = &r, .rcpt_count = 1 };
	CHECK(store_deliver(s, c.base, &d, loop_cb, &c) == 0);
	/* a timeout guards against a callback that never comes */
	struct timeval tv = { 10, 0 };
	event_base_loopexit(c.base, &tv);
	event_base_dispatch(c.base);
	CHECK(c.calls == 1 && c.status == 0);
	CHECK(pthread_equal(c.thread, pthread_self()));
	event_base_free(c.base);
	store_close(&s);
	store_test_rm_rf(dir);
}

static void test_fault(void)
{
	const char *dir = mktemp_dir();
	struct store *s = open_store(dir, STORE_FSYNC_SYNCFS);
	const char *err = NULL;
	int64_t ids[3];
	struct store_mailbox mb;

	setup_dir(s, ids);
	CHECK(deliver1(s, ids[0], "a@example.test", "first\r\n", NULL) == 0);

	/* 1st op = the file write, 2nd = syncfs (which also makes the new
	 * directory entry durable) */
	for (unsigned nth = 1; nth <= 2; nth++) {
		store_fault_inject(s, nth, nth == 2 ? EIO : ENOSPC);
		err = NULL;
		struct store_delivery_rcpt r = { ids[0], "a@example.test", NULL };
		struct store_delivery d = { .return_path = "", .body = "x\r\n", .body_len = 3,
					    .rcpts = &r, .rcpt_count = 1 };
		CHECK(store_deliver_sync(s, &d, &err) < 0);
		CHECK(err != NULL && (strstr(err, strerror(nth == 2 ? EIO : ENOSPC)) != NULL));
		CHECK(count_files(dir) == 1);
		CHECK(store_mailbox_get(s, ids[0], "INBOX", &mb, &err) == 1);
		CHECK(mb.messages == 1 && mb.uidnext == 2);
		store_mailbox_clear(&mb);
	}
	/* the next delivery works */
	CHECK(deliver1(s, ids[0], "a@example.test", "second\r\n", NULL) == 0);
	CHECK(count_files(dir) == 2);

	/* a fault in one copy of a multi-recipient request fails all its copies */
	store_fault_inject(s, 2, ENOSPC);
	struct store_delivery_rcpt rc[2] = { { ids[0], "a@example.test", NULL },
					     { ids[1], "b@example.test", NULL } };
	struct store_delivery d = { .return_path = "", .body = "x\r\n", .body_len = 3,
				    .rcpts = rc, .rcpt_count = 2 };
	CHECK(store_deliver_sync(s, &d, &err) < 0);
	CHECK(count_files(dir) == 2);
	store_fault_inject(s, 0, 0);
	CHECK(store_verify(s, NULL, NULL, &err) == 0);
	store_close(&s);

	/* FILE mode: the per-file fsync fails; TERN_STORE_FAULT sets it up */
	setenv("TERN_STORE_FAULT", "2:EIO", 1);
	s = open_store(dir, STORE_FSYNC_FILE);
	unsetenv("TERN_STORE_FAULT");
	CHECK(deliver1(s, ids[0], "a@example.test", "third\r\n", NULL) < 0);
	CHECK(count_files(dir) == 2);
	CHECK(deliver1(s, ids[0], "a@example.test", "third\r\n", NULL) == 0);
	CHECK(count_files(dir) == 3);
	CHECK(store_mailbox_get(s, ids[0], "INBOX", &mb, &err) == 1);
	CHECK(mb.messages == 3 && mb.uidnext == 4);
	store_mailbox_clear(&mb);
	CHECK(store_verify(s, NULL, NULL, &err) == 0);
	store_close(&s);
	store_test_rm_rf(dir);
}

/* A batch where one request fails and the others commit: queue several
 * asynchronous deliveries behind a slow synchronous one, with a fault on
 * the 2nd write. */
struct batch_ctx {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, ok, failed;
};

static void batch_cb(void *ctx, int status, const char *error)
{
	(void)error;
	struct batch_ctx *b = ctx;
	pthread_mutex_lock(&b->mu);
	b->done++;
	if (status == 0)
		b->ok++;
	else
		b->failed++;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

static void test_batch_partial(void)
{
	const char *dir = mktemp_dir();
	struct store *s = open_store(dir, STORE_FSYNC_SYNCFS);
	const char *err = NULL;
	int64_t ids[3];
	struct batch_ctx b = { .done = 0 };

	pthread_mutex_init(&b.mu, NULL);
	pthread_cond_init(&b.cv, NULL);
	setup_dir(s, ids);
	/* the mailboxes exist, so the batch below only writes messages */
	CHECK(deliver1(s, ids[0], "a@example.test", "warm\r\n", NULL) == 0);
	/* Hold the index's write lock (as the CLI might) so the first request
	 * waits in its own batch while the next four queue up behind it.
	 * Batch 1 does 3 I/O operations (write, syncfs, directory fsync);
	 * the 5th is the second write of batch 2. */
	sqlite3 *db;
	char path[512];
	snprintf(path, sizeof(path), "%s/index.db", dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
	store_fault_inject(s, 5, ENOSPC);
	struct store_delivery_rcpt r = { ids[0], "a@example.test", NULL };
	struct store_delivery d = { .return_path = "", .body = "x\r\n", .body_len = 3,
				    .rcpts = &r, .rcpt_count = 1 };
	CHECK(store_deliver(s, NULL, &d, batch_cb, &b) == 0);
	usleep(200000);
	for (int i = 0; i < 4; i++)
		CHECK(store_deliver(s, NULL, &d, batch_cb, &b) == 0);
	usleep(100000);
	CHECK(b.done == 0);
	CHECK(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	pthread_mutex_lock(&b.mu);
	while (b.done < 5)
		pthread_cond_wait(&b.cv, &b.mu);
	pthread_mutex_unlock(&b.mu);
	/* exactly one failed (the 2nd write), the others committed */
	CHECK(b.failed == 1 && b.ok == 4);
	CHECK(count_files(dir) == 5);
	CHECK(store_verify(s, NULL, NULL, &err) == 0);
	pthread_mutex_destroy(&b.mu);
	pthread_cond_destroy(&b.cv);
	store_close(&s);
	store_test_rm_rf(dir);
}

struct problems {
	int n;
	bool missing, size, stray;
};

static void problem_cb(void *ctx, const char *p)
{
	struct problems *pr = ctx;
	pr->n++;
	if (strstr(p, "No such file"))
		pr->missing = true;
	if (strstr(p, "index says"))
		pr->size = true;
	if (strstr(p, "unreferenced file messages/ab/stray"))
		pr->stray = true;
}

static void test_verify(void)
{
	const char *dir = mktemp_dir();
	struct store *s = open_store(dir, STORE_FSYNC_SYNCFS);
	const char *err = NULL;
	int64_t ids[3];
	struct msgs ms = { .n = 0 };
	struct problems pr = { 0 };

	setup_dir(s, ids);
	for (int i = 0; i < 3; i++)
		CHECK(deliver1(s, ids[0], "a@example.test", "Subject: v\r\n\r\nabc\r\n", NULL) == 0);
	CHECK(store_verify(s, problem_cb, &pr, &err) == 0);
	CHECK(pr.n == 0);
	CHECK(store_message_list(s, inbox_id(s, ids[0], NULL), 1, collect_msg, &ms, &err) == 0);
	CHECK(ms.n == 3);
	if (ms.n == 3) {
		CHECK(unlink(ms.paths[0]) == 0);
		CHECK(truncate(ms.paths[1], 5) == 0);
	}
	char path[512];
	snprintf(path, sizeof(path), "%s/messages/ab/stray", dir);
	int fd = open(path, O_CREAT | O_WRONLY, 0640);
	CHECK(fd >= 0);
	close(fd);
	/* a fresh stray file may be a commit in progress: not reported yet */
	CHECK(store_verify(s, problem_cb, &pr, &err) == 2);
	struct timeval old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	CHECK(utimes(path, old) == 0);
	pr = (struct problems){ 0 };
	CHECK(store_verify(s, problem_cb, &pr, &err) == 3);
	CHECK(pr.n == 3 && pr.missing && pr.size && pr.stray);
	msgs_free(&ms);

	/* counters that disagree with the rows */
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/index.db", dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "UPDATE mailboxes SET messages = messages + 1 WHERE name = 'INBOX';"
			   "UPDATE users SET used_bytes = used_bytes + 7", NULL, NULL,
			   NULL) == SQLITE_OK);
	sqlite3_close(db);
	CHECK(store_verify(s, NULL, NULL, &err) == 3 + 3 + 1);
	store_close(&s);
	store_test_rm_rf(dir);
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	umask(022);
	RUN(test_open_migrate);
	RUN(test_directory);
	RUN(test_resolve);
	RUN(test_sender_quota);
	RUN(test_deliver);
	RUN(test_uids_reopen);
	RUN(test_concurrent);
	RUN(test_event_base);
	RUN(test_fault);
	RUN(test_batch_partial);
	RUN(test_verify);
	return unit_summary("store");
}
