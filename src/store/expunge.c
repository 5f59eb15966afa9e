/* Expunging messages and the POP3 maildrop update (store.h, "POP3 /
 * expunge").
 *
 * store_pop3_update() is one commit-thread request (store_op_submit), so it
 * is batched with deliveries and runs inside the batch transaction in its
 * own savepoint: either every change of the request is committed or none.
 *
 * Invariants kept here:
 *  - mailboxes.messages/bytes and users.used_bytes/used_messages always
 *    equal the sums over the messages table (store_verify checks this);
 *  - a removed message's file is unlinked only after the transaction that
 *    dropped its row has committed (unlink_paths of the op), so a crash
 *    leaves at worst an unreferenced file, never a row without its file;
 *  - all changes of one request share one new modseq; every expunged UID is
 *    recorded in the expunge history (table expunged) with that modseq,
 *    which is what IMAP needs for EXPUNGE/VANISHED (RFC 7162 3.2.10);
 *  - UIDs already gone (expunged by another session) are skipped.
 * RFC 1939 6 (UPDATE state), RFC 2449 6.7 (EXPIRE). */
#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <stdlib.h>
#include <string.h>

struct pop3_op {
	struct store_op op;     /* first: the commit thread hands us &op */
	struct store_pop3_update u;
	uint32_t *expunge;
	uint32_t *retrieved;
};

static const char SQL_MB_MODSEQ[] =
	"UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?1 AND user_id = ?2"
	" RETURNING highestmodseq";
static const char SQL_EXPIRED[] =
	"SELECT uid FROM messages WHERE mailbox_id = ?1 AND pop3_retrieved < ?2";
static const char SQL_MSG_RETRIEVED[] =
	"UPDATE messages SET pop3_retrieved = coalesce(pop3_retrieved, ?3),"
	" modseq = CASE WHEN instr(' ' || flags || ' ', ' \\Seen ') > 0 THEN modseq ELSE ?4 END,"
	" flags = CASE WHEN instr(' ' || flags || ' ', ' \\Seen ') > 0 THEN flags"
	"  WHEN flags = '' THEN '\\Seen' ELSE '\\Seen ' || flags END"
	" WHERE mailbox_id = ?1 AND uid = ?2";
static const char SQL_MSG_GET[] =
	"SELECT id, size, file FROM messages WHERE mailbox_id = ?1 AND uid = ?2";
static const char SQL_MSG_DELETE[] =
	"DELETE FROM messages WHERE id = ?1";
static const char SQL_MSG_MOVE[] =
	"UPDATE messages SET mailbox_id = ?1, uid = ?2, modseq = ?3 WHERE id = ?4";
static const char SQL_MB_SUB[] =
	"UPDATE mailboxes SET messages = messages - ?1, bytes = bytes - ?2 WHERE id = ?3";
static const char SQL_MB_APPEND[] =
	"UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1,"
	" messages = messages + 1, bytes = bytes + ?1 WHERE id = ?2"
	" RETURNING uidnext - 1, highestmodseq";
static const char SQL_USER_SUB[] =
	"UPDATE users SET used_bytes = used_bytes - ?1, used_messages = used_messages - ?2"
	" WHERE id = ?3";
static const char SQL_EXPUNGED_ADD[] =
	"INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)";
static const char SQL_MSG_EXISTS[] =
	"SELECT 1 FROM messages WHERE mailbox_id = ?1 AND uid = ?2";

