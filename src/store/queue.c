/* The outbound queue's records (schema 5): queue (one row per message,
 * its file in the message folder) and queue_rcpts (one row per recipient
 * with its own state).
 *
 * Invariants:
 *  - A message enters in the same transaction as the local copies of its
 *    delivery (commit.c calls store_queue_insert), so a 250 means both are
 *    durable, or neither is.
 *  - A recipient's state only moves forward: QUEUED/DEFERRED ->
 *    DELIVERED/BOUNCED; a recipient recorded as delivered is never handed
 *    out again.
 *  - A message leaves (row and file) in the transaction that finishes its
 *    last pending recipient; the file is unlinked after that commit.
 *  - Held messages are never due. */
#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <stdlib.h>
#include <string.h>

/* ---- entering the queue ---- */

void store_queue_in_clear(struct store_queue_in *q)
{
	for (size_t i = 0; i < q->count; i++) {
		free(q->rcpts[i].address);
		free(q->rcpts[i].domain);
		free(q->rcpts[i].orcpt);
	}
	free(q->rcpts);
	memset(q, 0, sizeof(*q));
}

int store_queue_in_copy(struct store_queue_in *q, const struct store_delivery *d)
{
	memset(q, 0, sizeof(*q));
	q->rcpts = xcalloc(d->remote_count, sizeof(*q->rcpts));
	q->user_id = d->submit_user_id;
	q->flags = d->queue_flags;
	for (size_t i = 0; i < d->remote_count; i++) {
		const char *a = d->remote[i].address, *at = a != NULL ? strrchr(a, '@') : NULL;

		if (at == NULL || at[1] == '\0' || strpbrk(a, "\r\n") != NULL) {
			store_queue_in_clear(q);
			return -1;
		}
		q->rcpts[i].address = xstrdup(a);
		q->rcpts[i].domain = xstrdup(at + 1);
		for (char *p = q->rcpts[i].domain; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		q->rcpts[i].orcpt = d->remote[i].orcpt ? xstrdup(d->remote[i].orcpt) : NULL;
		q->rcpts[i].notify = d->remote[i].notify;
		q->count++;
	}
	return 0;
}

static const char SQL_Q_INSERT[] =
	"INSERT INTO queue (file, size, sender, user_id, created, dsn, flags)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_QR_INSERT[] =
	"INSERT INTO queue_rcpts (queue_id, address, domain, orcpt, notify, next_attempt)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

int store_queue_insert(struct store *store, const char *file, int64_t size, const char *sender,
		       const char *dsn, const struct store_queue_in *q, char **error_r)
{
	struct store_conn *c = &store->wconn;
	time_t now = clock_now();
	sqlite3_stmt *st;
	int64_t id;

	if ((st = store_wstmt(c, SQL_Q_INSERT, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, file, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, size);
	sqlite3_bind_text(st, 3, sender ? sender : "", -1, SQLITE_STATIC);
	if (q->user_id > 0)
		sqlite3_bind_int64(st, 4, q->user_id);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)now);
	store_bind_text(st, 6, dsn);
	sqlite3_bind_int64(st, 7, q->flags);
	if (store_step_done(c, st, error_r) < 0)
		return -1;
	id = sqlite3_last_insert_rowid(c->db);
	for (size_t i = 0; i < q->count; i++) {
		if ((st = store_wstmt(c, SQL_QR_INSERT, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, q->rcpts[i].address, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, q->rcpts[i].domain, -1, SQLITE_STATIC);
		store_bind_text(st, 4, q->rcpts[i].orcpt);
		sqlite3_bind_int64(st, 5, q->rcpts[i].notify);
		sqlite3_bind_int64(st, 6, (sqlite3_int64)now);
		if (store_step_done(c, st, error_r) < 0)
			return -1;
	}
	return 0;
}

/* ---- listing ---- */

static const char SQL_Q_LIST[] =
	"SELECT q.id, q.file, q.size, q.sender, coalesce(q.user_id, 0), q.created, q.dsn,"
	" q.flags, q.held FROM queue q"
	" WHERE (?1 IS NULL OR q.file = ?1)"
	" AND (?2 IS NULL OR instr(lower(q.sender), lower(?2)) > 0)"
	" AND (?3 IS NULL OR EXISTS (SELECT 1 FROM queue_rcpts r WHERE r.queue_id = q.id"
	"   AND instr(lower(r.address), lower(?3)) > 0))"
	" AND (?4 IS NULL OR EXISTS (SELECT 1 FROM queue_rcpts r WHERE r.queue_id = q.id"
	"   AND r.domain = lower(?4) AND r.state < 2))"
	" AND (?5 = 0 OR q.created < ?5)"
	" AND (?6 = 0 OR (q.held = 0 AND EXISTS (SELECT 1 FROM queue_rcpts r"
	"   WHERE r.queue_id = q.id AND r.state < 2 AND r.next_attempt <= ?7)))"
	" ORDER BY q.created, q.id LIMIT ?8";
/* The scheduler's scan (due): driven by the due recipients through
 * queue_rcpts_due, so deferred messages cost nothing however many there
 * are; the other filters as above. */
static const char SQL_Q_DUE[] =
	"SELECT q.id, q.file, q.size, q.sender, coalesce(q.user_id, 0), q.created, q.dsn,"
	" q.flags, q.held FROM (SELECT DISTINCT queue_id AS qid FROM queue_rcpts"
	"   WHERE state < 2 AND next_attempt <= ?7) d JOIN queue q ON q.id = d.qid"
	" WHERE q.held = 0 AND ?6 = 1"
	" AND (?1 IS NULL OR q.file = ?1)"
	" AND (?2 IS NULL OR instr(lower(q.sender), lower(?2)) > 0)"
	" AND (?3 IS NULL OR EXISTS (SELECT 1 FROM queue_rcpts r WHERE r.queue_id = q.id"
	"   AND instr(lower(r.address), lower(?3)) > 0))"
	" AND (?4 IS NULL OR EXISTS (SELECT 1 FROM queue_rcpts r WHERE r.queue_id = q.id"
	"   AND r.domain = lower(?4) AND r.state < 2))"
	" AND (?5 = 0 OR q.created < ?5)"
	" ORDER BY q.created, q.id LIMIT ?8";
static const char SQL_QR_LIST[] =
	"SELECT id, address, domain, orcpt, notify, state, attempts, next_attempt,"
	" coalesce(last_attempt, 0), last_error, warned, give_up FROM queue_rcpts"
	" WHERE queue_id = ?1 AND (?2 = 0 OR state < 2) ORDER BY id";

struct rcpt_rows {
	struct store_queue_rcpt *v;
	size_t n, alloc;
};

static char *col_text(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? NULL : store_col_dup(st, i);
}

static int rcpt_row(sqlite3_stmt *st, void *arg)
{
	struct rcpt_rows *r = arg;
	struct store_queue_rcpt *q;

	if (r->n == r->alloc) {
		r->alloc = r->alloc ? r->alloc * 2 : 8;
		r->v = xrealloc(r->v, r->alloc * sizeof(*r->v));
	}
	q = &r->v[r->n++];
	memset(q, 0, sizeof(*q));
	q->id = sqlite3_column_int64(st, 0);
	q->address = col_text(st, 1);
	q->domain = col_text(st, 2);
	q->orcpt = col_text(st, 3);
	q->notify = (unsigned)sqlite3_column_int64(st, 4);
	q->state = (enum store_queue_state)sqlite3_column_int(st, 5);
	q->attempts = sqlite3_column_int(st, 6);
	q->next_attempt = (time_t)sqlite3_column_int64(st, 7);
	q->last_attempt = (time_t)sqlite3_column_int64(st, 8);
	q->last_error = col_text(st, 9);
	q->warned = sqlite3_column_int(st, 10) != 0;
	q->give_up = sqlite3_column_int(st, 11) != 0;
	return 0;
}

static void rcpt_rows_free(struct rcpt_rows *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free((char *)r->v[i].address);
		free((char *)r->v[i].domain);
		free((char *)r->v[i].orcpt);
		free((char *)r->v[i].last_error);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

struct msg_rows {
	struct store_queue_msg *v;
	char **strings;             /* what the rows own: 4 per message */
	size_t n, alloc;
};

static int msg_row(sqlite3_stmt *st, void *arg)
{
	struct msg_rows *m = arg;
	struct store_queue_msg *q;

	if (m->n == m->alloc) {
		m->alloc = m->alloc ? m->alloc * 2 : 16;
		m->v = xrealloc(m->v, m->alloc * sizeof(*m->v));
	}
	q = &m->v[m->n++];
	memset(q, 0, sizeof(*q));
	q->id = sqlite3_column_int64(st, 0);
	q->qid = col_text(st, 1);
	q->size = sqlite3_column_int64(st, 2);
	q->sender = col_text(st, 3);
	q->user_id = sqlite3_column_int64(st, 4);
	q->created = (time_t)sqlite3_column_int64(st, 5);
	q->dsn = col_text(st, 6);
	q->flags = (unsigned)sqlite3_column_int64(st, 7);
	q->held = sqlite3_column_int(st, 8) != 0;
	return 0;
}

int store_queue_list(struct store *store, const struct store_queue_filter *f,
		     int (*cb)(void *ctx, const struct store_queue_msg *m), void *ctx,
		     const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	struct msg_rows m = { 0 };
	sqlite3_stmt *st;
	int rc = 0;

	if (c == NULL || (st = store_stmt(c, f->due ? SQL_Q_DUE : SQL_Q_LIST, error_r)) == NULL)
		return -1;
	store_bind_text(st, 1, f->qid);
	store_bind_text(st, 2, f->sender);
	store_bind_text(st, 3, f->rcpt);
	store_bind_text(st, 4, f->domain);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)f->older_than);
	sqlite3_bind_int(st, 6, f->due);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)f->now);
	sqlite3_bind_int64(st, 8, f->limit > 0 ? (sqlite3_int64)f->limit : -1);
	/* the messages first, then each one's recipients: no statement stays
	 * open while cb runs */
	if (store_each_row(c, st, msg_row, &m, "queue listing", error_r) < 0)
		rc = -1;
	for (size_t i = 0; i < m.n && rc == 0; i++) {
		struct store_queue_msg *q = &m.v[i];
		struct rcpt_rows r = { 0 };
		char *path;

		if ((st = store_stmt(c, SQL_QR_LIST, error_r)) == NULL) {
			rc = -1;
			break;
		}
		sqlite3_bind_int64(st, 1, q->id);
		sqlite3_bind_int(st, 2, f->pending_only);
		if (store_each_row(c, st, rcpt_row, &r, "queue listing", error_r) < 0) {
			rcpt_rows_free(&r);
			rc = -1;
			break;
		}
		path = store_message_path(store, q->qid);
		q->path = path;
		q->rcpts = r.v;
		q->rcpt_count = r.n;
		if (cb(ctx, q) != 0)
			i = m.n;   /* stop, but still free below */
		q->path = NULL;
		free(path);
		rcpt_rows_free(&r);
	}
	for (size_t i = 0; i < m.n; i++) {
		free((char *)m.v[i].qid);
		free((char *)m.v[i].sender);
		free((char *)m.v[i].dsn);
	}
	free(m.v);
	return rc;
}

