/* TLS results for TLS reports (store/tlsrpt.h, RFC 8460): the tls_results
 * table of schema 6.
 *
 * Invariants:
 *  - Every write runs on the commit thread (store_op_submit or
 *    store_run_op); reads use the calling thread's read connection.
 *  - A count is reported at most once: store_tlsrpt_mark only marks a row
 *    whose count is still the one listed, and otherwise keeps the rest
 *    unreported; an upsert into a reported row starts it again from the
 *    new count.
 *  - No text with CR, LF or NUL, or longer than STORE_TLSRPT_TEXT_MAX,
 *    is stored (the fields come from DNS and from peers). */
#include "store/tlsrpt.h"

#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <stdlib.h>
#include <string.h>

struct tlsrpt_op {
	struct store_op op;             /* first: the commit thread hands us &op */
	struct store_tls_result *rows;  /* owned copies */
	size_t count;
	int64_t before_day;
	int64_t deleted;
};

static bool text_ok(const char *s)
{
	return s != NULL && strlen(s) <= STORE_TLSRPT_TEXT_MAX && strpbrk(s, "\r\n") == NULL;
}

/* The policy column holds the policy strings one per line: LF allowed
 * there, never CR. */
static bool row_ok(const struct store_tls_result *r)
{
	if (r->policy == NULL || strlen(r->policy) > STORE_TLSRPT_TEXT_MAX ||
	    strchr(r->policy, '\r') != NULL)
		return false;
	return text_ok(r->policy_domain) && r->policy_domain[0] != '\0' &&
	       text_ok(r->policy_type) && text_ok(r->mx_host) && text_ok(r->receiving_ip) &&
	       text_ok(r->result_type) && text_ok(r->detail) && r->count >= 0 && r->day >= 0;
}

static void rows_free(struct store_tls_result *rows, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free((char *)rows[i].policy_domain);
		free((char *)rows[i].policy_type);
		free((char *)rows[i].policy);
		free((char *)rows[i].mx_host);
		free((char *)rows[i].receiving_ip);
		free((char *)rows[i].result_type);
		free((char *)rows[i].detail);
	}
	free(rows);
}

/* Owned copies of rows, or NULL when one is not acceptable. */
static struct store_tls_result *rows_copy(const struct store_tls_result *rows, size_t count)
{
	struct store_tls_result *v;

	for (size_t i = 0; i < count; i++)
		if (!row_ok(&rows[i]))
			return NULL;
	v = xcalloc(count ? count : 1, sizeof(*v));
	for (size_t i = 0; i < count; i++) {
		v[i] = rows[i];
		v[i].policy_domain = store_lower(rows[i].policy_domain);
		v[i].policy_type = xstrdup(rows[i].policy_type);
		v[i].policy = xstrdup(rows[i].policy);
		v[i].mx_host = store_lower(rows[i].mx_host);
		v[i].receiving_ip = xstrdup(rows[i].receiving_ip);
		v[i].result_type = xstrdup(rows[i].result_type);
		v[i].detail = xstrdup(rows[i].detail);
	}
	return v;
}

static void tlsrpt_op_free(struct store_op *op)
{
	struct tlsrpt_op *t = (struct tlsrpt_op *)op;

	rows_free(t->rows, t->count);
	free(t);
}

/* ---- adding ---- */

static const char SQL_ADD[] =
	"INSERT INTO tls_results (day, policy_domain, policy_type, policy, mx_host,"
	" receiving_ip, result_type, detail, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
	" ON CONFLICT DO UPDATE SET"
	"  count = CASE WHEN reported THEN excluded.count ELSE count + excluded.count END,"
	"  reported = 0, policy = excluded.policy,"
	"  detail = CASE WHEN excluded.detail <> '' THEN excluded.detail ELSE detail END";

