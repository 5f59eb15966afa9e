/* The directory: domains, users and aliases; recipient resolution, sender
 * policy and quota checks.
 *
 * Writes are store_op functions run by the commit thread inside the batch
 * transaction (commit.c); reads use this thread's read-only connection.
 * Names are stored lowercased and every lookup lowercases its key, so local
 * parts match case-insensitively (as Postfix and Dovecot do; RFC 5321 2.4
 * lets the receiving host decide).  Resolution follows store.h: exact user,
 * exact alias (recursive, at most STORE_ALIAS_DEPTH levels, each address
 * expanded once, so loops end), subaddress base, catch-all "@domain". */
#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <stdlib.h>
#include <string.h>

static const char SQL_DOMAIN_GET[] =
	"SELECT id, name, sender_policy FROM domains WHERE name = ?1";
static const char SQL_DOMAIN_LIST[] =
	"SELECT id, name, sender_policy FROM domains ORDER BY name";
static const char SQL_DOMAIN_ADD[] =
	"INSERT INTO domains(name) VALUES (?1) ON CONFLICT(name) DO NOTHING";
static const char SQL_DOMAIN_POLICY[] =
	"UPDATE domains SET sender_policy = ?2 WHERE name = ?1";
static const char SQL_DOMAIN_USERS[] =
	"SELECT u.id FROM users u JOIN domains d ON u.domain_id = d.id WHERE d.name = ?1";
static const char SQL_DOMAIN_DEL_ALIASES[] =
	"DELETE FROM aliases WHERE alias LIKE '%@' || ?1 ESCAPE '\\'";
static const char SQL_DOMAIN_DEL[] =
	"DELETE FROM domains WHERE name = ?1";
static const char SQL_USER_COLS[] =
	"SELECT id, domain_id, address, password_hash, scram_sha256, quota_bytes, used_bytes,"
	" used_messages, quota_messages FROM users WHERE address = ?1";
static const char SQL_USER_BY_ID[] =
	"SELECT id, domain_id, address, password_hash, scram_sha256, quota_bytes, used_bytes,"
	" used_messages, quota_messages FROM users WHERE id = ?1";
static const char SQL_USER_LIST_ALL[] =
	"SELECT id, domain_id, address, password_hash, scram_sha256, quota_bytes, used_bytes,"
	" used_messages, quota_messages FROM users ORDER BY address";
static const char SQL_USER_LIST_DOMAIN[] =
	"SELECT u.id, u.domain_id, u.address, u.password_hash, u.scram_sha256, u.quota_bytes,"
	" u.used_bytes, u.used_messages, u.quota_messages FROM users u JOIN domains d ON u.domain_id = d.id"
	" WHERE d.name = ?1 ORDER BY u.address";
static const char SQL_USER_ADD[] =
	"INSERT INTO users(domain_id, address, password_hash, scram_sha256, quota_bytes, created)"
	" SELECT id, ?2, ?3, ?4, ?5, ?6 FROM domains WHERE name = ?1"
	" ON CONFLICT(address) DO NOTHING";
static const char SQL_USER_EXISTS_ADDR[] =
	"SELECT id FROM users WHERE address = ?1";
static const char SQL_USER_PASSWORD[] =
	"UPDATE users SET password_hash = ?2, scram_sha256 = ?3 WHERE address = ?1";
static const char SQL_USER_QUOTA[] =
	"UPDATE users SET quota_bytes = ?2 WHERE address = ?1";
static const char SQL_USER_QUOTA_MESSAGES[] =
	"UPDATE users SET quota_messages = ?2 WHERE address = ?1";
static const char SQL_USER_DEL[] =
	"DELETE FROM users WHERE id = ?1";
static const char SQL_ALIAS_ADD[] =
	"INSERT INTO aliases(alias, target) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
static const char SQL_ALIAS_DEL_ONE[] =
	"DELETE FROM aliases WHERE alias = ?1 AND target = ?2";
static const char SQL_ALIAS_DEL_ALL[] =
	"DELETE FROM aliases WHERE alias = ?1";
static const char SQL_ALIAS_LIST_ALL[] =
	"SELECT id, alias, target FROM aliases ORDER BY alias, target";
static const char SQL_ALIAS_LIST_ONE[] =
	"SELECT id, alias, target FROM aliases WHERE alias = ?1 ORDER BY target";