/* ---- recording attempts ---- */

struct update_arg {
	struct store_queue_result *results;
	char **errors;
	size_t count;
};

static void update_arg_free(void *p)
{
	struct update_arg *a = p;

	if (a == NULL)
		return;
	for (size_t i = 0; i < a->count; i++)
		free(a->errors[i]);
	free(a->errors);
	free(a->results);
	free(a);
}

static const char SQL_QR_UPDATE[] =
	"UPDATE queue_rcpts SET state = ?1, attempts = attempts + 1, last_attempt = ?2,"
	" next_attempt = ?3, last_error = ?4, warned = max(warned, ?5), give_up = 0"
	" WHERE id = ?6 AND state < 2 RETURNING queue_id";
static const char SQL_Q_DONE[] =
	"DELETE FROM queue WHERE id = ?1 AND NOT EXISTS"
	" (SELECT 1 FROM queue_rcpts WHERE queue_id = ?1 AND state < 2) RETURNING file";

/* Remove queue message id when nothing of it is pending; its file is
 * unlinked after the commit. */
static int finish_if_done(struct store *store, struct store_op *op, int64_t id, bool *gone_r,
			  char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, SQL_Q_DONE, error_r);
	int rc;

	*gone_r = false;
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *file = (const char *)sqlite3_column_text(st, 0);
		/* the file is kept as a spare for a later message (commit.c) */
		store_op_add_recycle(op, store_message_path(store, file));
		*gone_r = true;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_sqlerr_dup(c, "queue update");
		return -1;
	}
	return 0;
}