/* Step a statement that returns no rows (or ignores them) and reset it. */
static int step_done(struct store_conn *c, sqlite3_stmt *st, char **error_r)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE) {
		*error_r = store_sqlerr_dup(c, "pop3 update");
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

static sqlite3_stmt *stmt(struct store_conn *c, const char *sql, char **error_r)
{
	const char *err;
	sqlite3_stmt *st = store_stmt(c, sql, &err);

	if (st == NULL)
		*error_r = xstrdup(err);
	return st;
}

/* Move one message (row id, size) to Trash: the next UID there. */
static int move_to_trash(struct store *store, int64_t trash_id, int64_t msg_id, int64_t size,
			 char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	int64_t uid, modseq;

	if ((st = stmt(c, SQL_MB_APPEND, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, size);
	sqlite3_bind_int64(st, 2, trash_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		*error_r = store_sqlerr_dup(c, "pop3 move to Trash");
		sqlite3_reset(st);
		return -1;
	}
	uid = sqlite3_column_int64(st, 0);
	modseq = sqlite3_column_int64(st, 1);
	if (step_done(c, st, error_r) < 0)
		return -1;
	if (uid > UINT32_MAX - 1) {
		*error_r = xstrdup("Trash has no UIDs left");
		return -1;
	}
	if ((st = stmt(c, SQL_MSG_MOVE, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, trash_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, modseq);
	sqlite3_bind_int64(st, 4, msg_id);
	return step_done(c, st, error_r);
}

/* Expunge (or move) one UID; *removed_r counts what left the mailbox. */
static int expunge_one(struct store *store, struct pop3_op *p, uint32_t uid, int64_t modseq,
		       int64_t trash_id, size_t *removed_r, size_t *moved_r, int64_t *bytes_r,
		       int64_t *freed_bytes_r, int64_t *freed_msgs_r, char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	int64_t id, size;
	char *path;
	int rc;

	if ((st = stmt(c, SQL_MSG_GET, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, p->u.mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;       /* gone already */
	}
	if (rc != SQLITE_ROW) {
		*error_r = store_sqlerr_dup(c, "pop3 expunge");
		sqlite3_reset(st);
		return -1;
	}
	id = sqlite3_column_int64(st, 0);
	size = sqlite3_column_int64(st, 1);
	path = store_message_path(store, (const char *)sqlite3_column_text(st, 2));
	sqlite3_reset(st);

	if (trash_id > 0) {
		if (move_to_trash(store, trash_id, id, size, error_r) < 0) {
			free(path);
			return -1;
		}
		free(path);
		(*moved_r)++;
	} else {
		if ((st = stmt(c, SQL_MSG_DELETE, error_r)) == NULL || (sqlite3_bind_int64(st, 1, id),
		    step_done(c, st, error_r)) < 0) {
			free(path);
			return -1;
		}
		store_op_add_unlink(&p->op, path);
		*freed_bytes_r += size;
		(*freed_msgs_r)++;
	}
	if ((st = stmt(c, SQL_EXPUNGED_ADD, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, p->u.mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, modseq);
	if (step_done(c, st, error_r) < 0)
		return -1;
	(*removed_r)++;
	*bytes_r += size;
	return 0;
}

static int op_pop3_update(struct store *store, struct store_op *op, char **error_r)
{
	struct pop3_op *p = (struct pop3_op *)op;
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	int64_t modseq, trash_id = 0;
	size_t removed = 0, moved = 0, expired_count = 0;
	int64_t bytes = 0, freed_bytes = 0, freed_msgs = 0;
	uint32_t *expired = NULL;
	int rc;

	if ((st = stmt(c, SQL_MB_MODSEQ, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, p->u.mailbox_id);
	sqlite3_bind_int64(st, 2, p->u.user_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		/* the mailbox (or the user) is gone: nothing left to change */
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		*error_r = store_sqlerr_dup(c, "pop3 update");
		sqlite3_reset(st);
		return -1;
	}
	modseq = sqlite3_column_int64(st, 0);
	if (step_done(c, st, error_r) < 0)
		return -1;

	/* RETR'd: \Seen and the first retrieval time */
	for (size_t i = 0; i < p->u.retrieved_count; i++) {
		if ((st = stmt(c, SQL_MSG_RETRIEVED, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, p->u.mailbox_id);
		sqlite3_bind_int64(st, 2, p->retrieved[i]);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)p->u.retrieved_at);
		sqlite3_bind_int64(st, 4, modseq);
		if (step_done(c, st, error_r) < 0)
			return -1;
	}

	/* expired by pop3.expire_days: always expunged, never moved */
	if (p->u.expire_before > 0) {
		size_t alloc = 0;

		if ((st = stmt(c, SQL_EXPIRED, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, p->u.mailbox_id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)p->u.expire_before);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (expired_count == alloc) {
				alloc = alloc ? alloc * 2 : 16;
				expired = xrealloc(expired, alloc * sizeof(*expired));
			}
			expired[expired_count++] = (uint32_t)sqlite3_column_int64(st, 0);
		}
		if (rc != SQLITE_DONE) {
			*error_r = store_sqlerr_dup(c, "pop3 expire");
			sqlite3_reset(st);
			free(expired);
			return -1;
		}
		sqlite3_reset(st);
		for (size_t i = 0; i < expired_count; i++) {
			if (expunge_one(store, p, expired[i], modseq, 0, &removed, &moved, &bytes,
					&freed_bytes, &freed_msgs, error_r) < 0) {
				free(expired);
				return -1;
			}
		}
		free(expired);
	}

	if (p->u.expunge_count > 0 && p->u.to_trash) {
		char *err = NULL;
		rc = store_mailbox_for_delivery(store, p->u.user_id, "Trash", &trash_id, &err);
		if (rc < 0) {
			*error_r = err;
			return -1;
		}
		/* no Trash (renamed away): the lookup fell back to the maildrop itself */
		if (rc == 0 || trash_id == p->u.mailbox_id)
			trash_id = 0;
	}
	for (size_t i = 0; i < p->u.expunge_count; i++) {
		if (expunge_one(store, p, p->expunge[i], modseq, trash_id, &removed, &moved, &bytes,
				&freed_bytes, &freed_msgs, error_r) < 0)
			return -1;
	}

	if (removed > 0) {
		if ((st = stmt(c, SQL_MB_SUB, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)removed);
		sqlite3_bind_int64(st, 2, bytes);
		sqlite3_bind_int64(st, 3, p->u.mailbox_id);
		if (step_done(c, st, error_r) < 0)
			return -1;
	}
	if (freed_msgs > 0) {
		if ((st = stmt(c, SQL_USER_SUB, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, freed_bytes);
		sqlite3_bind_int64(st, 2, freed_msgs);
		sqlite3_bind_int64(st, 3, p->u.user_id);
		if (step_done(c, st, error_r) < 0)
			return -1;
	}
	log_info("store", "event=pop3_update user_id=%lld mailbox_id=%lld expunged=%lld moved=%zu "
		 "expired=%zu retrieved=%zu modseq=%lld", (long long)p->u.user_id,
		 (long long)p->u.mailbox_id, (long long)freed_msgs, moved, expired_count,
		 p->u.retrieved_count, (long long)modseq);
	return 0;
}

static void pop3_op_free(struct store_op *op)
{
	struct pop3_op *p = (struct pop3_op *)op;

	free(p->expunge);
	free(p->retrieved);
	free(p);
}

static uint32_t *uids_dup(const uint32_t *uids, size_t n)
{
	uint32_t *out;

	if (n == 0)
		return NULL;
	out = xmalloc(n * sizeof(*out));
	memcpy(out, uids, n * sizeof(*out));
	return out;
}

static struct pop3_op *pop3_op_new(struct store *store, const struct store_pop3_update *u)
{
	(void)store;
	struct pop3_op *p;

	if (u->mailbox_id <= 0 || (u->expunge_count > 0 && u->expunge_uids == NULL) ||
	    (u->retrieved_count > 0 && u->retrieved_uids == NULL))
		return NULL;
	p = xcalloc(1, sizeof(*p));
	p->op.fn = op_pop3_update;
	p->u = *u;
	p->expunge = uids_dup(u->expunge_uids, u->expunge_count);
	p->retrieved = uids_dup(u->retrieved_uids, u->retrieved_count);
	p->u.expunge_uids = p->expunge;
	p->u.retrieved_uids = p->retrieved;
	if (p->u.retrieved_at == 0)
		p->u.retrieved_at = clock_now();
	return p;
}

int store_pop3_update(struct store *store, struct event_base *base,
		      const struct store_pop3_update *u, store_done_cb *cb, void *ctx)
{
	struct pop3_op *p = pop3_op_new(store, u);

	if (p == NULL)
		return -1;
	if (store_op_submit(store, &p->op, pop3_op_free, base, cb, ctx) < 0) {
		pop3_op_free(&p->op);
		return -1;
	}
	return 0;
}

int store_pop3_update_sync(struct store *store, const struct store_pop3_update *u,
			   const char **error_r)
{
	struct pop3_op *p = pop3_op_new(store, u);
	int rc;

	if (p == NULL) {
		*error_r = "invalid POP3 update request";
		return -1;
	}
	/* store_run_op waits on the commit thread and frees the unlink list */
	rc = store_run_op(store, &p->op, error_r);
	pop3_op_free(&p->op);
	return rc;
}

int store_message_exists(struct store *store, int64_t mailbox_id, uint32_t uid,
			 const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL || (st = store_stmt(c, SQL_MSG_EXISTS, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_sqlerr(c, "looking up a message");
	return -1;
}
