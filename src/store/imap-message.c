/* IMAP message writes and change queries: APPEND, STORE (flags), COPY,
 * MOVE, EXPUNGE, and the CONDSTORE/QRESYNC reads (changed messages,
 * expunged UIDs, keywords) (store.h, "IMAP: ...").
 *
 * Invariants:
 *  - APPEND writes its file in the commit thread's batch, with the
 *    deliveries, and shares their flush: durable before the row exists
 *    (DESIGN.md); bare LF in the client's data becomes CRLF.
 *  - UIDs come from mailboxes.uidnext and are never reused; one write
 *    gives a mailbox one new modseq (highestmodseq + 1), stored on every
 *    message it changed, so modseq strictly increases (RFC 7162 3.1).
 *  - COPY shares the message file between rows (the commit thread unlinks
 *    a file only when no row names it); each copy counts in the user's
 *    usage, so APPEND and COPY check users.quota_bytes (OVERQUOTA,
 *    RFC 5530 / RFC 9208 as Dovecot does); MOVE changes no usage.
 *  - MOVE and EXPUNGE reuse expunge.c's row helpers: counters stay exact
 *    and every removed UID is recorded in the expunge history.
 *  - STORE with UNCHANGEDSINCE (RFC 7162 3.1.3) leaves messages whose
 *    modseq is higher and reports them; a message whose flags do not
 *    change keeps its modseq. */
#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <stdlib.h>
#include <string.h>

static const char SQL_USER_QUOTA[] =
	"SELECT quota_bytes, used_bytes, quota_messages, used_messages FROM users WHERE id = ?1";
static const char SQL_USER_ADD[] =
	"UPDATE users SET used_bytes = used_bytes + ?1, used_messages = used_messages + ?2"
	" WHERE id = ?3";
static const char SQL_MSG_APPEND[] =
	"INSERT INTO messages(mailbox_id, uid, modseq, internal_date, size, flags, file, savedate)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static const char SQL_MSG_FLAGS[] =
	"UPDATE messages SET flags = ?2, modseq = ?3 WHERE id = ?1";
static const char SQL_MSG_COPY[] =
	"INSERT INTO messages(mailbox_id, uid, modseq, internal_date, size, flags, file, dsn,"
	" savedate)"
	" SELECT ?1, ?2, ?3, internal_date, size, flags, file, dsn, ?5 FROM messages WHERE id = ?4";
static const char SQL_MSG_CHANGED[] =
	"SELECT id, mailbox_id, uid, modseq, internal_date, size, flags, file"
	" FROM messages WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid";
static const char SQL_EXPUNGED_SINCE[] =
	"SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid";
static const char SQL_KEYWORDS[] =
	"SELECT keyword FROM keywords WHERE mailbox_id = ?1 ORDER BY keyword";

/* Would adding count messages of bytes take user_id over its quota (bytes,
 * or the message count of RFC 9208 5.2)?  1 yes, 0 no, <0. */
static int over_quota(struct store *store, int64_t user_id, int64_t bytes, int64_t count,
		      char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, SQL_USER_QUOTA, error_r);
	int64_t quota, used, quota_msgs, used_msgs;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		*error_r = store_sqlerr_dup(c, "reading quota");
		sqlite3_reset(st);
		return -1;
	}
	quota = sqlite3_column_int64(st, 0);
	used = sqlite3_column_int64(st, 1);
	quota_msgs = sqlite3_column_int64(st, 2);
	used_msgs = sqlite3_column_int64(st, 3);
	sqlite3_reset(st);
	return (quota > 0 && used + bytes > quota) ||
	       (quota_msgs > 0 && used_msgs + count > quota_msgs);
}

static int usage_add(struct store *store, int64_t user_id, int64_t bytes, int64_t count,
		     char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, SQL_USER_ADD, error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, bytes);
	sqlite3_bind_int64(st, 2, count);
	sqlite3_bind_int64(st, 3, user_id);
	return store_step_done(c, st, error_r);
}

