/* Internals of the SQLite store shared by its files (not for other modules).
 *
 * Threads and connections:
 *  - store->wconn is the writer connection.  Only the commit thread uses it
 *    once store_open() has returned (migrations run on it before the thread
 *    starts), so it needs no lock.
 *  - Every thread that reads gets its own read-only connection from
 *    store_rconn(), kept in store->rconns and keyed by pthread_self().  A
 *    connection is only ever used by the thread that owns it.
 *  - Statements are cached per connection, keyed by the address of their
 *    static SQL text; every user of a cached statement resets it when done so
 *    no read transaction stays open. */
#ifndef TERN_STORE_PRIVATE_H
#define TERN_STORE_PRIVATE_H

#include "store/store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#define STORE_BUSY_TIMEOUT_MS 10000
#define STORE_STMT_CACHE 96
#define STORE_ALIAS_DEPTH 10
#define STORE_DIR_MODE 0750
#define STORE_FILE_MODE 0640
/* Unreferenced message files younger than this are assumed to belong to a
 * commit in progress (of this or another process) and are not reported. */
#define STORE_VERIFY_GRACE_S 60

struct store_conn {
	pthread_t tid;
	sqlite3 *db;
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} cache[STORE_STMT_CACHE];
	unsigned cached;
};

struct store_req;

struct store {
	char *dir;              /* absolute data folder */
	char *msg_dir;          /* dir + "/messages" */
	struct store_options opts;
	int schema_version;

	struct store_conn wconn;

	/* read connections, one per thread */
	pthread_mutex_t rlock;
	struct store_conn **rconns;
	size_t rconn_count;

	/* commit queue */
	pthread_mutex_t lock;
	pthread_cond_t cond;        /* commit thread waits for work */
	pthread_cond_t done_cond;   /* synchronous callers wait for results */
	struct store_req *head, **tail;
	bool stopping;
	bool thread_started;
	pthread_t thread;

	/* commit-thread state */
	int msgdir_fd;
	int subdir_fd[256];

	/* fault injection: countdown of I/O operations (0 = off) */
	atomic_uint fault_nth;
	atomic_int fault_err;
};

/* A synchronous write executed on the commit thread inside the batch
 * transaction (within its own savepoint).  It may append files to unlink
 * once the transaction has committed. */
struct store_op {
	int (*fn)(struct store *store, struct store_op *op, char **error_r);
	const char *s1, *s2, *s3;
	int64_t i1;
	bool b1;
	char **unlink_paths;
	size_t unlink_count;
};

/* sqlite.c */
int store_conn_open(struct store *store, struct store_conn *c, bool readonly,
		    const char **error_r);
void store_conn_close(struct store_conn *c);
/* A cached statement, reset and unbound, ready to bind; NULL with *error_r. */
sqlite3_stmt *store_stmt(struct store_conn *c, const char *sql, const char **error_r);
/* This thread's read connection (created on first use); NULL with *error_r. */
struct store_conn *store_rconn(struct store *store, const char **error_r);
void store_rconns_close(struct store *store);
/* Thread-local error string (valid until the next error on this thread). */
const char *store_errf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Take ownership of a malloc'd message and return it as the thread's error. */
const char *store_err_take(char *msg);
/* Error from the connection's last failure, prefixed with what. */
const char *store_sqlerr(struct store_conn *c, const char *what);
char *store_sqlerr_dup(struct store_conn *c, const char *what);
/* Run SQL text without results (BEGIN, SAVEPOINT...); 0 or -1. */
int store_exec(struct store_conn *c, const char *sql, char **error_r);
/* Bind helpers: text NULL binds NULL. */
void store_bind_text(sqlite3_stmt *st, int i, const char *s);
char *store_col_dup(sqlite3_stmt *st, int i);

/* Names: lowercase copy; validity checks (no controls, spaces, quotes...). */
char *store_lower(const char *s);
bool store_domain_name_ok(const char *s);
/* "local@domain" with non-empty parts (alias_ok also accepts "@domain"). */
bool store_address_ok(const char *s, bool alias_ok);
/* The domain part after the last '@' (s itself if none). */
const char *store_addr_domain(const char *s);
/* Strip a subaddress: "u+tag@d" -> "u@d" (malloc'd) or NULL if none. */
char *store_addr_strip_sub(const char *addr, const char *sep);

/* schema.c */
int store_migrate(struct store *store, const char **error_r);
/* The recorded schema version (0 for an empty database). */
int store_schema_read(struct store_conn *c, int *version_r, const char **error_r);

/* commit.c */
int store_commit_start(struct store *store, const char **error_r);
void store_commit_stop(struct store *store);
/* Run op on the commit thread and wait; 0 or <0 with *error_r. */
int store_run_op(struct store *store, struct store_op *op, const char **error_r);
/* Queue op to the commit thread without waiting: cb(ctx, status, error)
 * runs on base (or on the commit thread when base is NULL) after the batch
 * committed and op's unlink_paths were unlinked; then the paths are freed
 * and op_free(op) is called (when not NULL).  0 when queued, <0 (nothing
 * called) when the store is read-only. */
int store_op_submit(struct store *store, struct store_op *op, void (*op_free)(struct store_op *op),
		    struct event_base *base, store_done_cb *cb, void *ctx);
/* Path of a message file name (16 hex), malloc'd. */
char *store_message_path(struct store *store, const char *file);

/* mailbox.c (commit thread, inside a transaction) */
int store_mailboxes_ensure(struct store *store, int64_t user_id, char **error_r);
/* Find a mailbox id by name for delivery; falls back to INBOX and creates
 * the special-use set when missing.  1 found, 0 user missing, <0 error. */
int store_mailbox_for_delivery(struct store *store, int64_t user_id, const char *name,
			       int64_t *id_r, char **error_r);
/* Collect the message file paths of a user (writer connection). */
int store_user_files(struct store *store, int64_t user_id, struct store_op *op,
		     char **error_r);
void store_op_add_unlink(struct store_op *op, char *path);

#endif
