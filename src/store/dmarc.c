/* DMARC aggregate report data (store/dmarc.h, RFC 7489 7.2): the tables
 * dmarc_results, dmarc_reports and dmarc_report_rows of schema 7.
 *
 * Invariants:
 *  - Every write runs on the commit thread (store_op_submit or
 *    store_run_op); reads use the calling thread's read connection.
 *  - No text with CR, LF or NUL, or longer than STORE_DMARC_TEXT_MAX, is
 *    stored: the fields come from DNS, from SMTP peers and from reports
 *    other people send.
 *  - A result is reported at most once: store_dmarc_mark marks exactly
 *    the rows the sender listed (id and day bounds), rows added later stay
 *    unreported. */
#include "store/dmarc.h"

#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <stdlib.h>
#include <string.h>

static bool text_ok(const char *s)
{
	return s != NULL && strlen(s) <= STORE_DMARC_TEXT_MAX && strpbrk(s, "\r\n") == NULL;
}

/* ---- our evaluations ---- */

struct dmarc_op {
	struct store_op op;         /* first: the commit thread hands us &op */
	struct store_dmarc_result r;  /* owned strings */
	const char *domain;
	int64_t max_id, max_day, before_day;
	const struct store_dmarc_report *rep;
	int stored;
};

#define RESULT_TEXTS(X) X(policy_domain) X(from_domain) X(source_ip) X(envelope_from) \
	X(spf_domain) X(spf_result) X(dkim) X(disposition) X(policy) X(rua)

static bool result_ok(const struct store_dmarc_result *r)
{
#define OK(f) if (!text_ok(r->f)) return false;
	RESULT_TEXTS(OK)
#undef OK
	return r->policy_domain[0] != '\0' && r->day >= 0;
}

static void result_copy(struct store_dmarc_result *dst, const struct store_dmarc_result *src)
{
	*dst = *src;
#define CP(f) dst->f = xstrdup(src->f);
	RESULT_TEXTS(CP)
#undef CP
	free((char *)dst->policy_domain);
	dst->policy_domain = store_lower(src->policy_domain);
}

static void result_free(struct store_dmarc_result *r)
{
#define FR(f) free((char *)r->f);
	RESULT_TEXTS(FR)
#undef FR
}

static void dmarc_op_free(struct store_op *op)
{
	struct dmarc_op *t = (struct dmarc_op *)op;

	result_free(&t->r);
	free(t);
}

static const char SQL_ADD[] =
	"INSERT INTO dmarc_results (day, policy_domain, from_domain, source_ip, envelope_from,"
	" spf_domain, spf_result, dkim, spf_aligned, dkim_aligned, disposition, policy, rua)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

static int op_add(struct store *store, struct store_op *op, char **error_r)
{
	struct dmarc_op *t = (struct dmarc_op *)op;
	struct store_conn *c = &store->wconn;
	const struct store_dmarc_result *r = &t->r;
	sqlite3_stmt *st = store_wstmt(c, SQL_ADD, error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, r->day);
	sqlite3_bind_text(st, 2, r->policy_domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->from_domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->source_ip, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->envelope_from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, r->spf_domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, r->spf_result, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, r->dkim, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 9, r->spf_aligned);
	sqlite3_bind_int(st, 10, r->dkim_aligned);
	sqlite3_bind_text(st, 11, r->disposition, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, r->policy, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 13, r->rua, -1, SQLITE_STATIC);
	return store_step_all(c, st, "recording a DMARC result", error_r);
}

int store_dmarc_add(struct store *store, struct event_base *base,
		    const struct store_dmarc_result *r, store_done_cb *cb, void *ctx)
{
	struct dmarc_op *t;

	if (!result_ok(r))
		return -1;
	t = xcalloc(1, sizeof(*t));
	t->op.fn = op_add;
	result_copy(&t->r, r);
	if (store_op_submit(store, &t->op, dmarc_op_free, base, cb, ctx) < 0) {
		dmarc_op_free(&t->op);
		return -1;
	}
	return 0;
}