static int op_update(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;
	struct update_arg *a = p->arg;
	struct store_conn *c = &store->wconn;
	time_t now = clock_now();

	store_imap_op_reset(p);
	for (size_t i = 0; i < a->count; i++) {
		const struct store_queue_result *r = &a->results[i];
		sqlite3_stmt *st = store_wstmt(c, SQL_QR_UPDATE, error_r);
		int64_t queue_id = 0;
		bool gone;
		int rc;

		if (st == NULL)
			return -1;
		sqlite3_bind_int(st, 1, r->state);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)r->next_attempt);
		store_bind_text(st, 4, r->error);
		sqlite3_bind_int(st, 5, r->warned);
		sqlite3_bind_int64(st, 6, r->rcpt_id);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			queue_id = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			*error_r = store_sqlerr_dup(c, "queue update");
			return -1;
		}
		if (queue_id == 0)
			continue;   /* gone or already final: never moves back */
		if (finish_if_done(store, op, queue_id, &gone, error_r) < 0)
			return -1;
		p->result_count += gone;
	}
	return 0;
}

int store_queue_update(struct store *store, struct event_base *base,
		       const struct store_queue_result *results, size_t count,
		       store_write_cb *cb, void *ctx)
{
	struct store_imap_op *p;
	struct update_arg *a;

	if (count == 0 || cb == NULL)
		return -1;
	for (size_t i = 0; i < count; i++)
		if (results[i].state != STORE_QUEUE_DEFERRED &&
		    results[i].state != STORE_QUEUE_DELIVERED &&
		    results[i].state != STORE_QUEUE_BOUNCED)
			return -1;
	a = xcalloc(1, sizeof(*a));
	a->results = xcalloc(count, sizeof(*a->results));
	a->errors = xcalloc(count, sizeof(*a->errors));
	a->count = count;
	for (size_t i = 0; i < count; i++) {
		a->results[i] = results[i];
		a->errors[i] = results[i].error ? xstrdup(results[i].error) : NULL;
		a->results[i].error = a->errors[i];
	}
	p = store_imap_op_new(op_update, cb, ctx);
	p->arg = a;
	p->arg_free = update_arg_free;
	return store_imap_op_submit(store, base, p);
}