static uint32_t *uids_dup(const uint32_t *uids, size_t n)
{
	uint32_t *out = xmalloc((n ? n : 1) * sizeof(*out));

	if (n > 0)
		memcpy(out, uids, n * sizeof(*out));
	return out;
}

/* ---------------------------------------------------------------- APPEND */

static int op_append(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	int64_t mailbox_id, modseq, size = (int64_t)op->file_len;
	uint32_t uid;
	char *name = store_mailbox_canon(p->name);
	int rc;

	store_imap_op_reset(p);
	rc = store_wmailbox_find(store, p->user_id, name, &mailbox_id, error_r);
	free(name);
	if (rc == 0)
		return store_imap_fail(p, "NONEXISTENT", error_r, "mailbox does not exist");
	if (rc < 0)
		return -1;
	if ((rc = over_quota(store, p->user_id, size, 1, error_r)) != 0) {
		if (rc > 0)
			store_imap_fail(p, "OVERQUOTA", error_r, "quota exceeded");
		return -1;
	}
	if (store_mailbox_alloc(store, mailbox_id, 1, size, &uid, &modseq, &p->uidvalidity,
				error_r) < 0)
		return -1;
	if ((st = store_wstmt(c, SQL_MSG_APPEND, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, modseq);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)p->internal_date);
	sqlite3_bind_int64(st, 5, size);
	sqlite3_bind_text(st, 6, p->flags, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, op->file, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)clock_now());
	if (store_step_done(c, st, error_r) < 0)
		return -1;
	if (p->summary != NULL &&
	    store_summary_insert(store, sqlite3_last_insert_rowid(c->db), p->user_id, op->file,
				 p->summary, error_r) < 0)
		return -1;
	if (usage_add(store, p->user_id, size, 1, error_r) < 0 ||
	    store_keywords_add(store, mailbox_id, p->flags, error_r) < 0)
		return -1;
	p->dst_uids = uids_dup(&uid, 1);
	p->result_count = 1;
	p->modseq = (uint64_t)modseq;
	store_op_add_event(op, p->user_id, mailbox_id, NOTIFY_MESSAGE_NEW, (uint64_t)modseq);
	return 0;
}

/* The client's message with bare LF turned into CRLF (RFC 9051 6.3.12:
 * the store keeps messages as IMAP serves them). */
