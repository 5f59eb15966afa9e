/* The DKIM signing keys (dkim-keys.h, schema 6 table dkim_keys).
 *
 * Invariants:
 *  - (domain, selector) is unique (the table's UNIQUE constraint, NOCASE);
 *    domains and selectors are stored lowercased, and a key is only added
 *    for one of the store's domains.
 *  - Nothing reaches a row unchecked: names are DNS labels, the PEM holds
 *    no NUL or CR, the public key only base64 characters, each bounded.
 *  - Activation is one transaction: the key becomes active and the other
 *    active keys of its domain and algorithm become retiring, so a domain
 *    never signs with two keys of one algorithm after a rotation.
 *  - States only move forward (pending -> active -> retiring -> retired),
 *    except that an administrator may force any key that is not retired to
 *    active (store_dkim_key_activate).
 * RFC 6376 section 3.6.2.1 (selectors in DNS), section 3.1 (rotation). */
#include "store/dkim-keys.h"
#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <stdlib.h>
#include <string.h>

static const char SQL_LIST_ALL[] =
	"SELECT id, domain, selector, algorithm, private_key, public_key, state, created,"
	" coalesce(activated, 0), coalesce(retire_at, 0) FROM dkim_keys ORDER BY domain, id";
static const char SQL_LIST_DOMAIN[] =
	"SELECT id, domain, selector, algorithm, private_key, public_key, state, created,"
	" coalesce(activated, 0), coalesce(retire_at, 0) FROM dkim_keys WHERE domain = ?1"
	" ORDER BY domain, id";
static const char SQL_GET[] =
	"SELECT id, domain, selector, algorithm, private_key, public_key, state, created,"
	" coalesce(activated, 0), coalesce(retire_at, 0) FROM dkim_keys"
	" WHERE domain = ?1 AND selector = ?2";
static const char SQL_STAMP[] =
	"SELECT coalesce(group_concat(id, ','), '') FROM"
	" (SELECT id FROM dkim_keys WHERE state = 1 ORDER BY id)";
static const char SQL_DOMAIN_EXISTS[] = "SELECT 1 FROM domains WHERE name = lower(?1)";
static const char SQL_SELECTOR_EXISTS[] =
	"SELECT 1 FROM dkim_keys WHERE domain = ?1 AND selector = ?2";
static const char SQL_ADD[] =
	"INSERT INTO dkim_keys (domain, selector, algorithm, private_key, public_key, state,"
	" created, activated) VALUES (lower(?1), lower(?2), ?3, ?4, ?5, ?6, ?7, ?8)";
static const char SQL_KEY_STATE[] = "SELECT domain, algorithm, state FROM dkim_keys WHERE id = ?1";
static const char SQL_RETIRE_OTHERS[] =
	"UPDATE dkim_keys SET state = 2, retire_at = ?4"
	" WHERE domain = ?1 AND algorithm = ?2 AND state = 1 AND id <> ?3";
static const char SQL_MAKE_ACTIVE[] =
	"UPDATE dkim_keys SET state = 1, activated = ?2 WHERE id = ?1 AND state <> 1";
static const char SQL_SET_STATE[] =
	"UPDATE dkim_keys SET state = ?2, retire_at = CASE WHEN ?3 > 0 THEN ?3 ELSE retire_at END"
	" WHERE id = ?1";
static const char SQL_RETIRE_DUE[] =
	"UPDATE dkim_keys SET state = 3 WHERE state = 2 AND retire_at IS NOT NULL AND retire_at <= ?1";

const char *store_dkim_state_name(int state)
{
	switch (state) {
	case STORE_DKIM_PENDING: return "pending";
	case STORE_DKIM_ACTIVE: return "active";
	case STORE_DKIM_RETIRING: return "retiring";
	case STORE_DKIM_RETIRED: return "retired";
	}
	return "unknown";
}

void store_dkim_key_clear(struct store_dkim_key *k)
{
	free(k->domain);
	free(k->selector);
	free(k->algorithm);
	if (k->private_key != NULL) {
		explicit_bzero(k->private_key, strlen(k->private_key));
		free(k->private_key);
	}
	free(k->public_key);
	memset(k, 0, sizeof(*k));
}