static int op_add(struct store *store, struct store_op *op, char **error_r)
{
	struct tlsrpt_op *t = (struct tlsrpt_op *)op;
	struct store_conn *c = &store->wconn;

	for (size_t i = 0; i < t->count; i++) {
		const struct store_tls_result *r = &t->rows[i];
		sqlite3_stmt *st;

		if (r->count == 0)
			continue;
		if ((st = store_wstmt(c, SQL_ADD, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, r->day);
		sqlite3_bind_text(st, 2, r->policy_domain, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r->policy_type, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, r->policy, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, r->mx_host, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, r->receiving_ip, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, r->result_type, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 8, r->detail, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 9, r->count);
		if (store_step_all(c, st, "recording TLS results", error_r) < 0)
			return -1;
	}
	return 0;
}

int store_tlsrpt_add(struct store *store, struct event_base *base,
		     const struct store_tls_result *rows, size_t count, store_done_cb *cb,
		     void *ctx)
{
	struct tlsrpt_op *t;
	struct store_tls_result *v = rows_copy(rows, count);

	if (v == NULL)
		return -1;
	t = xcalloc(1, sizeof(*t));
	t->op.fn = op_add;
	t->rows = v;
	t->count = count;
	if (store_op_submit(store, &t->op, tlsrpt_op_free, base, cb, ctx) < 0) {
		tlsrpt_op_free(&t->op);
		return -1;
	}
	return 0;
}

int store_tlsrpt_add_sync(struct store *store, const struct store_tls_result *rows,
			  size_t count, const char **error_r)
{
	struct tlsrpt_op t = { .op.fn = op_add };
	int rc;

	if ((t.rows = rows_copy(rows, count)) == NULL) {
		*error_r = "a TLS result field is too long or holds a line break";
		return -1;
	}
	t.count = count;
	rc = store_run_op(store, &t.op, error_r);
	rows_free(t.rows, t.count);
	return rc;
}

/* ---- listing ---- */

static const char SQL_LIST[] =
	"SELECT day, policy_domain, policy_type, policy, mx_host, receiving_ip, result_type,"
	" detail, count, reported FROM tls_results"
	" WHERE (?1 IS NULL OR policy_domain = ?1) AND (?2 = 0 OR reported = 0)"
	" AND (?3 < 0 OR day <= ?3)"
	" ORDER BY policy_domain, day, policy_type, policy, mx_host, receiving_ip, result_type";

struct list_arg {
	int (*cb)(void *ctx, const struct store_tls_result *r);
	void *ctx;
};

static const char *col(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return s != NULL ? s : "";
}

static int list_row(sqlite3_stmt *st, void *arg)
{
	struct list_arg *a = arg;
	struct store_tls_result r = {
		.day = sqlite3_column_int64(st, 0),
		.policy_domain = col(st, 1),
		.policy_type = col(st, 2),
		.policy = col(st, 3),
		.mx_host = col(st, 4),
		.receiving_ip = col(st, 5),
		.result_type = col(st, 6),
		.detail = col(st, 7),
		.count = sqlite3_column_int64(st, 8),
		.reported = sqlite3_column_int(st, 9) != 0,
	};

	return a->cb(a->ctx, &r);
}

int store_tlsrpt_list(struct store *store, const struct store_tlsrpt_filter *f,
		      int (*cb)(void *ctx, const struct store_tls_result *r), void *ctx,
		      const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	struct list_arg a = { cb, ctx };
	sqlite3_stmt *st;

	if (c == NULL || (st = store_stmt(c, SQL_LIST, error_r)) == NULL)
		return -1;
	store_bind_text(st, 1, f->domain);
	sqlite3_bind_int(st, 2, f->unreported_only);
	sqlite3_bind_int64(st, 3, f->max_day);
	return store_each_row(c, st, list_row, &a, "TLS results listing", error_r);
}

/* ---- marking and pruning ---- */

static const char SQL_MARK[] =
	"UPDATE tls_results SET"
	"  reported = CASE WHEN count = ?7 THEN 1 ELSE 0 END,"
	"  count = CASE WHEN count = ?7 THEN count ELSE count - ?7 END"
	" WHERE day = ?1 AND policy_domain = ?2 AND policy_type = ?3 AND mx_host = ?4"
	" AND receiving_ip = ?5 AND result_type = ?6 AND reported = 0 AND count >= ?7";

static int op_mark(struct store *store, struct store_op *op, char **error_r)
{
	struct tlsrpt_op *t = (struct tlsrpt_op *)op;
	struct store_conn *c = &store->wconn;

	for (size_t i = 0; i < t->count; i++) {
		const struct store_tls_result *r = &t->rows[i];
		sqlite3_stmt *st = store_wstmt(c, SQL_MARK, error_r);

		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, r->day);
		sqlite3_bind_text(st, 2, r->policy_domain, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r->policy_type, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, r->mx_host, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, r->receiving_ip, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, r->result_type, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, r->count);
		if (store_step_all(c, st, "marking TLS results", error_r) < 0)
			return -1;
	}
	return 0;
}

int store_tlsrpt_mark(struct store *store, const struct store_tls_result *rows, size_t count,
		      const char **error_r)
{
	struct tlsrpt_op t = { .op.fn = op_mark };
	int rc;

	if ((t.rows = rows_copy(rows, count)) == NULL) {
		*error_r = "a TLS result field is too long or holds a line break";
		return -1;
	}
	t.count = count;
	rc = store_run_op(store, &t.op, error_r);
	rows_free(t.rows, t.count);
	return rc;
}

static int op_prune(struct store *store, struct store_op *op, char **error_r)
{
	struct tlsrpt_op *t = (struct tlsrpt_op *)op;
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, "DELETE FROM tls_results WHERE day < ?1", error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, t->before_day);
	if (store_step_all(c, st, "pruning TLS results", error_r) < 0)
		return -1;
	t->deleted = sqlite3_changes(c->db);
	return 0;
}

int store_tlsrpt_prune(struct store *store, int64_t before_day, int64_t *deleted_r,
		       const char **error_r)
{
	struct tlsrpt_op t = { .op.fn = op_prune, .before_day = before_day };
	int rc = store_run_op(store, &t.op, error_r);

	if (rc == 0 && deleted_r != NULL)
		*deleted_r = t.deleted;
	if (rc == 0 && t.deleted > 0)
		log_info("store", "event=tlsrpt_pruned rows=%lld", (long long)t.deleted);
	return rc;
}