int store_dmarc_add_sync(struct store *store, const struct store_dmarc_result *r,
			 const char **error_r)
{
	struct dmarc_op t = { .op.fn = op_add };
	int rc;

	if (!result_ok(r)) {
		*error_r = "a DMARC result field is too long or holds a line break";
		return -1;
	}
	result_copy(&t.r, r);
	rc = store_run_op(store, &t.op, error_r);
	result_free(&t.r);
	return rc;
}

static const char SQL_LIST[] =
	"SELECT id, day, policy_domain, from_domain, source_ip, envelope_from, spf_domain,"
	" spf_result, dkim, spf_aligned, dkim_aligned, disposition, policy, rua"
	" FROM dmarc_results WHERE reported = 0 AND day <= ?1 ORDER BY policy_domain, id";

struct list_arg {
	int (*cb)(void *ctx, const struct store_dmarc_result *r);
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
	struct store_dmarc_result r = {
		.id = sqlite3_column_int64(st, 0),
		.day = sqlite3_column_int64(st, 1),
		.policy_domain = col(st, 2),
		.from_domain = col(st, 3),
		.source_ip = col(st, 4),
		.envelope_from = col(st, 5),
		.spf_domain = col(st, 6),
		.spf_result = col(st, 7),
		.dkim = col(st, 8),
		.spf_aligned = sqlite3_column_int(st, 9) != 0,
		.dkim_aligned = sqlite3_column_int(st, 10) != 0,
		.disposition = col(st, 11),
		.policy = col(st, 12),
		.rua = col(st, 13),
	};

	return a->cb(a->ctx, &r);
}

int store_dmarc_list(struct store *store, int64_t max_day,
		     int (*cb)(void *ctx, const struct store_dmarc_result *r), void *ctx,
		     const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	struct list_arg a = { cb, ctx };
	sqlite3_stmt *st;

	if (c == NULL || (st = store_stmt(c, SQL_LIST, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, max_day);
	return store_each_row(c, st, list_row, &a, "DMARC results listing", error_r);
}

static int op_mark(struct store *store, struct store_op *op, char **error_r)
{
	struct dmarc_op *t = (struct dmarc_op *)op;
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, "UPDATE dmarc_results SET reported = 1"
				       " WHERE reported = 0 AND policy_domain = ?1 AND id <= ?2"
				       " AND day <= ?3", error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, t->domain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, t->max_id);
	sqlite3_bind_int64(st, 3, t->max_day);
	return store_step_all(c, st, "marking DMARC results", error_r);
}

int store_dmarc_mark(struct store *store, const char *domain, int64_t max_id, int64_t max_day,
		     const char **error_r)
{
	struct dmarc_op t = { .op.fn = op_mark, .domain = domain, .max_id = max_id,
			      .max_day = max_day };

	return store_run_op(store, &t.op, error_r);
}

static int op_prune(struct store *store, struct store_op *op, char **error_r)
{
	struct dmarc_op *t = (struct dmarc_op *)op;
	struct store_conn *c = &store->wconn;
	static const char *const sql[] = {
		"DELETE FROM dmarc_results WHERE day < ?1",
		("DELETE FROM dmarc_report_rows WHERE report IN"
		 " (SELECT id FROM dmarc_reports WHERE date_end < ?1 * 86400)"),
		"DELETE FROM dmarc_reports WHERE date_end < ?1 * 86400",
	};

	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		sqlite3_stmt *st = store_wstmt(c, sql[i], error_r);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, t->before_day);
		if (store_step_all(c, st, "pruning DMARC data", error_r) < 0)
			return -1;
	}
	return 0;
}

int store_dmarc_prune(struct store *store, int64_t before_day, const char **error_r)
{
	struct dmarc_op t = { .op.fn = op_prune, .before_day = before_day };

	return store_run_op(store, &t.op, error_r);
}

/* ---- reports received ---- */

static bool report_ok(const struct store_dmarc_report *r)
{
	if (!text_ok(r->org_name) || !text_ok(r->email) || !text_ok(r->report_id) ||
	    !text_ok(r->domain))
		return false;
	for (size_t i = 0; i < r->count; i++) {
		const struct store_dmarc_row *w = &r->rows[i];
		if (!text_ok(w->source_ip) || !text_ok(w->disposition) || !text_ok(w->eval_dkim) ||
		    !text_ok(w->eval_spf) || !text_ok(w->header_from) ||
		    !text_ok(w->dkim_result) || !text_ok(w->spf_result) || w->count < 0)
			return false;
	}
	return true;
}