static void from_row(struct store *store, sqlite3_stmt *st, struct store_dkim_key *k)
{
	(void)store;
	k->id = sqlite3_column_int64(st, 0);
	k->domain = store_col_dup(st, 1);
	k->selector = store_col_dup(st, 2);
	k->algorithm = store_col_dup(st, 3);
	k->private_key = store_col_dup(st, 4);
	k->public_key = store_col_dup(st, 5);
	k->state = sqlite3_column_int(st, 6);
	k->created = (time_t)sqlite3_column_int64(st, 7);
	k->activated = (time_t)sqlite3_column_int64(st, 8);
	k->retire_at = (time_t)sqlite3_column_int64(st, 9);
}

STORE_LISTER(list_keys, struct store_dkim_key, from_row, store_dkim_key_clear)

int store_dkim_keys_list(struct store *s, const char *domain,
			 int (*cb)(void *ctx, const struct store_dkim_key *k), void *ctx,
			 const char **error_r)
{
	struct store_conn *c = store_rconn(s, error_r);
	sqlite3_stmt *st;

	if (c == NULL || (st = store_stmt(c, domain != NULL ? SQL_LIST_DOMAIN : SQL_LIST_ALL,
					  error_r)) == NULL)
		return -1;
	if (domain != NULL)
		sqlite3_bind_text(st, 1, domain, -1, SQLITE_TRANSIENT);
	return list_keys(s, c, st, cb, ctx, "DKIM keys", error_r);
}

struct get_arg {
	struct store *store;
	struct store_dkim_key *k;
};

static int get_row(sqlite3_stmt *st, void *arg)
{
	struct get_arg *a = arg;

	from_row(a->store, st, a->k);
	return 1;
}

int store_dkim_key_get(struct store *s, const char *domain, const char *selector,
		       struct store_dkim_key *k_r, const char **error_r)
{
	struct store_conn *c = store_rconn(s, error_r);
	struct get_arg a = { s, k_r };
	sqlite3_stmt *st;

	memset(k_r, 0, sizeof(*k_r));
	if (c == NULL || (st = store_stmt(c, SQL_GET, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, selector, -1, SQLITE_TRANSIENT);
	if (store_each_row(c, st, get_row, &a, "DKIM key", error_r) < 0) {
		store_dkim_key_clear(k_r);
		return -1;
	}
	return k_r->domain != NULL ? 1 : 0;
}

static int stamp_row(sqlite3_stmt *st, void *arg)
{
	*(char **)arg = store_col_dup(st, 0);
	return 1;
}

int store_dkim_keys_active_stamp(struct store *s, char **stamp_r, const char **error_r)
{
	struct store_conn *c = store_rconn(s, error_r);
	sqlite3_stmt *st;

	*stamp_r = NULL;
	if (c == NULL || (st = store_stmt(c, SQL_STAMP, error_r)) == NULL)
		return -1;
	if (store_each_row(c, st, stamp_row, stamp_r, "DKIM keys", error_r) < 0) {
		free(*stamp_r);
		*stamp_r = NULL;
		return -1;
	}
	if (*stamp_r == NULL)
		*stamp_r = xstrdup("");
	return 0;
}

/* ---- checks ---- */

/* One DNS label: letters, digits, '-', not at either end. */
static bool selector_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > STORE_DKIM_SELECTOR_MAX || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-'))
			return false;
	}
	return true;
}

static bool base64_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > STORE_DKIM_PUBLIC_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' || ch == '='))
			return false;
	}
	return true;
}

static bool pem_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	return n > 0 && n <= STORE_DKIM_PEM_MAX && strchr(s, '\r') == NULL &&
	       strncmp(s, "-----BEGIN ", 11) == 0;
}

static bool algorithm_ok(const char *a)
{
	return a != NULL && (strcmp(a, "rsa-sha256") == 0 || strcmp(a, "ed25519-sha256") == 0);
}

/* ---- add (synchronous) ---- */

struct add_op {
	struct store_op op;
	const struct store_dkim_key *k;
	int64_t id;
};

static int exists(struct store_conn *c, const char *sql, const char *a, const char *b,
		  char **error_r)
{
	sqlite3_stmt *st = store_wstmt(c, sql, error_r);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	if (b != NULL)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = store_sqlerr_dup(c, "DKIM key check");
		return -1;
	}
	return rc == SQLITE_ROW;
}