static const char SQL_ALIAS_TARGETS[] =
	"SELECT target FROM aliases WHERE alias = ?1 ORDER BY id";
static const char SQL_DOMAIN_EXISTS[] =
	"SELECT 1 FROM domains WHERE name = ?1";
static const char SQL_USER_DOMAIN_POLICY[] =
	"SELECT u.address, d.name, d.sender_policy FROM users u"
	" JOIN domains d ON u.domain_id = d.id WHERE u.id = ?1";

void store_domain_clear(struct store_domain *d)
{
	free(d->name);
	memset(d, 0, sizeof(*d));
}

void store_user_clear(struct store_user *u)
{
	free(u->address);
	free(u->password_hash);
	free(u->scram_sha256);
	memset(u, 0, sizeof(*u));
}

void store_alias_clear(struct store_alias *a)
{
	free(a->alias);
	free(a->target);
	memset(a, 0, sizeof(*a));
}

/* ------------------------------------------------------- writer helpers */

/* Step a writer statement to completion; returns the change count or -1. */
static int wstep(struct store *store, sqlite3_stmt *st, const char *what, char **error_r)
{
	if (store_step_all(&store->wconn, st, what, error_r) < 0)
		return -1;
	return sqlite3_changes(store->wconn.db);
}

static sqlite3_stmt *wstmt(struct store *store, const char *sql, char **error_r)
{
	return store_wstmt(&store->wconn, sql, error_r);
}

/* 1 when the statement with one text parameter yields a row, 0 if not. */
static int wexists(struct store *store, const char *sql, const char *arg, int64_t *id_r,
		   char **error_r)
{
	sqlite3_stmt *st = wstmt(store, sql, error_r);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && id_r != NULL)
		*id_r = sqlite3_column_int64(st, 0);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = store_sqlerr_dup(&store->wconn, "lookup");
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW;
}

/* ---------------------------------------------------------------- domains */

static int op_domain_add(struct store *store, struct store_op *op, char **error_r)
{
	sqlite3_stmt *st = wstmt(store, SQL_DOMAIN_ADD, error_r);
	int n;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, op->s1, -1, SQLITE_STATIC);
	if ((n = wstep(store, st, "adding domain", error_r)) < 0)
		return -1;
	if (n == 0) {
		*error_r = xasprintf("domain %s exists", op->s1);
		return -1;
	}
	return 0;
}

int store_domain_add(struct store *store, const char *name, const char **error_r)
{
	char *lname = store_lower(name);
	int rc;

	if (!store_domain_name_ok(lname)) {
		*error_r = store_errf("invalid domain name \"%s\"", lname);
		free(lname);
		return -1;
	}
	struct store_op op = { .fn = op_domain_add, .s1 = lname };
	rc = store_run_op(store, &op, error_r);
	if (rc == 0)
		log_info("store", "event=domain_added domain=%s", log_quote(lname));
	free(lname);
	return rc;
}

