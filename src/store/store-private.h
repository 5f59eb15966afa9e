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
#include "lib/notify.h"

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
	/* spare files (commit.c): emptied queue files kept in dir/spare for
	 * reuse, so the queue does not create and delete an inode per message */
	int spare_fd;
	pthread_mutex_t spare_lock;
	char (*spare)[17];
	size_t spare_count;

	/* fault injection: countdown of I/O operations (0 = off) */
	atomic_uint fault_nth;
	atomic_int fault_err;

	/* the search index (search.c; NULL until store_search_open) */
	struct store_search *search;
	/* deferred unlinks (unlink.c; NULL when opened read-only) */
	struct store_unlinker *unlinker;
};

/* A synchronous write executed on the commit thread inside the batch
 * transaction (within its own savepoint).  It may append files to unlink
 * once the transaction has committed. */
struct store_op {
	int (*fn)(struct store *store, struct store_op *op, char **error_r);
	const char *s1, *s2, *s3;
	int64_t i1;
	bool b1;
	char **unlink_paths;    /* unlinked after the commit unless a row still names the file */
	size_t unlink_count;
	bool *unlink_recycle;   /* per unlink path: may be kept as a spare (store_op_add_recycle) */
	/* complete before the files are unlinked, which a background thread
	 * does after a crash journal lists them (unlink.h) */
	bool unlink_later;
	bool unlink_journaled;  /* set by the commit thread */
	/* Optional message file (APPEND): when file_data is set, the commit
	 * thread writes it with the batch's deliveries and makes it durable
	 * before fn runs; fn finds its name in file.  Unlinked if the op fails. */
	char *file_data;
	size_t file_len;
	char file[17];
	unsigned file_subdir;
	bool file_written;
	/* lib/notify.h events published after the commit (store_op_add_event) */
	struct notify_event *events;
	size_t event_count;
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
/* Step the bound read statement st of c, calling row(st, arg) for each row
 * and stopping early (not an error) when it returns non-zero; st is reset.
 * 0, or -1 with *error_r "what: <SQLite error>". */
int store_each_row(struct store_conn *c, sqlite3_stmt *st,
		   int (*row)(sqlite3_stmt *st, void *arg), void *arg, const char *what,
		   const char **error_r);
/* STORE_LISTER(name, type, from_row, clear) defines the loop of the public
 * listings (store_domain_list, store_mailbox_list...):
 *   static int name(struct store *store, struct store_conn *c, sqlite3_stmt *st,
 *                   int (*cb)(void *ctx, const type *v), void *ctx,
 *                   const char *what, const char **error_r)
 * Each row of st becomes a zeroed type filled by from_row(store, st, &v),
 * is handed to cb (non-zero stops the listing, not an error) and is then
 * released with clear(&v); the rest is store_each_row. */
#define STORE_LISTER(name, type, from_row, clear)				\
	struct name##_arg {							\
		struct store *store;						\
		int (*cb)(void *ctx, const type *v);				\
		void *ctx;							\
	};									\
	static int name##_row(sqlite3_stmt *st, void *arg)			\
	{									\
		struct name##_arg *a = arg;					\
		type v = { 0 };							\
		int stop;							\
										\
		from_row(a->store, st, &v);					\
		stop = a->cb(a->ctx, &v);					\
		clear(&v);							\
		return stop;							\
	}									\
	static int name(struct store *store, struct store_conn *c, sqlite3_stmt *st, \
			int (*cb)(void *ctx, const type *v), void *ctx,		\
			const char *what, const char **error_r)			\
	{									\
		struct name##_arg a = { store, cb, ctx };			\
										\
		return store_each_row(c, st, name##_row, &a, what, error_r);	\
	}
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
/* Like store_op_add_unlink, for a file whose content may stay on disk
 * (a queue file: its message has left): the commit thread may move it to
 * the spare folder for a later message file instead of unlinking it. */
void store_op_add_recycle(struct store_op *op, char *path);
/* Read listing of messages: sql selects (id, mailbox_id, uid, modseq,
 * internal_date, size, flags, file) with ?1 mailbox_id and ?2 arg; each row
 * is handed to cb as in store_message_list. */
int store_message_select(struct store *store, const char *sql, int64_t mailbox_id,
			 int64_t arg, int (*cb)(void *ctx, const struct store_message *m),
			 void *ctx, const char *what, const char **error_r);
/* Record an event to publish once op's transaction has committed. */
void store_op_add_event(struct store_op *op, int64_t user_id, int64_t mailbox_id,
			unsigned kinds, uint64_t modseq);

/* expunge.c: removing and moving message rows (commit thread, inside the
 * batch transaction), shared by POP3, IMAP EXPUNGE, MOVE, DELETE, RENAME. */
struct store_row {
	int64_t id;
	uint32_t uid;
	int64_t size;
	char *file;
	char *flags;
	int64_t modseq;
};
/* Rows of mailbox_id for uids (sorted and deduplicated here; missing UIDs
 * skipped), or every row when uids is STORE_ROWS_ALL; ascending UID order. */
extern const uint32_t store_rows_all[1];
#define STORE_ROWS_ALL store_rows_all
int store_rows_load(struct store *store, int64_t mailbox_id, const uint32_t *uids,
		    size_t count, struct store_row **rows_r, size_t *count_r, char **error_r);
void store_rows_free(struct store_row *rows, size_t count);
/* Give mailbox_id a new modseq.  1 with its user, uidvalidity and the new
 * modseq, 0 when the mailbox does not exist. */
int store_mailbox_bump(struct store *store, int64_t mailbox_id, int64_t *user_id_r,
		       uint32_t *uidvalidity_r, int64_t *modseq_r, char **error_r);
/* Take count new UIDs (first in *first_uid_r) and one new modseq in
 * mailbox_id, adding count messages and bytes to its counters. */
int store_mailbox_alloc(struct store *store, int64_t mailbox_id, size_t count, int64_t bytes,
			uint32_t *first_uid_r, int64_t *modseq_r, uint32_t *uidvalidity_r,
			char **error_r);
/* Remove rows from mailbox_id (of user_id), recording each UID in the
 * expunge history with modseq and lowering the mailbox's counters.  With
 * dest_id 0 the rows are deleted, the user's usage lowered and the files
 * queued on op for unlinking; otherwise they move to dest_id with new UIDs
 * (in dst_uids_r when not NULL) and one new modseq there (*dest_modseq_r),
 * keeping file and usage. */
int store_rows_remove(struct store *store, struct store_op *op, int64_t user_id,
		      int64_t mailbox_id, int64_t modseq, const struct store_row *rows,
		      size_t count, int64_t dest_id, uint32_t *dst_uids_r,
		      int64_t *dest_modseq_r, char **error_r);
/* Step a statement that returns no rows (or ignores them) and reset it;
 * a failure is "what: <SQLite error>" (store_step_done: "index update"). */
int store_step_all(struct store_conn *c, sqlite3_stmt *st, const char *what, char **error_r);
int store_step_done(struct store_conn *c, sqlite3_stmt *st, char **error_r);
/* store_stmt with a malloc'd error, for commit-thread code. */
sqlite3_stmt *store_wstmt(struct store_conn *c, const char *sql, char **error_r);

/* queue.c: a delivery's remote recipients, owned (store_deliver copies
 * them; the commit thread records them with the queue copy's file). */
struct store_queue_in_rcpt {
	char *address, *domain, *orcpt;
	unsigned notify;
};
struct store_queue_in {
	struct store_queue_in_rcpt *rcpts;
	size_t count;
	int64_t user_id;
	unsigned flags;
};
/* Copy d's remote recipients into q; -1 when one has no domain. */
int store_queue_in_copy(struct store_queue_in *q, const struct store_delivery *d);
void store_queue_in_clear(struct store_queue_in *q);
/* Insert the queue rows for a committed copy (commit thread, inside the
 * batch's transaction). */
int store_queue_insert(struct store *store, const char *file, int64_t size, const char *sender,
		       const char *dsn, const struct store_queue_in *q, char **error_r);

/* summary.c: per-message summaries (schema 4).  The owned form of
 * struct store_summary's header-derived fields, computed where the message
 * bytes are (store_deliver's and store_append's callers) and written by
 * the commit thread with the message row. */
struct store_summary_data {
	bool has_sent_date;
	time_t sent_date;
	char *envelope, *subject, *from_mailbox, *to_mailbox, *cc_mailbox;
	char *from_display, *to_display, *message_id, *in_reply_to, *references;
	char *preview;
	char *msgid;            /* first "<...>" of Message-ID (THREADID matching), "" none */
};
/* Compute the summary of the message prefix + msg: prefix (may be empty)
 * is header lines the stored file has before msg ("Return-Path: ...\r\n
 * Delivered-To: ...\r\n"); they take part in the ENVELOPE's header
 * section exactly as in the file.  Never fails; free with
 * store_summary_data_free. */
struct store_summary_data *store_summary_compute(const char *prefix, size_t prefix_len,
						 const char *msg, size_t len);
void store_summary_data_free(struct store_summary_data **sd);
/* Commit thread: record sd for the new message row msg_row of user_id
 * whose file is file: EMAILID "M" + file, THREADID that of a message of
 * the user named in Message-ID, In-Reply-To or References, else "T" +
 * file.  An existing summary of the row is kept. */
int store_summary_insert(struct store *store, int64_t msg_row, int64_t user_id,
			 const char *file, const struct store_summary_data *sd, char **error_r);
/* Commit thread: give the new row dst_row (COPY) the summary of src_row,
 * when it has one. */
int store_summary_copy(struct store *store, int64_t dst_row, int64_t src_row, char **error_r);

/* imap-mailbox.c: the asynchronous IMAP write operations share one
 * request type; fn fills the result fields, the completion hands them to
 * the caller's store_write_cb. */
struct store_imap_op {
	struct store_op op;             /* first: the commit thread hands us &op */
	store_write_cb *cb;
	void *ctx;
	/* arguments */
	int64_t user_id;
	int64_t mailbox_id, dst_mailbox_id;
	char *name, *name2, *flags;
	uint32_t *uids;
	size_t count;
	enum store_flags_mode mode;
	uint64_t unchangedsince;
	bool move, subscribe;
	time_t internal_date;
	struct store_summary_data *summary;     /* APPEND: computed by the caller */
	char *value;                            /* annotation value (NULL: remove) */
	size_t value_len;
	int kind;                               /* an operation's own selector (queue.c) */
	void *arg;                              /* an operation's own arguments (queue.c) */
	void (*arg_free)(void *arg);
	/* results (reset by fn at its start: a batch may be retried) */
	const char *code;
	uint64_t modseq;
	uint32_t uidvalidity;
	uint32_t *src_uids, *dst_uids;
	size_t result_count;
	uint32_t *modified;
	size_t modified_count;
	int64_t new_mailbox_id;
	uint32_t first_recent;
};
struct store_imap_op *store_imap_op_new(int (*fn)(struct store *store, struct store_op *op,
						 char **error_r),
					store_write_cb *cb, void *ctx);
/* Queue p; on failure p is freed and -1 returned. */
int store_imap_op_submit(struct store *store, struct event_base *base, struct store_imap_op *p);
void store_imap_op_free(struct store_op *op);
/* Clear p's results at the start of fn. */
void store_imap_op_reset(struct store_imap_op *p);
/* Fail fn with an IMAP response code: sets p->code and *error_r; -1. */
int store_imap_fail(struct store_imap_op *p, const char *code, char **error_r,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Mailbox id by user and (canonical) name on the writer connection,
 * creating the special-use set first when missing.  1, 0 not found, <0. */
int store_wmailbox_find(struct store *store, int64_t user_id, const char *name, int64_t *id_r,
			char **error_r);
/* A mailbox's owner, uidvalidity and highestmodseq (writer).  1, 0, <0. */
int store_wmailbox_get(struct store *store, int64_t mailbox_id, int64_t *user_id_r,
		       uint32_t *uidvalidity_r, int64_t *highestmodseq_r, char **error_r);

/* mailbox.c: a never-used UIDVALIDITY from the store-wide counter. */
int store_next_uidvalidity(struct store *store, uint32_t *uidv_r, char **error_r);
/* mailbox.c: the stored form of a name: "INBOX" for any case of it, and
 * "INBOX/" for any case of that prefix; malloc'd. */
char *store_mailbox_canon(const char *name);

/* imap-flags.c */
/* Normalise a space-separated flag list: system flags capitalised (\Seen
 * \Answered \Flagged \Deleted \Draft, in that order), then keywords in
 * case-insensitive order, no duplicates (keywords compared
 * case-insensitively, the first spelling kept), \Recent dropped.  NULL
 * (with *error_r) for an unknown system flag or a keyword that is not an
 * IMAP atom.  malloc'd. */
char *store_flags_normalize(const char *flags, const char **error_r);
/* Apply mode with the normalised list change to the normalised cur;
 * malloc'd normalised result. */
char *store_flags_apply(const char *cur, enum store_flags_mode mode, const char *change);
/* Record the keywords of a normalised flag list in mailbox_id's keyword set. */
int store_keywords_add(struct store *store, int64_t mailbox_id, const char *flags,
		       char **error_r);
/* Mailbox name checks (CANNOT): non-empty UTF-8, no controls, no '*' '%',
 * no empty level, no leading/trailing '/', <= 255 bytes, <= 16 levels. */
bool store_mailbox_name_ok(const char *name, const char **why_r);

#endif
