/* SQLite connections of the store: opening them with the store's pragmas
 * (WAL, synchronous=FULL, a 10 s busy timeout, foreign keys), a statement
 * cache per connection, one read-only connection per reading thread, and
 * the thread-local error strings handed out through error_r.
 *
 * Invariants: a connection is used by one thread only (the commit thread for
 * the writer, the owning thread for a reader); cached statements are always
 * reset after use so a reader never pins an old WAL snapshot. */
#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static __thread char *tls_error;

const char *store_err_take(char *msg)
{
	free(tls_error);
	tls_error = msg;
	return msg;
}

const char *store_errf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = xstrdup("out of memory formatting an error");
	va_end(ap);
	return store_err_take(s);
}

char *store_sqlerr_dup(struct store_conn *c, const char *what)
{
	return xasprintf("%s: %s", what, c->db ? sqlite3_errmsg(c->db) : "no database");
}

const char *store_sqlerr(struct store_conn *c, const char *what)
{
	return store_err_take(store_sqlerr_dup(c, what));
}

int store_each_row(struct store_conn *c, sqlite3_stmt *st,
		   int (*row)(sqlite3_stmt *st, void *arg), void *arg, const char *what,
		   const char **error_r)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (row(st, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		*error_r = store_sqlerr(c, what);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_exec(struct store_conn *c, const char *sql, char **error_r)
{
	char *msg = NULL;

	if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		if (error_r)
			*error_r = xasprintf("%s: %s", sql, msg ? msg : sqlite3_errmsg(c->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int store_conn_open(struct store *store, struct store_conn *c, bool readonly,
		    const char **error_r)
{
	char *path = xasprintf("%s/index.db", store->dir);
	int flags = SQLITE_OPEN_NOMUTEX |
		(readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
	int rc;

	memset(c, 0, sizeof(*c));
	c->tid = pthread_self();
	rc = sqlite3_open_v2(path, &c->db, flags, NULL);
	free(path);
	if (rc != SQLITE_OK) {
		*error_r = store_errf("cannot open %s/index.db: %s", store->dir,
				      c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		sqlite3_close(c->db);
		c->db = NULL;
		return -1;
	}
	sqlite3_busy_timeout(c->db, STORE_BUSY_TIMEOUT_MS);
	/* WAL is a property of the database file, set by the writer; readers
	 * only need foreign keys (harmless) and the busy timeout. */
	const char *pragmas = readonly ?
		"PRAGMA foreign_keys=ON;" :
		"PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;";
	char *err = NULL;
	if (store_exec(c, pragmas, &err) < 0) {
		*error_r = store_err_take(err);
		store_conn_close(c);
		return -1;
	}
	return 0;
}

void store_conn_close(struct store_conn *c)
{
	for (unsigned i = 0; i < c->cached; i++)
		sqlite3_finalize(c->cache[i].st);
	c->cached = 0;
	if (c->db != NULL)
		sqlite3_close(c->db);
	c->db = NULL;
}

sqlite3_stmt *store_stmt(struct store_conn *c, const char *sql, const char **error_r)
{
	sqlite3_stmt *st;

	/* Linear search on the SQL text's address: a few dozen statements,
	 * cheaper than hashing the text. */
	for (unsigned i = 0; i < c->cached; i++) {
		if (c->cache[i].sql == sql) {
			st = c->cache[i].st;
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return st;
		}
	}
	if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		*error_r = store_sqlerr(c, "prepare");
		return NULL;
	}
	if (c->cached < STORE_STMT_CACHE) {
		c->cache[c->cached].sql = sql;
		c->cache[c->cached].st = st;
		c->cached++;
	} else {
		panic("store statement cache full");
	}
	return st;
}

struct store_conn *store_rconn(struct store *store, const char **error_r)
{
	pthread_t self = pthread_self();
	struct store_conn *c;

	pthread_mutex_lock(&store->rlock);
	for (size_t i = 0; i < store->rconn_count; i++) {
		if (pthread_equal(store->rconns[i]->tid, self)) {
			c = store->rconns[i];
			pthread_mutex_unlock(&store->rlock);
			return c;
		}
	}
	pthread_mutex_unlock(&store->rlock);

	c = xcalloc(1, sizeof(*c));
	if (store_conn_open(store, c, true, error_r) < 0) {
		free(c);
		return NULL;
	}
	pthread_mutex_lock(&store->rlock);
	store->rconns = xrealloc(store->rconns, (store->rconn_count + 1) * sizeof(*store->rconns));
	store->rconns[store->rconn_count++] = c;
	pthread_mutex_unlock(&store->rlock);
	return c;
}

void store_rconns_close(struct store *store)
{
	for (size_t i = 0; i < store->rconn_count; i++) {
		store_conn_close(store->rconns[i]);
		free(store->rconns[i]);
	}
	free(store->rconns);
	store->rconns = NULL;
	store->rconn_count = 0;
}

void store_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

char *store_col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? xstrdup((const char *)s) : NULL;
}

/* ------------------------------------------------------------------ names */

char *store_lower(const char *s)
{
	char *r = xstrdup(s);
	for (char *p = r; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return r;
}

static bool name_char_ok(unsigned char c)
{
	/* No controls, spaces, quotes, angle brackets or backslashes: these
	 * names end up in headers and log lines.  UTF-8 bytes pass. */
	return c > 0x20 && c != 0x7f && c != '"' && c != '<' && c != '>' && c != '\\' &&
	       c != ',' && c != ';';
}

bool store_domain_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 255 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (const char *p = s; *p; p++)
		if (!name_char_ok((unsigned char)*p) || *p == '@')
			return false;
	return true;
}

bool store_address_ok(const char *s, bool alias_ok)
{
	const char *at = strrchr(s, '@');

	if (at == NULL || strlen(s) > 320)
		return false;
	if (at == s && !alias_ok)
		return false;
	for (const char *p = s; p < at; p++)
		if (!name_char_ok((unsigned char)*p))
			return false;
	return store_domain_name_ok(at + 1);
}

const char *store_addr_domain(const char *s)
{
	const char *at = strrchr(s, '@');
	return at ? at + 1 : s;
}

char *store_addr_strip_sub(const char *addr, const char *sep)
{
	const char *at = strrchr(addr, '@');
	size_t cut;

	if (sep == NULL || *sep == '\0' || at == NULL)
		return NULL;
	cut = strcspn(addr, sep);
	if (cut == 0 || addr + cut >= at)
		return NULL;
	return xasprintf("%.*s%s", (int)cut, addr, at);
}