static int op_import(struct store *store, struct store_op *op, char **error_r)
{
	struct dmarc_op *t = (struct dmarc_op *)op;
	const struct store_dmarc_report *r = t->rep;
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, "INSERT OR IGNORE INTO dmarc_reports (org_name, email,"
				       " report_id, domain, date_begin, date_end, received)"
				       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", error_r);
	int64_t id;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, r->org_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->email, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->report_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->domain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, r->date_begin);
	sqlite3_bind_int64(st, 6, r->date_end);
	sqlite3_bind_int64(st, 7, (int64_t)clock_now());
	if (store_step_all(c, st, "keeping a DMARC report", error_r) < 0)
		return -1;
	if (sqlite3_changes(c->db) == 0)
		return 0;   /* a copy we have already */
	id = sqlite3_last_insert_rowid(c->db);
	t->stored = 1;
	for (size_t i = 0; i < r->count; i++) {
		const struct store_dmarc_row *w = &r->rows[i];
		if ((st = store_wstmt(c, "INSERT INTO dmarc_report_rows (report, source_ip, count,"
				      " disposition, eval_dkim, eval_spf, header_from, dkim_result,"
				      " spf_result) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
				      error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, w->source_ip, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, w->count);
		sqlite3_bind_text(st, 4, w->disposition, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, w->eval_dkim, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, w->eval_spf, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, w->header_from, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 8, w->dkim_result, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 9, w->spf_result, -1, SQLITE_STATIC);
		if (store_step_all(c, st, "keeping a DMARC report row", error_r) < 0)
			return -1;
	}
	return 0;
}

int store_dmarc_import(struct store *store, const struct store_dmarc_report *rep,
		       const char **error_r)
{
	struct dmarc_op t = { .op.fn = op_import, .rep = rep };

	if (!report_ok(rep)) {
		*error_r = "a report field is too long or holds a line break";
		return -1;
	}
	if (store_run_op(store, &t.op, error_r) < 0)
		return -1;
	return t.stored;
}

static const char SQL_SUMMARY[] =
	"SELECT w.source_ip, group_concat(DISTINCT r.org_name), sum(w.count),"
	" sum(CASE WHEN w.spf_result = 'pass' THEN w.count ELSE 0 END),"
	" sum(CASE WHEN w.dkim_result = 'pass' THEN w.count ELSE 0 END),"
	" sum(CASE WHEN w.eval_dkim = 'pass' OR w.eval_spf = 'pass' THEN w.count ELSE 0 END)"
	" FROM dmarc_report_rows w JOIN dmarc_reports r ON r.id = w.report"
	" WHERE r.domain = ?1 AND r.date_end >= ?2"
	" GROUP BY w.source_ip ORDER BY 3 DESC, 1";

struct summary_arg {
	int (*cb)(void *ctx, const struct store_dmarc_summary *s);
	void *ctx;
};

static int summary_row(sqlite3_stmt *st, void *arg)
{
	struct summary_arg *a = arg;
	struct store_dmarc_summary s = {
		.source_ip = col(st, 0),
		.org_name = col(st, 1),
		.total = sqlite3_column_int64(st, 2),
		.spf_pass = sqlite3_column_int64(st, 3),
		.dkim_pass = sqlite3_column_int64(st, 4),
		.aligned_pass = sqlite3_column_int64(st, 5),
	};

	return a->cb(a->ctx, &s);
}

int store_dmarc_summary(struct store *store, const char *domain, int64_t since,
			int (*cb)(void *ctx, const struct store_dmarc_summary *s), void *ctx,
			const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	struct summary_arg a = { cb, ctx };
	sqlite3_stmt *st;

	if (c == NULL || (st = store_stmt(c, SQL_SUMMARY, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, since);
	return store_each_row(c, st, summary_row, &a, "DMARC report summary", error_r);
}
