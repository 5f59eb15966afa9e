/* Mailboxes and message listings.
 *
 * Every user gets the special-use set (INBOX plus RFC 6154 \Drafts \Sent
 * \Junk \Trash \Archive) on first use: the first delivery or the first
 * mailbox listing, each subscribed as it is created.  UIDVALIDITY (RFC 3501 2.3.1.1, RFC 9051 2.3.1.1) comes
 * from one store-wide counter in the meta table: max(now, last + 1), so a
 * value is never handed out twice, even to a mailbox deleted and created
 * again under the same name, nor by two processes (the counter is updated
 * inside the write transaction).  UIDs come from mailboxes.uidnext, which
 * only grows (commit.c). */
#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const special_names[] = STORE_SPECIAL_MAILBOXES;
static const char *const special_uses[] = { NULL, "\\Drafts", "\\Sent", "\\Junk", "\\Trash",
					    "\\Archive" };
#define SPECIAL_COUNT (sizeof(special_names) / sizeof(special_names[0]))
_Static_assert(sizeof(special_uses) / sizeof(special_uses[0]) == SPECIAL_COUNT,
	       "a special use per special mailbox");

static const char SQL_MB_FIND[] =
	"SELECT id FROM mailboxes WHERE user_id = ?1 AND name = ?2";
static const char SQL_MB_NAMES[] =
	"SELECT name FROM mailboxes WHERE user_id = ?1";
static const char SQL_USER_EXISTS[] =
	"SELECT 1 FROM users WHERE id = ?1";
static const char SQL_UIDV_GET[] =
	"SELECT value FROM meta WHERE key = 'uidvalidity'";
static const char SQL_UIDV_SET[] =
	"INSERT INTO meta(key, value) VALUES ('uidvalidity', ?1)"
	" ON CONFLICT(key) DO UPDATE SET value = excluded.value";
static const char SQL_MB_CREATE[] =
	"INSERT INTO mailboxes(user_id, name, special_use, uidvalidity) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_MB_SUBSCRIBE[] =
	"INSERT OR IGNORE INTO subscriptions(user_id, name) VALUES (?1, ?2)";
static const char SQL_USER_FILES[] =
	"SELECT m.file FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id"
	" WHERE b.user_id = ?1";
static const char SQL_MB_LIST[] =
	"SELECT id, user_id, name, special_use, uidvalidity, uidnext, highestmodseq,"
	" messages, bytes, objectid FROM mailboxes WHERE user_id = ?1 ORDER BY id";
static const char SQL_MB_GET[] =
	"SELECT id, user_id, name, special_use, uidvalidity, uidnext, highestmodseq,"
	" messages, bytes, objectid FROM mailboxes WHERE user_id = ?1 AND name = ?2";
static const char SQL_MB_HAS_INBOX[] =
	"SELECT (SELECT count(*) FROM mailboxes WHERE user_id = ?1 AND name = 'INBOX'),"
	" (SELECT count(*) FROM users WHERE id = ?1)";
static const char SQL_MSG_LIST[] =
	"SELECT id, mailbox_id, uid, modseq, internal_date, size, flags, file"
	" FROM messages WHERE mailbox_id = ?1 AND uid >= ?2 ORDER BY uid";

void store_mailbox_clear(struct store_mailbox *m)
{
	free(m->name);
	free(m->special_use);
	free(m->objectid);
	memset(m, 0, sizeof(*m));
}

void store_message_clear(struct store_message *m)
{
	free(m->flags);
	free(m->path);
	memset(m, 0, sizeof(*m));
}

/* IMAP: INBOX is case-insensitive (RFC 9051 5.1), and so is it as the
 * first level of a hierarchy ("inbox/x" is "INBOX/x", as Dovecot has it). */