static int op_domain_remove(struct store *store, struct store_op *op, char **error_r)
{
	sqlite3_stmt *st;
	int64_t *ids = NULL;
	size_t n = 0;
	int rc;

	rc = wexists(store, SQL_DOMAIN_EXISTS, op->s1, NULL, error_r);
	if (rc <= 0) {
		if (rc == 0)
			*error_r = xasprintf("domain %s does not exist", op->s1);
		return -1;
	}
	if ((st = wstmt(store, SQL_DOMAIN_USERS, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, op->s1, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ids = xrealloc(ids, (n + 1) * sizeof(*ids));
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE) {
		*error_r = store_sqlerr_dup(&store->wconn, "listing users");
		sqlite3_reset(st);
		goto fail;
	}
	sqlite3_reset(st);
	if (n > 0 && !op->b1) {
		*error_r = xasprintf("domain %s has %zu user%s (remove them first or force)",
				     op->s1, n, n == 1 ? "" : "s");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		if (store_user_files(store, ids[i], op, error_r) < 0)
			goto fail;
		if ((st = wstmt(store, SQL_USER_DEL, error_r)) == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, ids[i]);
		if (wstep(store, st, "removing user", error_r) < 0)
			goto fail;
	}
	free(ids);
	ids = NULL;
	/* The domain's own aliases go with it ('_' and '%' in the name are
	 * literal characters for LIKE only when escaped). */
	struct buf esc;
	buf_init(&esc, BUF_UNLIMITED);
	for (const char *p = op->s1; *p; p++) {
		if (*p == '%' || *p == '_' || *p == '\\')
			buf_append(&esc, "\\", 1);
		buf_append(&esc, p, 1);
	}
	if ((st = wstmt(store, SQL_DOMAIN_DEL_ALIASES, error_r)) == NULL) {
		buf_free(&esc);
		return -1;
	}
	sqlite3_bind_text(st, 1, buf_cstr(&esc), -1, SQLITE_TRANSIENT);
	buf_free(&esc);
	if (wstep(store, st, "removing aliases", error_r) < 0)
		return -1;
	if ((st = wstmt(store, SQL_DOMAIN_DEL, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, op->s1, -1, SQLITE_STATIC);
	if (wstep(store, st, "removing domain", error_r) < 0)
		return -1;
	return 0;
fail:
	free(ids);
	return -1;
}

int store_domain_remove(struct store *store, const char *name, bool force, const char **error_r)
{
	char *lname = store_lower(name);
	struct store_op op = { .fn = op_domain_remove, .s1 = lname, .b1 = force };
	int rc = store_run_op(store, &op, error_r);

	if (rc == 0)
		log_info("store", "event=domain_removed domain=%s force=%d", log_quote(lname),
			 force);
	free(lname);
	return rc;
}

static int op_domain_policy(struct store *store, struct store_op *op, char **error_r)
{
	sqlite3_stmt *st = wstmt(store, SQL_DOMAIN_POLICY, error_r);
	int n;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, op->s1, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, op->i1);
	if ((n = wstep(store, st, "setting sender policy", error_r)) < 0)
		return -1;
	if (n == 0) {
		*error_r = xasprintf("domain %s does not exist", op->s1);
		return -1;
	}
	return 0;
}

int store_domain_set_sender_policy(struct store *store, const char *name,
				   enum store_sender_policy policy, const char **error_r)
{
	if (policy != STORE_SENDER_OWN && policy != STORE_SENDER_DOMAIN &&
	    policy != STORE_SENDER_ANY) {
		*error_r = "invalid sender policy";
		return -1;
	}
	char *lname = store_lower(name);
	struct store_op op = { .fn = op_domain_policy, .s1 = lname, .i1 = policy };
	int rc = store_run_op(store, &op, error_r);
	free(lname);
	return rc;
}

static void domain_from_row(struct store *store, sqlite3_stmt *st, struct store_domain *d)
{
	(void)store;
	d->id = sqlite3_column_int64(st, 0);
	d->name = store_col_dup(st, 1);
	d->sender_policy = (enum store_sender_policy)sqlite3_column_int(st, 2);
}

int store_domain_get(struct store *store, const char *name, struct store_domain *domain_r,
		     const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	sqlite3_stmt *st;
	char *lname;
	int rc;

	if (c == NULL || (st = store_stmt(c, SQL_DOMAIN_GET, error_r)) == NULL)
		return -1;
	lname = store_lower(name);
	sqlite3_bind_text(st, 1, lname, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		domain_from_row(store, st, domain_r);
	else if (rc != SQLITE_DONE)
		*error_r = store_sqlerr(c, "reading domain");
	sqlite3_reset(st);
	free(lname);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

STORE_LISTER(domain_rows, struct store_domain, domain_from_row, store_domain_clear)

int store_domain_list(struct store *store, int (*cb)(void *ctx, const struct store_domain *d),
		      void *ctx, const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	sqlite3_stmt *st;

	if (c == NULL || (st = store_stmt(c, SQL_DOMAIN_LIST, error_r)) == NULL)
		return -1;
	return domain_rows(store, c, st, cb, ctx, "listing domains", error_r);
}

/* ------------------------------------------------------------------ users */

/* 0 when domain exists, else -1 with *error_r. */
static int domain_exists(struct store *store, const char *domain, char **error_r)
{
	int rc = wexists(store, SQL_DOMAIN_EXISTS, domain, NULL, error_r);

	if (rc == 0)
		*error_r = xasprintf("domain %s does not exist", domain);
	return rc > 0 ? 0 : -1;
}

static int op_user_add(struct store *store, struct store_op *op, char **error_r)
{
	const char *domain = store_addr_domain(op->s1);
	sqlite3_stmt *st;
	int n;

	if (domain_exists(store, domain, error_r) < 0)
		return -1;
	if ((st = wstmt(store, SQL_USER_ADD, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, op->s1, -1, SQLITE_STATIC);
	store_bind_text(st, 3, op->s2);
	store_bind_text(st, 4, op->s3);
	sqlite3_bind_int64(st, 5, op->i1);
	sqlite3_bind_int64(st, 6, clock_now());
	if ((n = wstep(store, st, "adding user", error_r)) < 0)
		return -1;
	if (n == 0) {
		*error_r = xasprintf("user %s exists", op->s1);
		return -1;
	}
	return 0;
}

static bool secret_ok(const char *s)
{
	if (s == NULL)
		return true;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

int store_user_add(struct store *store, const char *address, const char *password_hash,
		   const char *scram_sha256, int64_t quota_bytes, const char **error_r)
{
	char *laddr = store_lower(address);
	int rc;

	if (!store_address_ok(laddr, false)) {
		*error_r = store_errf("invalid address \"%s\"", laddr);
		free(laddr);
		return -1;
	}
	if (quota_bytes < 0 || !secret_ok(password_hash) || !secret_ok(scram_sha256)) {
		*error_r = quota_bytes < 0 ? "quota must not be negative" :
			"password hash contains control characters";
		free(laddr);
		return -1;
	}
	struct store_op op = { .fn = op_user_add, .s1 = laddr, .s2 = password_hash,
			       .s3 = scram_sha256, .i1 = quota_bytes };
	rc = store_run_op(store, &op, error_r);
	if (rc == 0)
		log_info("store", "event=user_added user=%s", log_quote(laddr));
	free(laddr);
	return rc;
}

static int op_user_update(struct store *store, struct store_op *op, char **error_r)
{
	sqlite3_stmt *st;
	int n;

	if (op->b1) {   /* password */
		if ((st = wstmt(store, SQL_USER_PASSWORD, error_r)) == NULL)
			return -1;
		store_bind_text(st, 2, op->s2);
		store_bind_text(st, 3, op->s3);
	} else {
		/* s2 "messages": the message-count quota, else the byte quota */
		st = wstmt(store, op->s2 ? SQL_USER_QUOTA_MESSAGES : SQL_USER_QUOTA, error_r);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 2, op->i1);
	}
	sqlite3_bind_text(st, 1, op->s1, -1, SQLITE_STATIC);
	if ((n = wstep(store, st, "updating user", error_r)) < 0)
		return -1;
	if (n == 0) {
		*error_r = xasprintf("user %s does not exist", op->s1);
		return -1;
	}
	return 0;
}

int store_user_set_password(struct store *store, const char *address,
			    const char *password_hash, const char *scram_sha256,
			    const char **error_r)
{
	if (!secret_ok(password_hash) || !secret_ok(scram_sha256)) {
		*error_r = "password hash contains control characters";
		return -1;
	}
	char *laddr = store_lower(address);
	struct store_op op = { .fn = op_user_update, .s1 = laddr, .s2 = password_hash,
			       .s3 = scram_sha256, .b1 = true };
	int rc = store_run_op(store, &op, error_r);
	free(laddr);
	return rc;
}

int store_user_set_quota(struct store *store, const char *address, int64_t quota_bytes,
			 const char **error_r)
{
	if (quota_bytes < 0) {
		*error_r = "quota must not be negative";
		return -1;
	}
	char *laddr = store_lower(address);
	struct store_op op = { .fn = op_user_update, .s1 = laddr, .i1 = quota_bytes };
	int rc = store_run_op(store, &op, error_r);
	free(laddr);
	return rc;
}

int store_user_set_quota_messages(struct store *store, const char *address,
				  int64_t max_messages, const char **error_r)
{
	if (max_messages < 0) {
		*error_r = "quota must not be negative";
		return -1;
	}
	char *laddr = store_lower(address);
	struct store_op op = { .fn = op_user_update, .s1 = laddr, .s2 = "messages",
			       .i1 = max_messages };
	int rc = store_run_op(store, &op, error_r);
	free(laddr);
	return rc;
}

static int op_user_remove(struct store *store, struct store_op *op, char **error_r)
{
	sqlite3_stmt *st;
	int64_t id;
	int rc = wexists(store, SQL_USER_EXISTS_ADDR, op->s1, &id, error_r);

	if (rc <= 0) {
		if (rc == 0)
			*error_r = xasprintf("user %s does not exist", op->s1);
		return -1;
	}
	if (store_user_files(store, id, op, error_r) < 0)
		return -1;
	if ((st = wstmt(store, SQL_USER_DEL, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return wstep(store, st, "removing user", error_r) < 0 ? -1 : 0;
}

int store_user_remove(struct store *store, const char *address, const char **error_r)
{
	char *laddr = store_lower(address);
	struct store_op op = { .fn = op_user_remove, .s1 = laddr };
	int rc = store_run_op(store, &op, error_r);

	if (rc == 0)
		log_info("store", "event=user_removed user=%s", log_quote(laddr));
	free(laddr);
	return rc;
}

static void user_from_row(struct store *store, sqlite3_stmt *st, struct store_user *u)
{
	(void)store;
	u->id = sqlite3_column_int64(st, 0);
	u->domain_id = sqlite3_column_int64(st, 1);
	u->address = store_col_dup(st, 2);
	u->password_hash = store_col_dup(st, 3);
	u->scram_sha256 = store_col_dup(st, 4);
	u->quota_bytes = sqlite3_column_int64(st, 5);
	u->used_bytes = sqlite3_column_int64(st, 6);
	u->used_messages = sqlite3_column_int64(st, 7);
	u->quota_messages = sqlite3_column_int64(st, 8);
}

static int user_get(struct store *store, const char *sql, const char *addr, int64_t id,
		    struct store_user *user_r, const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL || (st = store_stmt(c, sql, error_r)) == NULL)
		return -1;
	if (addr != NULL)
		sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		user_from_row(store, st, user_r);
	else if (rc != SQLITE_DONE)
		*error_r = store_sqlerr(c, "reading user");
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int store_user_get(struct store *store, const char *address, struct store_user *user_r,
		   const char **error_r)
{
	char *laddr = store_lower(address);
	int rc = user_get(store, SQL_USER_COLS, laddr, 0, user_r, error_r);
	free(laddr);
	return rc;
}

int store_user_get_by_id(struct store *store, int64_t id, struct store_user *user_r,
			 const char **error_r)
{
	return user_get(store, SQL_USER_BY_ID, NULL, id, user_r, error_r);
}

STORE_LISTER(user_rows, struct store_user, user_from_row, store_user_clear)

int store_user_list(struct store *store, const char *domain,
		    int (*cb)(void *ctx, const struct store_user *u), void *ctx,
		    const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	sqlite3_stmt *st;
	char *ldomain = NULL;
	int rc;

	if (c == NULL)
		return -1;
	st = store_stmt(c, domain ? SQL_USER_LIST_DOMAIN : SQL_USER_LIST_ALL, error_r);
	if (st == NULL)
		return -1;
	if (domain != NULL) {
		ldomain = store_lower(domain);
		sqlite3_bind_text(st, 1, ldomain, -1, SQLITE_STATIC);
	}
	rc = user_rows(store, c, st, cb, ctx, "listing users", error_r);
	free(ldomain);
	return rc;
}

/* ---------------------------------------------------------------- aliases */

static int op_alias_add(struct store *store, struct store_op *op, char **error_r)
{
	const char *domain = store_addr_domain(op->s1);
	sqlite3_stmt *st;
	int n;

	if (domain_exists(store, domain, error_r) < 0)
		return -1;
	if ((st = wstmt(store, SQL_ALIAS_ADD, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, op->s1, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, op->s2, -1, SQLITE_STATIC);
	if ((n = wstep(store, st, "adding alias", error_r)) < 0)
		return -1;
	if (n == 0) {
		*error_r = xasprintf("alias %s -> %s exists", op->s1, op->s2);
		return -1;
	}
	return 0;
}

int store_alias_add(struct store *store, const char *alias, const char *target,
		    const char **error_r)
{
	char *lalias = store_lower(alias), *ltarget = store_lower(target);
	int rc = -1;

	if (!store_address_ok(lalias, true))
		*error_r = store_errf("invalid alias \"%s\"", lalias);
	else if (!store_address_ok(ltarget, false))
		*error_r = store_errf("invalid alias target \"%s\"", ltarget);
	else if (strcmp(lalias, ltarget) == 0)
		*error_r = store_errf("alias %s cannot point to itself", lalias);
	else {
		struct store_op op = { .fn = op_alias_add, .s1 = lalias, .s2 = ltarget };
		rc = store_run_op(store, &op, error_r);
	}
	free(lalias);
	free(ltarget);
	return rc;
}

static int op_alias_remove(struct store *store, struct store_op *op, char **error_r)
{
	sqlite3_stmt *st = wstmt(store, op->s2 ? SQL_ALIAS_DEL_ONE : SQL_ALIAS_DEL_ALL, error_r);
	int n;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, op->s1, -1, SQLITE_STATIC);
	if (op->s2 != NULL)
		sqlite3_bind_text(st, 2, op->s2, -1, SQLITE_STATIC);
	if ((n = wstep(store, st, "removing alias", error_r)) < 0)
		return -1;
	if (n == 0) {
		*error_r = op->s2 ? xasprintf("alias %s -> %s does not exist", op->s1, op->s2) :
			xasprintf("alias %s does not exist", op->s1);
		return -1;
	}
	return 0;
}

int store_alias_remove(struct store *store, const char *alias, const char *target,
		       const char **error_r)
{
	char *lalias = store_lower(alias), *ltarget = target ? store_lower(target) : NULL;
	struct store_op op = { .fn = op_alias_remove, .s1 = lalias, .s2 = ltarget };
	int rc = store_run_op(store, &op, error_r);

	free(lalias);
	free(ltarget);
	return rc;
}

static void alias_from_row(struct store *store, sqlite3_stmt *st, struct store_alias *a)
{
	(void)store;
	a->id = sqlite3_column_int64(st, 0);
	a->alias = store_col_dup(st, 1);
	a->target = store_col_dup(st, 2);
}

STORE_LISTER(alias_rows, struct store_alias, alias_from_row, store_alias_clear)

int store_alias_list(struct store *store, const char *alias,
		     int (*cb)(void *ctx, const struct store_alias *a), void *ctx,
		     const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	sqlite3_stmt *st;
	char *lalias = NULL;
	int rc;

	if (c == NULL)
		return -1;
	if ((st = store_stmt(c, alias ? SQL_ALIAS_LIST_ONE : SQL_ALIAS_LIST_ALL, error_r)) == NULL)
		return -1;
	if (alias != NULL) {
		lalias = store_lower(alias);
		sqlite3_bind_text(st, 1, lalias, -1, SQLITE_STATIC);
	}
	rc = alias_rows(store, c, st, cb, ctx, "listing aliases", error_r);
	free(lalias);
	return rc;
}

/* ------------------------------------------------------------- resolution */

struct resolve {
	struct store *store;
	struct store_conn *c;
	const char *sep;
	bool catchall;          /* follow "@domain" catch-alls */
	char **visited;
	size_t visited_count;
	struct store_rcpt *rcpt;
	const char *error;
};

static bool strv_has(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static void strv_add(char ***v, size_t *n, const char *s)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = xstrdup(s);
}

/* 1 local domain, 0 not, -1 error. */
static int is_local_domain(struct resolve *r, const char *domain)
{
	sqlite3_stmt *st = store_stmt(r->c, SQL_DOMAIN_EXISTS, &r->error);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r->error = store_sqlerr(r->c, "domain lookup");
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* An exact user: 1 added, 0 none, -1 error. */
static int try_user(struct resolve *r, const char *addr)
{
	sqlite3_stmt *st = store_stmt(r->c, SQL_USER_EXISTS_ADDR, &r->error);
	struct store_rcpt *rc_ = r->rcpt;
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		bool dup = false;
		for (size_t i = 0; i < rc_->user_count; i++)
			if (rc_->users[i].user_id == id)
				dup = true;
		if (!dup) {
			rc_->users = xrealloc(rc_->users, (rc_->user_count + 1) * sizeof(*rc_->users));
			rc_->users[rc_->user_count].user_id = id;
			rc_->users[rc_->user_count].address = xstrdup(addr);
			rc_->user_count++;
		}
	} else if (rc != SQLITE_DONE) {
		r->error = store_sqlerr(r->c, "user lookup");
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int expand_target(struct resolve *r, const char *target, int depth);

/* Alias targets of key, each expanded: 1 alias found, 0 none, -1 error. */
static int try_alias(struct resolve *r, const char *key, int depth)
{
	sqlite3_stmt *st = store_stmt(r->c, SQL_ALIAS_TARGETS, &r->error);
	char **targets = NULL;
	size_t n = 0;
	int rc;

	if (st == NULL)
		return -1;
	/* Collect first: expansion reuses this cached statement. */
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		strv_add(&targets, &n, (const char *)sqlite3_column_text(st, 0));
	if (rc != SQLITE_DONE)
		r->error = store_sqlerr(r->c, "alias lookup");
	sqlite3_reset(st);
	for (size_t i = 0; i < n && rc == SQLITE_DONE; i++)
		if (expand_target(r, targets[i], depth + 1) < 0)
			rc = SQLITE_ERROR;
	for (size_t i = 0; i < n; i++)
		free(targets[i]);
	free(targets);
	if (rc != SQLITE_DONE)
		return -1;
	return n > 0;
}

/* Resolve a lowercased address in a local domain: 1 found, 0 not, -1 error. */
static int resolve_local(struct resolve *r, const char *addr, int depth)
{
	int rc;

	if (strv_has(r->visited, r->visited_count, addr))
		return 1;       /* already expanded (a loop or a shared target) */
	strv_add(&r->visited, &r->visited_count, addr);

	if ((rc = try_user(r, addr)) != 0)
		return rc;
	if ((rc = try_alias(r, addr, depth)) != 0)
		return rc;
	char *base = store_addr_strip_sub(addr, r->sep);
	if (base != NULL) {
		if ((rc = try_user(r, base)) == 0)
			rc = try_alias(r, base, depth);
		free(base);
		if (rc != 0)
			return rc;
	}
	if (!r->catchall)
		return 0;
	char *key = xasprintf("@%s", store_addr_domain(addr));
	rc = try_alias(r, key, depth);
	free(key);
	return rc;
}

static int expand_target(struct resolve *r, const char *target, int depth)
{
	char *t;
	int rc;

	if (depth > STORE_ALIAS_DEPTH) {
		log_warn("store", "event=alias_too_deep target=%s", log_quote(target));
		return 0;
	}
	t = store_lower(target);
	if (strchr(t, '@') == NULL) {
		free(t);
		return 0;
	}
	rc = is_local_domain(r, store_addr_domain(t));
	if (rc == 0) {
		struct store_rcpt *rc_ = r->rcpt;
		if (!strv_has(rc_->remote, rc_->remote_count, t))
			strv_add(&rc_->remote, &rc_->remote_count, t);
	} else if (rc > 0) {
		rc = resolve_local(r, t, depth);      /* a missing local target is dropped */
	}
	free(t);
	return rc < 0 ? -1 : 0;
}

static void resolve_clear(struct resolve *r)
{
	for (size_t i = 0; i < r->visited_count; i++)
		free(r->visited[i]);
	free(r->visited);
}

/* Resolve address into rcpt_r (zeroed first); kind as store.h says. */
static int resolve(struct store *store, const char *address, const char *sep, bool catchall,
		   struct store_rcpt *rcpt_r, const char **error_r)
{
	struct resolve r = { .store = store, .sep = sep, .catchall = catchall, .rcpt = rcpt_r };
	char *addr;
	int rc;

	memset(rcpt_r, 0, sizeof(*rcpt_r));
	if ((r.c = store_rconn(store, error_r)) == NULL)
		return -1;
	addr = store_lower(address);
	if (strrchr(addr, '@') == NULL || !store_domain_name_ok(store_addr_domain(addr))) {
		*error_r = store_errf("invalid address \"%s\"", addr);
		free(addr);
		return -1;
	}
	rc = is_local_domain(&r, store_addr_domain(addr));
	if (rc == 0) {
		rcpt_r->kind = STORE_RCPT_REMOTE;
	} else if (rc > 0 && !store_address_ok(addr, false)) {
		/* a local part no account can have (quoted, with '@' or spaces):
		 * nobody here, never a reason to look elsewhere */
		rcpt_r->kind = STORE_RCPT_UNKNOWN;
	} else if (rc > 0) {
		rc = resolve_local(&r, addr, 0);
		if (rc >= 0)
			rcpt_r->kind = rcpt_r->user_count + rcpt_r->remote_count > 0 ?
				STORE_RCPT_LOCAL : STORE_RCPT_UNKNOWN;
	}
	free(addr);
	resolve_clear(&r);
	if (rc < 0) {
		*error_r = r.error ? r.error : "recipient lookup failed";
		store_rcpt_clear(rcpt_r);
		return -1;
	}
	return 0;
}

int store_rcpt_resolve(struct store *store, const char *address, const char *subaddress_sep,
		       struct store_rcpt *rcpt_r, const char **error_r)
{
	return resolve(store, address, subaddress_sep, true, rcpt_r, error_r);
}

void store_rcpt_clear(struct store_rcpt *rcpt)
{
	for (size_t i = 0; i < rcpt->user_count; i++)
		free(rcpt->users[i].address);
	free(rcpt->users);
	for (size_t i = 0; i < rcpt->remote_count; i++)
		free(rcpt->remote[i]);
	free(rcpt->remote);
	memset(rcpt, 0, sizeof(*rcpt));
}

struct store_delivery_rcpt *store_rcpt_deliveries(const struct store_rcpt *rcpt)
{
	struct store_delivery_rcpt *d;

	if (rcpt->user_count == 0)
		return NULL;
	d = xcalloc(rcpt->user_count, sizeof(*d));
	for (size_t i = 0; i < rcpt->user_count; i++)
		d[i] = (struct store_delivery_rcpt){ .user_id = rcpt->users[i].user_id,
						     .delivered_to = rcpt->users[i].address };
	return d;
}

/* ------------------------------------------------------ sender and quota */

int store_sender_allowed(struct store *store, int64_t user_id, const char *address,
			 const char *subaddress_sep, const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	sqlite3_stmt *st;
	char *uaddr = NULL, *udomain = NULL, *addr = NULL, *base = NULL;
	enum store_sender_policy policy;
	int rc, allowed = 0;

	if (c == NULL || (st = store_stmt(c, SQL_USER_DOMAIN_POLICY, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		uaddr = store_col_dup(st, 0);
		udomain = store_col_dup(st, 1);
		policy = (enum store_sender_policy)sqlite3_column_int(st, 2);
	} else if (rc == SQLITE_DONE) {
		*error_r = store_errf("user id %lld does not exist", (long long)user_id);
	} else {
		*error_r = store_sqlerr(c, "reading user");
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return -1;

	addr = store_lower(address);
	if (policy == STORE_SENDER_ANY) {
		allowed = 1;
		goto out;
	}
	if (!store_address_ok(addr, false))
		goto out;
	if (policy == STORE_SENDER_DOMAIN && strcmp(store_addr_domain(addr), udomain) == 0) {
		allowed = 1;
		goto out;
	}
	/* OWN: the address itself, a subaddress of it, or an alias reaching the
	 * user.  Catch-alls do not count: receiving the rest of a domain's
	 * mail does not make one the owner of every name in it. */
	base = store_addr_strip_sub(addr, subaddress_sep);
	if (strcmp(addr, uaddr) == 0 || (base != NULL && strcmp(base, uaddr) == 0)) {
		allowed = 1;
		goto out;
	}
	struct store_rcpt rcpt;
	if (resolve(store, addr, subaddress_sep, false, &rcpt, error_r) < 0) {
		allowed = -1;
		goto out;
	}
	for (size_t i = 0; i < rcpt.user_count; i++)
		if (rcpt.users[i].user_id == user_id)
			allowed = 1;
	store_rcpt_clear(&rcpt);
out:
	free(uaddr);
	free(udomain);
	free(addr);
	free(base);
	return allowed;
}

int store_quota_exceeded(struct store *store, int64_t user_id, int64_t bytes,
			 const char **error_r)
{
	struct store_user u = { 0 };
	int rc = store_user_get_by_id(store, user_id, &u, error_r);

	if (rc <= 0) {
		if (rc == 0)
			*error_r = store_errf("user id %lld does not exist", (long long)user_id);
		return -1;
	}
	rc = (u.quota_bytes > 0 && u.used_bytes + bytes > u.quota_bytes) ||
	     (u.quota_messages > 0 && u.used_messages + 1 > u.quota_messages);
	store_user_clear(&u);
	return rc;
}