static int op_add(struct store *store, struct store_op *op, char **error_r)
{
	struct add_op *a = (struct add_op *)op;
	const struct store_dkim_key *k = a->k;
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	int rc;

	if ((rc = exists(c, SQL_DOMAIN_EXISTS, k->domain, NULL, error_r)) <= 0) {
		if (rc == 0)
			*error_r = xasprintf("%s is not a local domain", k->domain);
		return -1;
	}
	if ((rc = exists(c, SQL_SELECTOR_EXISTS, k->domain, k->selector, error_r)) != 0) {
		if (rc > 0)
			*error_r = xasprintf("%s already has a key with selector %s", k->domain,
					     k->selector);
		return -1;
	}
	if ((st = store_wstmt(c, SQL_ADD, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, k->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, k->selector, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, k->algorithm, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, k->private_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, k->public_key, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, k->state);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)k->created);
	if (k->state == STORE_DKIM_ACTIVE)
		sqlite3_bind_int64(st, 8, (sqlite3_int64)k->created);
	else
		sqlite3_bind_null(st, 8);
	if (store_step_done(c, st, error_r) < 0)
		return -1;
	a->id = sqlite3_last_insert_rowid(c->db);
	return 0;
}

int store_dkim_key_add(struct store *s, const struct store_dkim_key *k, int64_t *id_r,
		       const char **error_r)
{
	struct add_op a = { .op = { .fn = op_add }, .k = k };

	if (k->domain == NULL || !store_domain_name_ok(k->domain)) {
		*error_r = "invalid domain name";
		return -1;
	}
	if (!selector_ok(k->selector)) {
		*error_r = "invalid selector (one DNS label: letters, digits and '-')";
		return -1;
	}
	if (!algorithm_ok(k->algorithm)) {
		*error_r = "unknown DKIM algorithm";
		return -1;
	}
	if (!pem_ok(k->private_key) || !base64_ok(k->public_key)) {
		*error_r = "malformed or too large key";
		return -1;
	}
	if (k->state < STORE_DKIM_PENDING || k->state > STORE_DKIM_RETIRED) {
		*error_r = "invalid key state";
		return -1;
	}
	if (store_run_op(s, &a.op, error_r) < 0)
		return -1;
	if (id_r != NULL)
		*id_r = a.id;
	log_info("store", "event=dkim_key_added domain=%s selector=%s algorithm=%s state=%s",
		 log_quote(k->domain), log_quote(k->selector), k->algorithm,
		 store_dkim_state_name(k->state));
	return 0;
}

/* ---- activation ---- */

/* Commit thread: activate id (only when pending if pending_only); the
 * number of keys made retiring in *retired_r; 0 when it was not
 * activated (not pending), 1 when it was, <0 on error. */
static int activate(struct store *store, int64_t id, time_t now, time_t retire_at,
		    bool pending_only, int64_t *retired_r, char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, SQL_KEY_STATE, error_r);
	char *domain = NULL, *alg = NULL;
	int state = -1, rc;

	*retired_r = 0;
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		domain = store_col_dup(st, 0);
		alg = store_col_dup(st, 1);
		state = sqlite3_column_int(st, 2);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = store_sqlerr_dup(c, "DKIM key");
		return -1;
	}
	if (rc == SQLITE_DONE) {
		if (pending_only)
			return 0;
		*error_r = xstrdup("no such DKIM key");
		return -1;
	}
	rc = 1;
	if (state == STORE_DKIM_RETIRED && !pending_only) {
		*error_r = xstrdup("a retired key cannot be activated again");
		rc = -1;
	} else if ((pending_only && state != STORE_DKIM_PENDING) || state == STORE_DKIM_RETIRED) {
		rc = 0;
	} else if ((st = store_wstmt(c, SQL_RETIRE_OTHERS, error_r)) == NULL) {
		rc = -1;
	} else {
		sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, alg, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, id);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)retire_at);
		if (store_step_done(c, st, error_r) < 0) {
			rc = -1;
		} else {
			*retired_r = sqlite3_changes(c->db);
			if ((st = store_wstmt(c, SQL_MAKE_ACTIVE, error_r)) == NULL) {
				rc = -1;
			} else {
				sqlite3_bind_int64(st, 1, id);
				sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
				if (store_step_done(c, st, error_r) < 0)
					rc = -1;
			}
		}
	}
	if (rc == 1)
		log_info("store", "event=dkim_key_activated domain=%s id=%lld retiring=%lld",
			 log_quote(domain), (long long)id, (long long)*retired_r);
	free(domain);
	free(alg);
	return rc;
}