char *store_mailbox_canon(const char *name)
{
	char *out;

	if (name == NULL || strcasecmp(name, "INBOX") == 0)
		return xstrdup("INBOX");
	out = xstrdup(name);
	if (strncasecmp(out, "INBOX/", 6) == 0)
		memcpy(out, "INBOX/", 6);
	return out;
}

/* ------------------------------------------------ writer (commit thread) */

int store_next_uidvalidity(struct store *store, uint32_t *uidv_r, char **error_r)
{
	struct store_conn *c = &store->wconn;
	const char *err;
	sqlite3_stmt *st;
	int64_t last = 0, now = clock_now(), v;

	if ((st = store_stmt(c, SQL_UIDV_GET, &err)) == NULL)
		goto fail_msg;
	if (sqlite3_step(st) == SQLITE_ROW)
		last = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	v = now > last ? now : last + 1;
	if (v > UINT32_MAX)
		v = 1;          /* past 2106 or a runaway counter: wrap, never 0 */
	if ((st = store_stmt(c, SQL_UIDV_SET, &err)) == NULL)
		goto fail_msg;
	sqlite3_bind_int64(st, 1, v);
	if (sqlite3_step(st) != SQLITE_DONE) {
		*error_r = store_sqlerr_dup(c, "uidvalidity");
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	*uidv_r = (uint32_t)v;
	return 0;
fail_msg:
	*error_r = xstrdup(err);
	return -1;
}

/* Create the missing special-use mailboxes.  1 done, 0 no such user. */
static int ensure(struct store *store, int64_t user_id, char **error_r)
{
	struct store_conn *c = &store->wconn;
	bool have[SPECIAL_COUNT] = { false };
	const char *err;
	sqlite3_stmt *st;
	int rc;

	if ((st = store_stmt(c, SQL_USER_EXISTS, &err)) == NULL)
		goto fail_msg;
	sqlite3_bind_int64(st, 1, user_id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		goto fail;

	if ((st = store_stmt(c, SQL_MB_NAMES, &err)) == NULL)
		goto fail_msg;
	sqlite3_bind_int64(st, 1, user_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		for (size_t i = 0; i < SPECIAL_COUNT; i++)
			if (name && strcmp(name, special_names[i]) == 0)
				have[i] = true;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		goto fail;

	for (size_t i = 0; i < SPECIAL_COUNT; i++) {
		uint32_t uidv;

		if (have[i])
			continue;
		if (store_next_uidvalidity(store, &uidv, error_r) < 0)
			return -1;
		if ((st = store_stmt(c, SQL_MB_CREATE, &err)) == NULL)
			goto fail_msg;
		sqlite3_bind_int64(st, 1, user_id);
		sqlite3_bind_text(st, 2, special_names[i], -1, SQLITE_STATIC);
		store_bind_text(st, 3, special_uses[i]);
		sqlite3_bind_int64(st, 4, uidv);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			goto fail;
		/* subscribed when created (never again: a user may unsubscribe),
		 * since clients that show subscribed folders only, like
		 * Roundcube, would hide Sent and Trash */
		if ((st = store_stmt(c, SQL_MB_SUBSCRIBE, &err)) == NULL)
			goto fail_msg;
		sqlite3_bind_int64(st, 1, user_id);
		sqlite3_bind_text(st, 2, special_names[i], -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			goto fail;
	}
	return 1;
fail:
	*error_r = store_sqlerr_dup(c, "creating mailboxes");
	return -1;
fail_msg:
	*error_r = xstrdup(err);
	return -1;
}

int store_mailboxes_ensure(struct store *store, int64_t user_id, char **error_r)
{
	int rc = ensure(store, user_id, error_r);

	if (rc == 0)
		*error_r = xasprintf("user id %lld does not exist", (long long)user_id);
	return rc > 0 ? 0 : -1;
}

static int find_mailbox(struct store *store, int64_t user_id, const char *name, int64_t *id_r,
			char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	int rc;

	if ((st = store_wstmt(c, SQL_MB_FIND, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id_r = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_sqlerr_dup(c, "finding mailbox");
	return -1;
}

int store_mailbox_for_delivery(struct store *store, int64_t user_id, const char *name,
			       int64_t *id_r, char **error_r)
{
	char *canon = store_mailbox_canon(name);
	int rc;

	/* Hot path: the mailbox exists. */
	if ((rc = find_mailbox(store, user_id, canon, id_r, error_r)) != 0)
		goto out;
	if ((rc = ensure(store, user_id, error_r)) <= 0)
		goto out;
	if ((rc = find_mailbox(store, user_id, canon, id_r, error_r)) != 0)
		goto out;
	/* A mailbox that does not exist (and is not special): file into INBOX. */
	rc = find_mailbox(store, user_id, "INBOX", id_r, error_r);
	if (rc == 0) {
		*error_r = xstrdup("INBOX missing after creation");
		rc = -1;
	}
out:
	free(canon);
	return rc;
}

int store_wmailbox_find(struct store *store, int64_t user_id, const char *name, int64_t *id_r,
			char **error_r)
{
	int rc = find_mailbox(store, user_id, name, id_r, error_r);

	if (rc != 0)
		return rc;
	/* INBOX and the special-use set always exist: create them on first use */
	if ((rc = ensure(store, user_id, error_r)) <= 0)
		return rc;
	return find_mailbox(store, user_id, name, id_r, error_r);
}

int store_user_files(struct store *store, int64_t user_id, struct store_op *op, char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	int rc;

	if ((st = store_wstmt(c, SQL_USER_FILES, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		store_op_add_unlink(op, store_message_path(store,
					(const char *)sqlite3_column_text(st, 0)));
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_sqlerr_dup(c, "listing message files");
		return -1;
	}
	return 0;
}

static int op_ensure(struct store *store, struct store_op *op, char **error_r)
{
	return store_mailboxes_ensure(store, op->i1, error_r);
}

/* ------------------------------------------------------------------ reads */

static void mailbox_from_row(struct store *store, sqlite3_stmt *st, struct store_mailbox *m)
{
	(void)store;
	m->id = sqlite3_column_int64(st, 0);
	m->user_id = sqlite3_column_int64(st, 1);
	m->name = store_col_dup(st, 2);
	m->special_use = store_col_dup(st, 3);
	m->uidvalidity = (uint32_t)sqlite3_column_int64(st, 4);
	m->uidnext = (uint32_t)sqlite3_column_int64(st, 5);
	m->highestmodseq = (uint64_t)sqlite3_column_int64(st, 6);
	m->messages = (uint32_t)sqlite3_column_int64(st, 7);
	m->bytes = sqlite3_column_int64(st, 8);
	m->objectid = store_col_dup(st, 9);
}

/* Make sure the special-use set exists (through the commit thread). */
static int ensure_for_read(struct store *store, struct store_conn *c, int64_t user_id,
			   const char **error_r)
{
	sqlite3_stmt *st = store_stmt(c, SQL_MB_HAS_INBOX, error_r);
	int64_t inbox, user;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		*error_r = store_sqlerr(c, "reading mailboxes");
		sqlite3_reset(st);
		return -1;
	}
	inbox = sqlite3_column_int64(st, 0);
	user = sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	if (user == 0) {
		*error_r = store_errf("user id %lld does not exist", (long long)user_id);
		return -1;
	}
	if (inbox > 0 || store->opts.readonly)
		return 0;
	struct store_op op = { .fn = op_ensure, .i1 = user_id };
	return store_run_op(store, &op, error_r);
}

STORE_LISTER(mailbox_rows, struct store_mailbox, mailbox_from_row, store_mailbox_clear)

int store_mailbox_list(struct store *store, int64_t user_id,
		       int (*cb)(void *ctx, const struct store_mailbox *m), void *ctx,
		       const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	sqlite3_stmt *st;

	if (c == NULL || ensure_for_read(store, c, user_id, error_r) < 0)
		return -1;
	if ((st = store_stmt(c, SQL_MB_LIST, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	return mailbox_rows(store, c, st, cb, ctx, "listing mailboxes", error_r);
}

static int get_by_name(struct store *store, struct store_conn *c, int64_t user_id,
		       const char *name, struct store_mailbox *mailbox_r, const char **error_r);

int store_mailbox_get(struct store *store, int64_t user_id, const char *name,
		      struct store_mailbox *mailbox_r, const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);

	if (c == NULL)
		return -1;
	char *canon = store_mailbox_canon(name);
	int found = get_by_name(store, c, user_id, canon, mailbox_r, error_r);
	free(canon);
	return found;
}

static int get_by_name(struct store *store, struct store_conn *c, int64_t user_id,
		       const char *name, struct store_mailbox *mailbox_r, const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	for (int attempt = 0; attempt < 2; attempt++) {
		if ((st = store_stmt(c, SQL_MB_GET, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, user_id);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			memset(mailbox_r, 0, sizeof(*mailbox_r));
			mailbox_from_row(store, st, mailbox_r);
			sqlite3_reset(st);
			return 1;
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			*error_r = store_sqlerr(c, "reading mailbox");
			return -1;
		}
		/* A special-use mailbox not created yet: create the set once. */
		bool special = false;
		for (size_t i = 0; i < SPECIAL_COUNT; i++)
			if (strcmp(name, special_names[i]) == 0)
				special = true;
		if (!special || attempt > 0)
			break;
		if (ensure_for_read(store, c, user_id, error_r) < 0)
			return -1;
	}
	return 0;
}

/* Columns: id, mailbox_id, uid, modseq, internal_date, size, flags, file. */
static void message_from_row(struct store *store, sqlite3_stmt *st, struct store_message *m)
{
	m->id = sqlite3_column_int64(st, 0);
	m->mailbox_id = sqlite3_column_int64(st, 1);
	m->uid = (uint32_t)sqlite3_column_int64(st, 2);
	m->modseq = (uint64_t)sqlite3_column_int64(st, 3);
	m->internal_date = (time_t)sqlite3_column_int64(st, 4);
	m->size = sqlite3_column_int64(st, 5);
	m->flags = store_col_dup(st, 6);
	if (m->flags == NULL)
		m->flags = xstrdup("");
	m->path = store_message_path(store, (const char *)sqlite3_column_text(st, 7));
}

STORE_LISTER(message_rows, struct store_message, message_from_row, store_message_clear)

int store_message_select(struct store *store, const char *sql, int64_t mailbox_id,
			 int64_t arg, int (*cb)(void *ctx, const struct store_message *m),
			 void *ctx, const char *what, const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	sqlite3_stmt *st;

	if (c == NULL || (st = store_stmt(c, sql, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, arg);
	return message_rows(store, c, st, cb, ctx, what, error_r);
}

int store_message_list(struct store *store, int64_t mailbox_id, uint32_t min_uid,
		       int (*cb)(void *ctx, const struct store_message *m), void *ctx,
		       const char **error_r)
{
	return store_message_select(store, SQL_MSG_LIST, mailbox_id, min_uid, cb, ctx,
				    "listing messages", error_r);
}

static const char SQL_MB_GET_ID[] =
	"SELECT id, user_id, name, special_use, uidvalidity, uidnext, highestmodseq,"
	" messages, bytes, objectid FROM mailboxes WHERE id = ?1";

int store_mailbox_get_by_id(struct store *store, int64_t mailbox_id,
			    struct store_mailbox *mailbox_r, const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL || (st = store_stmt(c, SQL_MB_GET_ID, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(mailbox_r, 0, sizeof(*mailbox_r));
		mailbox_from_row(store, st, mailbox_r);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_sqlerr(c, "reading mailbox");
	return -1;
}