static char *crlf_copy(const char *data, size_t len, size_t *len_r)
{
	size_t extra = 0, o = 0;
	char *out;

	for (size_t i = 0; i < len; i++)
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			extra++;
	out = xmalloc(len + extra + 1);
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = data[i];
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

int store_append(struct store *store, struct event_base *base, int64_t user_id,
		 const char *mailbox, const char *data, size_t len, const char *flags,
		 time_t internal_date, store_write_cb *cb, void *ctx)
{
	struct store_imap_op *p;
	const char *err;
	char *norm;

	if (mailbox == NULL || (data == NULL && len > 0) || cb == NULL)
		return -1;
	if ((norm = store_flags_normalize(flags, &err)) == NULL)
		return -1;
	p = store_imap_op_new(op_append, cb, ctx);
	p->user_id = user_id;
	p->name = xstrdup(mailbox);
	p->flags = norm;
	p->internal_date = internal_date ? internal_date : clock_now();
	p->op.file_data = crlf_copy(data ? data : "", len, &p->op.file_len);
	/* summarised here, on the caller's thread, which has the bytes */
	p->summary = store_summary_compute(NULL, 0, p->op.file_data, p->op.file_len);
	return store_imap_op_submit(store, base, p);
}

/* ----------------------------------------------------------------- STORE */

static int op_flags(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;
	struct store_conn *c = &store->wconn;
	struct store_row *rows = NULL;
	char **updated = NULL;
	size_t n = 0, changed = 0;
	int64_t user_id, highest, modseq = 0;
	int rc;

	store_imap_op_reset(p);
	rc = store_wmailbox_get(store, p->mailbox_id, &user_id, NULL, &highest, error_r);
	if (rc == 0)
		return store_imap_fail(p, "NONEXISTENT", error_r, "mailbox does not exist");
	if (rc < 0 || store_rows_load(store, p->mailbox_id, p->uids, p->count, &rows, &n,
				      error_r) < 0)
		return -1;
	updated = xcalloc(n ? n : 1, sizeof(*updated));
	p->modified = xmalloc((n ? n : 1) * sizeof(*p->modified));
	for (size_t i = 0; i < n; i++) {
		if (p->unchangedsince > 0 && (uint64_t)rows[i].modseq > p->unchangedsince) {
			p->modified[p->modified_count++] = rows[i].uid;
			continue;
		}
		char *nf = store_flags_apply(rows[i].flags, p->mode, p->flags);
		if (strcmp(nf, rows[i].flags) == 0) {
			free(nf);
			continue;
		}
		updated[i] = nf;
		changed++;
	}
	rc = 0;
	if (changed > 0) {
		rc = store_mailbox_bump(store, p->mailbox_id, NULL, NULL, &modseq, error_r);
		rc = rc > 0 ? 0 : -1;
		for (size_t i = 0; rc == 0 && i < n; i++) {
			sqlite3_stmt *st;
			if (updated[i] == NULL)
				continue;
			if ((st = store_wstmt(c, SQL_MSG_FLAGS, error_r)) == NULL) {
				rc = -1;
				break;
			}
			sqlite3_bind_int64(st, 1, rows[i].id);
			sqlite3_bind_text(st, 2, updated[i], -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 3, modseq);
			rc = store_step_done(c, st, error_r);
		}
		if (rc == 0 && p->mode != STORE_FLAGS_REMOVE)
			rc = store_keywords_add(store, p->mailbox_id, p->flags, error_r);
		if (rc == 0)
			store_op_add_event(op, user_id, p->mailbox_id, NOTIFY_FLAGS,
					   (uint64_t)modseq);
	}
	p->modseq = (uint64_t)(changed > 0 ? modseq : highest);
	for (size_t i = 0; i < n; i++)
		free(updated[i]);
	free(updated);
	store_rows_free(rows, n);
	return rc;
}

int store_flags_update(struct store *store, struct event_base *base, int64_t mailbox_id,
		       const uint32_t *uids, size_t count, enum store_flags_mode mode,
		       const char *flags, uint64_t unchangedsince, store_write_cb *cb,
		       void *ctx)
{
	struct store_imap_op *p;
	const char *err;
	char *norm;

	if ((uids == NULL && count > 0) || cb == NULL ||
	    (mode != STORE_FLAGS_SET && mode != STORE_FLAGS_ADD && mode != STORE_FLAGS_REMOVE))
		return -1;
	if ((norm = store_flags_normalize(flags, &err)) == NULL)
		return -1;
	p = store_imap_op_new(op_flags, cb, ctx);
	p->mailbox_id = mailbox_id;
	p->uids = uids_dup(uids, count);
	p->count = count;
	p->mode = mode;
	p->flags = norm;
	p->unchangedsince = unchangedsince;
	return store_imap_op_submit(store, base, p);
}

/* ------------------------------------------------------------ COPY, MOVE */

static int op_copy(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;
	struct store_conn *c = &store->wconn;
	struct store_row *rows = NULL;
	size_t n = 0;
	int64_t src_user, dst_user, dst_highest, src_modseq, modseq = 0, bytes = 0;
	uint32_t first;
	int rc;

	store_imap_op_reset(p);
	rc = store_wmailbox_get(store, p->mailbox_id, &src_user, NULL, NULL, error_r);
	if (rc == 0)
		return store_imap_fail(p, "NONEXISTENT", error_r, "source mailbox does not exist");
	if (rc < 0)
		return -1;
	rc = store_wmailbox_get(store, p->dst_mailbox_id, &dst_user, &p->uidvalidity,
				&dst_highest, error_r);
	if (rc == 0 || (rc > 0 && dst_user != src_user))
		return store_imap_fail(p, "NONEXISTENT", error_r,
				       "destination mailbox does not exist");
	if (rc < 0 || store_rows_load(store, p->mailbox_id, p->uids, p->count, &rows, &n,
				      error_r) < 0)
		return -1;
	p->modseq = (uint64_t)dst_highest;
	rc = 0;
	if (n == 0)
		goto done;      /* nothing left to copy: no change, no new modseq */
	p->src_uids = xmalloc(n * sizeof(*p->src_uids));
	p->dst_uids = xmalloc(n * sizeof(*p->dst_uids));
	for (size_t i = 0; i < n; i++) {
		p->src_uids[i] = rows[i].uid;
		bytes += rows[i].size;
	}
	p->result_count = n;

	if (p->move) {
		/* RFC 6851 3.3: the sources are expunged in the same transaction */
		rc = store_mailbox_bump(store, p->mailbox_id, NULL, NULL, &src_modseq, error_r);
		if (rc > 0)
			rc = store_rows_remove(store, op, src_user, p->mailbox_id, src_modseq,
					       rows, n, p->dst_mailbox_id, p->dst_uids, &modseq,
					       error_r);
		else
			rc = -1;
		/* the selected (source) mailbox's new HIGHESTMODSEQ */
		p->modseq = (uint64_t)src_modseq;
	} else {
		if ((rc = over_quota(store, src_user, bytes, (int64_t)n, error_r)) != 0) {
			if (rc > 0)
				store_imap_fail(p, "OVERQUOTA", error_r, "quota exceeded");
			rc = -1;
			goto done;
		}
		rc = store_mailbox_alloc(store, p->dst_mailbox_id, n, bytes, &first, &modseq,
					 NULL, error_r);
		for (size_t i = 0; rc == 0 && i < n; i++) {
			sqlite3_stmt *st = store_wstmt(c, SQL_MSG_COPY, error_r);
			if (st == NULL) {
				rc = -1;
				break;
			}
			p->dst_uids[i] = first + (uint32_t)i;
			sqlite3_bind_int64(st, 1, p->dst_mailbox_id);
			sqlite3_bind_int64(st, 2, p->dst_uids[i]);
			sqlite3_bind_int64(st, 3, modseq);
			sqlite3_bind_int64(st, 4, rows[i].id);
			sqlite3_bind_int64(st, 5, (sqlite3_int64)clock_now());
			rc = store_step_done(c, st, error_r);
			/* the copy keeps the summary, EMAILID and THREADID */
			if (rc == 0)
				rc = store_summary_copy(store, sqlite3_last_insert_rowid(c->db),
							rows[i].id, error_r);
		}
		if (rc == 0)
			rc = usage_add(store, src_user, bytes, (int64_t)n, error_r);
		if (rc == 0)
			store_op_add_event(op, src_user, p->dst_mailbox_id, NOTIFY_MESSAGE_NEW,
					   (uint64_t)modseq);
		p->modseq = (uint64_t)modseq;
	}
	/* keywords travel with the messages */
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = store_keywords_add(store, p->dst_mailbox_id, rows[i].flags, error_r);
done:
	store_rows_free(rows, n);
	return rc;
}

int store_copy(struct store *store, struct event_base *base, int64_t src_mailbox_id,
	       const uint32_t *uids, size_t count, int64_t dst_mailbox_id, bool move,
	       store_write_cb *cb, void *ctx)
{
	struct store_imap_op *p;

	if ((uids == NULL && count > 0) || cb == NULL)
		return -1;
	p = store_imap_op_new(op_copy, cb, ctx);
	p->mailbox_id = src_mailbox_id;
	p->dst_mailbox_id = dst_mailbox_id;
	p->uids = uids_dup(uids, count);
	p->count = count;
	p->move = move;
	return store_imap_op_submit(store, base, p);
}

/* --------------------------------------------------------------- EXPUNGE */

static int op_expunge(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;
	struct store_row *rows = NULL;
	size_t n = 0;
	int64_t user_id, highest, modseq;
	int rc;

	store_imap_op_reset(p);
	rc = store_wmailbox_get(store, p->mailbox_id, &user_id, NULL, &highest, error_r);
	if (rc == 0)
		return store_imap_fail(p, "NONEXISTENT", error_r, "mailbox does not exist");
	if (rc < 0 || store_rows_load(store, p->mailbox_id, p->uids, p->count, &rows, &n,
				      error_r) < 0)
		return -1;
	p->modseq = (uint64_t)highest;
	rc = 0;
	if (n > 0) {
		rc = store_mailbox_bump(store, p->mailbox_id, NULL, NULL, &modseq, error_r);
		rc = rc > 0 ? store_rows_remove(store, op, user_id, p->mailbox_id, modseq, rows, n,
						0, NULL, NULL, error_r) : -1;
		p->modseq = (uint64_t)modseq;
		p->src_uids = xmalloc(n * sizeof(*p->src_uids));
		for (size_t i = 0; i < n; i++)
			p->src_uids[i] = rows[i].uid;
		p->result_count = n;
	}
	store_rows_free(rows, n);
	return rc;
}

int store_expunge(struct store *store, struct event_base *base, int64_t mailbox_id,
		  const uint32_t *uids, size_t count, store_write_cb *cb, void *ctx)
{
	struct store_imap_op *p;

	if ((uids == NULL && count > 0) || cb == NULL)
		return -1;
	p = store_imap_op_new(op_expunge, cb, ctx);
	p->mailbox_id = mailbox_id;
	p->uids = uids_dup(uids, count);
	p->count = count;
	return store_imap_op_submit(store, base, p);
}

/* ----------------------------------------------------------------- reads */

int store_message_list_changed(struct store *store, int64_t mailbox_id, uint64_t since,
			       int (*cb)(void *ctx, const struct store_message *m), void *ctx,
			       const char **error_r)
{
	return store_message_select(store, SQL_MSG_CHANGED, mailbox_id,
				    since > INT64_MAX ? INT64_MAX : (int64_t)since, cb, ctx,
				    "listing changed messages", error_r);
}

struct uid_cb {
	int (*cb)(void *ctx, uint32_t uid);
	void *ctx;
};

static int uid_row(sqlite3_stmt *st, void *arg)
{
	struct uid_cb *a = arg;

	return a->cb(a->ctx, (uint32_t)sqlite3_column_int64(st, 0));
}

int store_expunged_since(struct store *store, int64_t mailbox_id, uint64_t since,
			 int (*cb)(void *ctx, uint32_t uid), void *ctx, const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	struct uid_cb a = { cb, ctx };
	sqlite3_stmt *st;

	if (c == NULL || (st = store_stmt(c, SQL_EXPUNGED_SINCE, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, since > INT64_MAX ? INT64_MAX : (sqlite3_int64)since);
	return store_each_row(c, st, uid_row, &a, "listing expunged messages", error_r);
}

char *store_mailbox_keywords(struct store *store, int64_t mailbox_id, const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	sqlite3_stmt *st;
	struct buf b;
	int rc;

	if (c == NULL || (st = store_stmt(c, SQL_KEYWORDS, error_r)) == NULL)
		return NULL;
	buf_init(&b, BUF_UNLIMITED);
	sqlite3_bind_int64(st, 1, mailbox_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		if (k == NULL)
			continue;
		if (b.len > 0)
			buf_append(&b, " ", 1);
		buf_append_str(&b, k);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_sqlerr(c, "listing keywords");
		buf_free(&b);
		return NULL;
	}
	char *out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}