struct activate_op {
	struct store_op op;     /* i1 = id */
	time_t now, retire_at;
	int64_t retired;
};

static int op_activate(struct store *store, struct store_op *op, char **error_r)
{
	struct activate_op *a = (struct activate_op *)op;

	return activate(store, op->i1, a->now, a->retire_at, false, &a->retired, error_r) < 0
		? -1 : 0;
}

int store_dkim_key_activate(struct store *s, int64_t id, time_t now, time_t retire_at,
			    const char **error_r)
{
	struct activate_op a = { .op = { .fn = op_activate, .i1 = id }, .now = now,
				 .retire_at = retire_at };

	if (store_run_op(s, &a.op, error_r) < 0)
		return -1;
	return (int)a.retired;
}

/* async: user_id = id, internal_date = now, unchangedsince = retire_at */
static int op_activate_async(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;
	int64_t retired;
	int rc;

	store_imap_op_reset(p);
	rc = activate(store, p->user_id, p->internal_date, (time_t)p->unchangedsince, true,
		      &retired, error_r);
	if (rc < 0)
		return -1;
	p->result_count = (size_t)rc;
	return 0;
}

int store_dkim_key_activate_async(struct store *s, struct event_base *base, int64_t id,
				  time_t now, time_t retire_at, store_write_cb *cb, void *ctx)
{
	struct store_imap_op *op;

	if (cb == NULL || id <= 0)
		return -1;
	op = store_imap_op_new(op_activate_async, cb, ctx);
	op->user_id = id;
	op->internal_date = now;
	op->unchangedsince = (uint64_t)retire_at;
	return store_imap_op_submit(s, base, op);
}

/* ---- state changes ---- */

struct state_op {
	struct store_op op;     /* i1 = id */
	int state;
	time_t retire_at;
	int64_t count;
};

static int op_set_state(struct store *store, struct store_op *op, char **error_r)
{
	struct state_op *a = (struct state_op *)op;
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, SQL_SET_STATE, error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, op->i1);
	sqlite3_bind_int(st, 2, a->state);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)a->retire_at);
	if (store_step_done(c, st, error_r) < 0)
		return -1;
	if (sqlite3_changes(c->db) == 0) {
		*error_r = xstrdup("no such DKIM key");
		return -1;
	}
	return 0;
}

int store_dkim_key_set_state(struct store *s, int64_t id, int state, time_t retire_at,
			     const char **error_r)
{
	struct state_op a = { .op = { .fn = op_set_state, .i1 = id }, .state = state,
			      .retire_at = retire_at };

	if (state < STORE_DKIM_PENDING || state > STORE_DKIM_RETIRED) {
		*error_r = "invalid key state";
		return -1;
	}
	return store_run_op(s, &a.op, error_r);
}

static int retire_due(struct store *store, time_t now, int64_t *n_r, char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, SQL_RETIRE_DUE, error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	if (store_step_done(c, st, error_r) < 0)
		return -1;
	*n_r = sqlite3_changes(c->db);
	if (*n_r > 0)
		log_info("store", "event=dkim_keys_retired count=%lld", (long long)*n_r);
	return 0;
}

static int op_retire_due(struct store *store, struct store_op *op, char **error_r)
{
	struct state_op *a = (struct state_op *)op;

	return retire_due(store, a->retire_at, &a->count, error_r);
}

int store_dkim_keys_retire_due(struct store *s, time_t now, const char **error_r)
{
	struct state_op a = { .op = { .fn = op_retire_due }, .retire_at = now };

	if (store_run_op(s, &a.op, error_r) < 0)
		return -1;
	return (int)a.count;
}

static int op_retire_due_async(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;
	int64_t n;

	store_imap_op_reset(p);
	if (retire_due(store, p->internal_date, &n, error_r) < 0)
		return -1;
	p->result_count = (size_t)n;
	return 0;
}

int store_dkim_keys_retire_due_async(struct store *s, struct event_base *base, time_t now,
				     store_write_cb *cb, void *ctx)
{
	struct store_imap_op *op;

	if (cb == NULL)
		return -1;
	op = store_imap_op_new(op_retire_due_async, cb, ctx);
	op->internal_date = now;
	return store_imap_op_submit(s, base, op);
}
