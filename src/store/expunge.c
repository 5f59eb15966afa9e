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
 *  - UIDs already gone (expunged by another session) are skipped;
 *  - a deleted row's file is queued for unlinking, but the commit thread
 *    unlinks it only when no other row names it (COPY shares files).
 * The row helpers (store_rows_*) are shared with IMAP EXPUNGE, MOVE,
 * DELETE and the INBOX RENAME (imap-*.c): moving a row to another mailbox
 * gives it the next UIDs there and one new modseq for the batch of rows.
 * RFC 1939 6 (UPDATE state), RFC 2449 6.7 (EXPIRE), RFC 7162 3.2.10. */
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

static const char SQL_MB_BUMP1[] =
	"UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?1"
	" RETURNING user_id, uidvalidity, highestmodseq";
static const char SQL_MB_ALLOC[] =
	"UPDATE mailboxes SET uidnext = uidnext + ?1, highestmodseq = highestmodseq + 1,"
	" messages = messages + ?1, bytes = bytes + ?2 WHERE id = ?3"
	" RETURNING uidnext - ?1, highestmodseq, uidvalidity";
static const char SQL_EXPIRED[] =
	"SELECT uid FROM messages WHERE mailbox_id = ?1 AND pop3_retrieved < ?2";
static const char SQL_MSG_RETRIEVED[] =
	"UPDATE messages SET pop3_retrieved = coalesce(pop3_retrieved, ?3),"
	" modseq = CASE WHEN instr(' ' || flags || ' ', ' \\Seen ') > 0 THEN modseq ELSE ?4 END,"
	" flags = CASE WHEN instr(' ' || flags || ' ', ' \\Seen ') > 0 THEN flags"
	"  WHEN flags = '' THEN '\\Seen' ELSE '\\Seen ' || flags END"
	" WHERE mailbox_id = ?1 AND uid = ?2";
static const char SQL_ROW_GET[] =
	"SELECT id, uid, size, file, flags, modseq FROM messages WHERE mailbox_id = ?1 AND uid = ?2";
static const char SQL_ROW_ALL[] =
	"SELECT id, uid, size, file, flags, modseq FROM messages WHERE mailbox_id = ?1 ORDER BY uid";
static const char SQL_MSG_DELETE[] =
	"DELETE FROM messages WHERE id = ?1";
static const char SQL_MSG_MOVE[] =
	"UPDATE messages SET mailbox_id = ?1, uid = ?2, modseq = ?3, savedate = ?5 WHERE id = ?4";
static const char SQL_MB_SUB[] =
	"UPDATE mailboxes SET messages = messages - ?1, bytes = bytes - ?2 WHERE id = ?3";
static const char SQL_USER_SUB[] =
	"UPDATE users SET used_bytes = used_bytes - ?1, used_messages = used_messages - ?2"
	" WHERE id = ?3";
static const char SQL_EXPUNGED_ADD[] =
	"INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)";
static const char SQL_MSG_EXISTS[] =
	"SELECT 1 FROM messages WHERE mailbox_id = ?1 AND uid = ?2";

int store_step_all(struct store_conn *c, sqlite3_stmt *st, const char *what, char **error_r)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE) {
		*error_r = store_sqlerr_dup(c, what);
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

int store_step_done(struct store_conn *c, sqlite3_stmt *st, char **error_r)
{
	return store_step_all(c, st, "index update", error_r);
}

sqlite3_stmt *store_wstmt(struct store_conn *c, const char *sql, char **error_r)
{
	const char *err;
	sqlite3_stmt *st = store_stmt(c, sql, &err);

	if (st == NULL)
		*error_r = xstrdup(err);
	return st;
}

/* ------------------------------------------------ shared row operations */

const uint32_t store_rows_all[1] = { 0 };

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void store_rows_free(struct store_row *rows, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(rows[i].file);
		free(rows[i].flags);
	}
	free(rows);
}