/* ---- administration ---- */

/* The queue ids an action applies to: one message, or those with a
 * pending recipient in a domain. */
static const char SQL_Q_SELECT[] =
	"SELECT q.id, q.file FROM queue q WHERE (?1 IS NOT NULL AND q.file = ?1)"
	" OR (?1 IS NULL AND EXISTS (SELECT 1 FROM queue_rcpts r WHERE r.queue_id = q.id"
	"   AND r.domain = lower(?2) AND r.state < 2))";

static int op_admin(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;
	enum store_queue_action action = (enum store_queue_action)p->kind;
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	int64_t *ids = NULL;
	char **files = NULL;
	size_t n = 0, alloc = 0;
	int rc, ret = -1;

	store_imap_op_reset(p);
	if ((st = store_wstmt(c, SQL_Q_SELECT, error_r)) == NULL)
		return -1;
	store_bind_text(st, 1, p->name);
	store_bind_text(st, 2, p->name2);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 16;
			ids = xrealloc(ids, alloc * sizeof(*ids));
			files = xrealloc(files, alloc * sizeof(*files));
		}
		ids[n] = sqlite3_column_int64(st, 0);
		files[n++] = store_col_dup(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_sqlerr_dup(c, "queue action");
		goto out;
	}
	if (n == 0 && p->name != NULL) {
		store_imap_fail(p, "NONEXISTENT", error_r, "no queued message %s", p->name);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		static const char *const sql[] = {
			[STORE_QUEUE_FLUSH] = "UPDATE queue_rcpts SET next_attempt = 0"
					      " WHERE queue_id = ?1 AND state < 2",
			[STORE_QUEUE_HOLD] = "UPDATE queue SET held = 1 WHERE id = ?1",
			[STORE_QUEUE_RELEASE] = "UPDATE queue SET held = 0 WHERE id = ?1",
			[STORE_QUEUE_DELETE] = "DELETE FROM queue WHERE id = ?1",
			[STORE_QUEUE_BOUNCE] = "UPDATE queue_rcpts SET give_up = 1, next_attempt = 0"
					       " WHERE queue_id = ?1 AND state < 2",
		};
		if ((st = store_wstmt(c, sql[action], error_r)) == NULL)
			goto out;
		sqlite3_bind_int64(st, 1, ids[i]);
		if (store_step_done(c, st, error_r) < 0)
			goto out;
		if (action == STORE_QUEUE_BOUNCE) {
			/* a held message bounced by hand goes now */
			if ((st = store_wstmt(c, "UPDATE queue SET held = 0 WHERE id = ?1",
					      error_r)) == NULL)
				goto out;
			sqlite3_bind_int64(st, 1, ids[i]);
			if (store_step_done(c, st, error_r) < 0)
				goto out;
		}
		if (action == STORE_QUEUE_DELETE)
			store_op_add_unlink(op, store_message_path(store, files[i]));
	}
	p->result_count = n;
	ret = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	free(files);
	free(ids);
	return ret;
}

int store_queue_admin(struct store *store, struct event_base *base, const char *qid,
		      const char *domain, enum store_queue_action action, store_write_cb *cb,
		      void *ctx)
{
	struct store_imap_op *p;

	if (cb == NULL || (qid == NULL) == (domain == NULL) || action < STORE_QUEUE_FLUSH ||
	    action > STORE_QUEUE_BOUNCE)
		return -1;
	p = store_imap_op_new(op_admin, cb, ctx);
	p->name = qid ? xstrdup(qid) : NULL;
	p->name2 = domain ? xstrdup(domain) : NULL;
	p->kind = (int)action;
	return store_imap_op_submit(store, base, p);
}
