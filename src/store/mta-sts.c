/* The MTA-STS policy cache (mta-sts.h, schema 6 table mta_sts_policies).
 *
 * Invariants:
 *  - At most one row per domain (PRIMARY KEY, NOCASE); a put replaces it.
 *  - Nothing a remote party sent reaches a row unchecked: domain and id
 *    carry no CR, LF or NUL and are bounded, the policy text carries no
 *    CR or NUL and at most STORE_MTA_STS_POLICY_MAX bytes.
 *  - A get never returns an expired policy (RFC 8461 5.1: a policy is
 *    used until max_age after it was fetched); expired rows are removed by
 *    every put and by prune.
 * RFC 8461 5.1 (policy caching). */
#include "store/mta-sts.h"
#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <stdlib.h>
#include <string.h>

static const char SQL_GET[] =
	"SELECT domain, policy_id, policy, fetched, expires FROM mta_sts_policies"
	" WHERE domain = ?1 AND expires > ?2";
static const char SQL_LIST[] =
	"SELECT domain, policy_id, policy, fetched, expires FROM mta_sts_policies"
	" ORDER BY domain";
static const char SQL_PUT[] =
	"INSERT INTO mta_sts_policies (domain, policy_id, policy, fetched, expires)"
	" VALUES (lower(?1), ?2, ?3, ?4, ?5) ON CONFLICT(domain) DO UPDATE SET"
	" domain = excluded.domain, policy_id = excluded.policy_id,"
	" policy = excluded.policy, fetched = excluded.fetched, expires = excluded.expires";
static const char SQL_PRUNE[] = "DELETE FROM mta_sts_policies WHERE expires <= ?1";
static const char SQL_DELETE[] = "DELETE FROM mta_sts_policies WHERE domain = ?1";

void store_mta_sts_clear(struct store_mta_sts *p)
{
	free((char *)p->domain);
	free((char *)p->policy_id);
	free((char *)p->policy);
	memset(p, 0, sizeof(*p));
}

static void from_row(sqlite3_stmt *st, struct store_mta_sts *p)
{
	p->domain = store_col_dup(st, 0);
	p->policy_id = store_col_dup(st, 1);
	p->policy = store_col_dup(st, 2);
	p->fetched = (time_t)sqlite3_column_int64(st, 3);
	p->expires = (time_t)sqlite3_column_int64(st, 4);
}

static int get_row(sqlite3_stmt *st, void *arg)
{
	from_row(st, arg);
	return 1;
}

int store_mta_sts_get(struct store *store, const char *domain, time_t now,
		      struct store_mta_sts *p_r, const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	sqlite3_stmt *st;

	memset(p_r, 0, sizeof(*p_r));
	if (c == NULL || (st = store_stmt(c, SQL_GET, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	if (store_each_row(c, st, get_row, p_r, "MTA-STS policy", error_r) < 0) {
		store_mta_sts_clear(p_r);
		return -1;
	}
	return p_r->domain != NULL ? 1 : 0;
}

struct list_arg {
	int (*cb)(void *ctx, const struct store_mta_sts *p);
	void *ctx;
};

static int list_row(sqlite3_stmt *st, void *arg)
{
	struct list_arg *a = arg;
	struct store_mta_sts p = { 0 };
	int stop;

	from_row(st, &p);
	stop = a->cb(a->ctx, &p);
	store_mta_sts_clear(&p);
	return stop;
}

int store_mta_sts_list(struct store *store,
		       int (*cb)(void *ctx, const struct store_mta_sts *p), void *ctx,
		       const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	struct list_arg a = { cb, ctx };
	sqlite3_stmt *st;

	if (c == NULL || (st = store_stmt(c, SQL_LIST, error_r)) == NULL)
		return -1;
	return store_each_row(c, st, list_row, &a, "MTA-STS policies", error_r);
}

/* Remove the rows expired at now (commit thread); their count in *n_r. */
static int prune(struct store *store, time_t now, size_t *n_r, char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, SQL_PRUNE, error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	if (store_step_done(c, st, error_r) < 0)
		return -1;
	*n_r = (size_t)sqlite3_changes(c->db);
	return 0;
}

/* put: name = domain, name2 = id, value = policy; internal_date = fetched,
 * unchangedsince = expires */
static int op_put(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;

	store_imap_op_reset(p);
	if (prune(store, p->internal_date, &p->result_count, error_r) < 0)
		return -1;
	if ((st = store_wstmt(c, SQL_PUT, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, p->name2, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, p->value, (int)p->value_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)p->internal_date);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)p->unchangedsince);
	return store_step_done(c, st, error_r);
}

static int op_prune(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;

	store_imap_op_reset(p);
	return prune(store, p->internal_date, &p->result_count, error_r);
}

/* A domain or id: 1..max bytes, printable ASCII, no space. */
static bool token_ok(const char *s, size_t max)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

int store_mta_sts_put(struct store *store, struct event_base *base,
		      const struct store_mta_sts *p, store_write_cb *cb, void *ctx)
{
	struct store_imap_op *op;
	size_t len;

	if (cb == NULL || p == NULL || !token_ok(p->domain, 253) ||
	    !token_ok(p->policy_id, STORE_MTA_STS_ID_MAX) || p->policy == NULL ||
	    p->expires <= p->fetched)
		return -1;
	len = strlen(p->policy);
	if (len > STORE_MTA_STS_POLICY_MAX || strchr(p->policy, '\r') != NULL)
		return -1;
	op = store_imap_op_new(op_put, cb, ctx);
	op->name = xstrdup(p->domain);
	op->name2 = xstrdup(p->policy_id);
	op->value = xstrdup(p->policy);
	op->value_len = len;
	op->internal_date = p->fetched;
	op->unchangedsince = (uint64_t)p->expires;
	return store_imap_op_submit(store, base, op);
}

int store_mta_sts_prune(struct store *store, struct event_base *base, time_t now,
			store_write_cb *cb, void *ctx)
{
	struct store_imap_op *op;

	if (cb == NULL)
		return -1;
	op = store_imap_op_new(op_prune, cb, ctx);
	op->internal_date = now;
	return store_imap_op_submit(store, base, op);
}

static int op_delete(struct store *store, struct store_op *op, char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, SQL_DELETE, error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, op->s1, -1, SQLITE_STATIC);
	if (store_step_done(c, st, error_r) < 0)
		return -1;
	op->i1 = sqlite3_changes(c->db);
	return 0;
}

int store_mta_sts_delete(struct store *store, const char *domain, const char **error_r)
{
	struct store_op op = { .fn = op_delete, .s1 = domain };

	if (!token_ok(domain, 253)) {
		*error_r = "invalid domain name";
		return -1;
	}
	if (store_run_op(store, &op, error_r) < 0)
		return -1;
	if (op.i1 > 0)
		log_info("store", "event=mta_sts_forgotten domain=%s", log_quote(domain));
	return op.i1 > 0 ? 1 : 0;
}