static void row_from(sqlite3_stmt *st, struct store_row *r)
{
	r->id = sqlite3_column_int64(st, 0);
	r->uid = (uint32_t)sqlite3_column_int64(st, 1);
	r->size = sqlite3_column_int64(st, 2);
	r->file = store_col_dup(st, 3);
	r->flags = store_col_dup(st, 4);
	r->modseq = sqlite3_column_int64(st, 5);
	if (r->file == NULL)
		r->file = xstrdup("");
	if (r->flags == NULL)
		r->flags = xstrdup("");
}

int store_rows_load(struct store *store, int64_t mailbox_id, const uint32_t *uids,
		    size_t count, struct store_row **rows_r, size_t *count_r, char **error_r)
{
	struct store_conn *c = &store->wconn;
	struct store_row *rows = NULL;
	size_t n = 0, alloc = 0;
	uint32_t *sorted = NULL;
	sqlite3_stmt *st;
	int rc;

	*rows_r = NULL;
	*count_r = 0;
	if (uids == STORE_ROWS_ALL) {
		/* every row of the mailbox */
		if ((st = store_wstmt(c, SQL_ROW_ALL, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, mailbox_id);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (n == alloc) {
				alloc = alloc ? alloc * 2 : 64;
				rows = xrealloc(rows, alloc * sizeof(*rows));
			}
			row_from(st, &rows[n++]);
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			goto sqlfail;
		*rows_r = rows;
		*count_r = n;
		return 0;
	}
	if (uids == NULL || count == 0)
		return 0;
	sorted = xmalloc(count * sizeof(*sorted));
	memcpy(sorted, uids, count * sizeof(*sorted));
	qsort(sorted, count, sizeof(*sorted), cmp_u32);
	rows = xmalloc(count * sizeof(*rows));
	for (size_t i = 0; i < count; i++) {
		if (i > 0 && sorted[i] == sorted[i - 1])
			continue;
		if ((st = store_wstmt(c, SQL_ROW_GET, error_r)) == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, sorted[i]);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			row_from(st, &rows[n++]);
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			goto sqlfail;
	}
	free(sorted);
	*rows_r = rows;
	*count_r = n;
	return 0;
sqlfail:
	*error_r = store_sqlerr_dup(c, "reading messages");
fail:
	free(sorted);
	store_rows_free(rows, n);
	return -1;
}

int store_mailbox_bump(struct store *store, int64_t mailbox_id, int64_t *user_id_r,
		       uint32_t *uidvalidity_r, int64_t *modseq_r, char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	int rc;

	if ((st = store_wstmt(c, SQL_MB_BUMP1, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		*error_r = store_sqlerr_dup(c, "mailbox modseq");
		sqlite3_reset(st);
		return -1;
	}
	if (user_id_r != NULL)
		*user_id_r = sqlite3_column_int64(st, 0);
	if (uidvalidity_r != NULL)
		*uidvalidity_r = (uint32_t)sqlite3_column_int64(st, 1);
	*modseq_r = sqlite3_column_int64(st, 2);
	if (store_step_done(c, st, error_r) < 0)
		return -1;
	return 1;
}

int store_mailbox_alloc(struct store *store, int64_t mailbox_id, size_t count, int64_t bytes,
			uint32_t *first_uid_r, int64_t *modseq_r, uint32_t *uidvalidity_r,
			char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	int64_t first;
	int rc;

	if ((st = store_wstmt(c, SQL_MB_ALLOC, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)count);
	sqlite3_bind_int64(st, 2, bytes);
	sqlite3_bind_int64(st, 3, mailbox_id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		*error_r = rc == SQLITE_DONE ? xstrdup("mailbox does not exist") :
			store_sqlerr_dup(c, "allocating UIDs");
		sqlite3_reset(st);
		return -1;
	}
	first = sqlite3_column_int64(st, 0);
	*modseq_r = sqlite3_column_int64(st, 1);
	if (uidvalidity_r != NULL)
		*uidvalidity_r = (uint32_t)sqlite3_column_int64(st, 2);
	if (store_step_done(c, st, error_r) < 0)
		return -1;
	/* UIDs are 32-bit and never reused (RFC 9051 2.3.1.1) */
	if (first < 1 || first + (int64_t)count - 1 > (int64_t)UINT32_MAX - 1) {
		*error_r = xasprintf("mailbox %lld has no UIDs left", (long long)mailbox_id);
		return -1;
	}
	*first_uid_r = (uint32_t)first;
	return 0;
}

int store_rows_remove(struct store *store, struct store_op *op, int64_t user_id,
		      int64_t mailbox_id, int64_t modseq, const struct store_row *rows,
		      size_t count, int64_t dest_id, uint32_t *dst_uids_r,
		      int64_t *dest_modseq_r, char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	int64_t bytes = 0, dest_modseq = 0;
	uint32_t first = 0;

	if (count == 0)
		return 0;
	for (size_t i = 0; i < count; i++)
		bytes += rows[i].size;
	if (dest_id > 0 && store_mailbox_alloc(store, dest_id, count, bytes, &first, &dest_modseq,
					       NULL, error_r) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		const struct store_row *r = &rows[i];

		if (dest_id > 0) {
			if ((st = store_wstmt(c, SQL_MSG_MOVE, error_r)) == NULL)
				return -1;
			sqlite3_bind_int64(st, 1, dest_id);
			sqlite3_bind_int64(st, 2, first + (int64_t)i);
			sqlite3_bind_int64(st, 3, dest_modseq);
			sqlite3_bind_int64(st, 4, r->id);
			/* RFC 8514: SAVEDATE is when it entered this mailbox */
			sqlite3_bind_int64(st, 5, (sqlite3_int64)clock_now());
			if (dst_uids_r != NULL)
				dst_uids_r[i] = first + (uint32_t)i;
		} else {
			if ((st = store_wstmt(c, SQL_MSG_DELETE, error_r)) == NULL)
				return -1;
			sqlite3_bind_int64(st, 1, r->id);
			store_op_add_unlink(op, store_message_path(store, r->file));
		}
		if (store_step_done(c, st, error_r) < 0)
			return -1;
		if ((st = store_wstmt(c, SQL_EXPUNGED_ADD, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, r->uid);
		sqlite3_bind_int64(st, 3, modseq);
		if (store_step_done(c, st, error_r) < 0)
			return -1;
	}
	if ((st = store_wstmt(c, SQL_MB_SUB, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)count);
	sqlite3_bind_int64(st, 2, bytes);
	sqlite3_bind_int64(st, 3, mailbox_id);
	if (store_step_done(c, st, error_r) < 0)
		return -1;
	if (dest_id == 0) {
		if ((st = store_wstmt(c, SQL_USER_SUB, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, bytes);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)count);
		sqlite3_bind_int64(st, 3, user_id);
		if (store_step_done(c, st, error_r) < 0)
			return -1;
	}
	store_op_add_event(op, user_id, mailbox_id, NOTIFY_MESSAGE_EXPUNGE, (uint64_t)modseq);
	if (dest_id > 0) {
		store_op_add_event(op, user_id, dest_id, NOTIFY_MESSAGE_NEW, (uint64_t)dest_modseq);
		if (dest_modseq_r != NULL)
			*dest_modseq_r = dest_modseq;
	}
	return 0;
}

/* ------------------------------------------------------------------ POP3 */

/* A sorted copy of uids[0..n) (n > 0), for bsearch with cmp_u32. */
static uint32_t *uids_sorted(const uint32_t *uids, size_t n)
{
	uint32_t *out = xmalloc(n * sizeof(*out));

	memcpy(out, uids, n * sizeof(*out));
	qsort(out, n, sizeof(*out), cmp_u32);
	return out;
}

static int op_pop3_update(struct store *store, struct store_op *op, char **error_r)
{
	struct pop3_op *p = (struct pop3_op *)op;
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	int64_t modseq, trash_id = 0, owner = 0;
	size_t expired_count = 0, freed = 0, moved = 0;
	uint32_t *expired = NULL;
	struct store_row *rows = NULL;
	size_t nrows = 0;
	int rc;

	rc = store_mailbox_bump(store, p->u.mailbox_id, &owner, NULL, &modseq, error_r);
	if (rc < 0)
		return -1;
	if (rc == 0 || owner != p->u.user_id) {
		/* the mailbox (or the user) is gone: nothing left to change */
		return 0;
	}

	/* RETR'd: \Seen and the first retrieval time.  Why the skip: a
	 * message also DELE'd is expunged below (unless it moves to Trash,
	 * where it keeps \Seen), and updating its row, its modseq and its
	 * index entries first only to delete them all was most of the index
	 * writes of a QUIT that empties a maildrop. */
	uint32_t *gone = NULL;
	size_t ngone = 0;
	if (!p->u.to_trash && p->u.expunge_count > 0 && p->u.retrieved_count > 0) {
		gone = uids_sorted(p->expunge, p->u.expunge_count);
		ngone = p->u.expunge_count;
	}
	size_t marked = 0;
	for (size_t i = 0; i < p->u.retrieved_count; i++) {
		if (gone != NULL && bsearch(&p->retrieved[i], gone, ngone, sizeof(*gone),
					    cmp_u32) != NULL)
			continue;
		marked++;
		if ((st = store_wstmt(c, SQL_MSG_RETRIEVED, error_r)) == NULL) {
			free(gone);
			return -1;
		}
		sqlite3_bind_int64(st, 1, p->u.mailbox_id);
		sqlite3_bind_int64(st, 2, p->retrieved[i]);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)p->u.retrieved_at);
		sqlite3_bind_int64(st, 4, modseq);
		if (store_step_done(c, st, error_r) < 0) {
			free(gone);
			return -1;
		}
	}
	free(gone);
	if (marked > 0)
		store_op_add_event(op, p->u.user_id, p->u.mailbox_id, NOTIFY_FLAGS,
				   (uint64_t)modseq);

	/* expired by pop3.expire_days: always expunged, never moved */
	if (p->u.expire_before > 0) {
		size_t alloc = 0;

		if ((st = store_wstmt(c, SQL_EXPIRED, error_r)) == NULL)
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
		rc = store_rows_load(store, p->u.mailbox_id, expired, expired_count, &rows, &nrows,
				     error_r);
		free(expired);
		if (rc < 0)
			return -1;
		rc = store_rows_remove(store, op, p->u.user_id, p->u.mailbox_id, modseq, rows,
				       nrows, 0, NULL, NULL, error_r);
		freed += nrows;
		store_rows_free(rows, nrows);
		if (rc < 0)
			return -1;
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
	/* loaded after the expiry: a UID both expired and DELE'd is gone now */
	if (store_rows_load(store, p->u.mailbox_id, p->expunge, p->u.expunge_count, &rows,
			    &nrows, error_r) < 0)
		return -1;
	rc = store_rows_remove(store, op, p->u.user_id, p->u.mailbox_id, modseq, rows, nrows,
			       trash_id, NULL, NULL, error_r);
	store_rows_free(rows, nrows);
	if (rc < 0)
		return -1;
	if (trash_id > 0)
		moved = nrows;
	else
		freed += nrows;
	log_info("store", "event=pop3_update user_id=%lld mailbox_id=%lld expunged=%zu moved=%zu "
		 "expired=%zu retrieved=%zu modseq=%lld", (long long)p->u.user_id,
		 (long long)p->u.mailbox_id, freed, moved, expired_count,
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
	/* the +OK to QUIT waits for the commit, not for the unlinks */
	p->op.unlink_later = true;
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
