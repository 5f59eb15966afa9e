/* The search index: DATA/search.db, an SQLite database with one FTS5 table
 * (trigram tokenizer, case-sensitive over text we casefold ourselves) that
 * answers IMAP SEARCH FROM/TO/CC/BCC/SUBJECT/HEADER/BODY/TEXT (RFC 3501
 * 6.4.4, RFC 9051 6.4.4) as substring matches, without reading messages.
 *
 * Layout of search.db (schema versioned like index.db, see migrations[]):
 *   mailbox_state(id, uidvalidity, indexed_uid): every message of mailbox
 *       id (index.db's mailboxes.id) with uid <= indexed_uid has been
 *       looked at under that uidvalidity;
 *   docs(id, mailbox_id, uid): one row per indexed message, id = the FTS
 *       rowid;
 *   doc_text: FTS5 (hfrom, hto, hcc, hbcc, subject, headers, body).
 * Every connection ATTACHes index.db read-only as "idx", so one statement
 * can join the two (which messages are missing, which hits still exist).
 *
 * Invariants and why they hold:
 *  - UIDs only grow within a mailbox and a commit makes a mailbox's new
 *    messages visible together with its new uidnext, so "not indexed yet"
 *    is exactly uid > indexed_uid; a new uidvalidity (a reused mailbox id)
 *    throws the mailbox's documents away.
 *  - docs rows with uid > indexed_uid never exist: documents and the state
 *    row change in one transaction.
 *  - Expunged and moved-away messages may keep their documents for a while
 *    (a background cleanup removes them); every query joins idx.messages,
 *    so they are never reported.
 *  - Writers: in this process, one mutex (index_lock) serialises indexing;
 *    across processes BEGIN IMMEDIATE on search.db (the attached index.db is
 *    read-only, so that never takes index.db's write lock and never delays
 *    a delivery).  search.db is derived data: synchronous=NORMAL.
 *  - A search indexes its own mailbox first (synchronously), so a message
 *    committed before the call is always found.
 *  - Each thread has its own connection (like the store's readers); a
 *    statement is reset before any callback runs, so callbacks may search
 *    again. */
#include "store/search-private.h"
#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <unistr.h>

/* Messages indexed per transaction: large enough to amortise the commit,
 * small enough that a search waiting for the lock is not held up long. */
#define SEARCH_BATCH 256
/* The indexer looks for work this often even without a notification (other
 * processes, e.g. `tern`, deliver too). */
#define SEARCH_POLL_S 5
/* Background indexing waits until deliveries have been quiet this long, so
 * it does not compete with them for the CPU and the disk (its dirty pages
 * would otherwise ride on every delivery batch's syncfs) ... */
#define SEARCH_QUIET_MS 1000
/* ... but under sustained load it catches up at least this often.  A
 * search never waits for it: it indexes its own mailbox first. */
#define SEARCH_MAX_DELAY_S 60
/* Stale documents (expunged messages) are removed this often. */
#define SEARCH_CLEANUP_S 600

struct store_search {
	char *path;                  /* DATA/search.db */
	char *idx_uri;               /* file:DATA/index.db?mode=ro, URI-escaped */
	bool readonly;
	char *broken;                /* why the index cannot be used, or NULL */

	pthread_mutex_t conns_lock;
	struct store_conn **conns;   /* one per thread */
	size_t conn_count;

	pthread_mutex_t index_lock;  /* serialises indexing in this process */

	pthread_mutex_t lock;        /* protects the fields below */
	pthread_cond_t cond;
	bool pending, stopping, thread_started;
	pthread_t thread;
	atomic_bool stop;            /* stopping, polled between batches */
	atomic_bool yield;           /* a commit came (or stopping): background indexing
					pauses between batches */

	atomic_llong indexed;        /* messages indexed since open */
};

static const char *const migrations[] = {
	/* version 1 */
	"CREATE TABLE mailbox_state ("
	"  id INTEGER PRIMARY KEY,"
	"  uidvalidity INTEGER NOT NULL,"
	"  indexed_uid INTEGER NOT NULL);"
	"CREATE TABLE docs ("
	"  id INTEGER PRIMARY KEY,"
	"  mailbox_id INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  UNIQUE(mailbox_id, uid));"
	"CREATE VIRTUAL TABLE doc_text USING fts5("
	"  hfrom, hto, hcc, hbcc, subject, headers, body,"
	"  tokenize = 'trigram case_sensitive 1');",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SEARCH_SCHEMA_VERSION,
	       "one migration per search schema version");

/* ------------------------------------------------------------ statements */

static const char SQL_ATTACH[] = "ATTACH DATABASE ?1 AS idx";
static const char SQL_MB_STATE[] =
	"SELECT mb.uidvalidity, mb.uidnext, s.uidvalidity, s.indexed_uid"
	" FROM idx.mailboxes mb LEFT JOIN mailbox_state s ON s.id = mb.id WHERE mb.id = ?1";
static const char SQL_MB_PENDING[] =
	"SELECT mb.id FROM idx.mailboxes mb LEFT JOIN mailbox_state s ON s.id = mb.id"
	" WHERE s.id IS NULL OR s.uidvalidity != mb.uidvalidity"
	"  OR s.indexed_uid < mb.uidnext - 1 ORDER BY mb.id";
static const char SQL_MB_SET[] =
	"INSERT INTO mailbox_state(id, uidvalidity, indexed_uid) VALUES (?1, ?2, ?3)"
	" ON CONFLICT(id) DO UPDATE SET uidvalidity = ?2, indexed_uid = ?3";
static const char SQL_MB_PURGE_TEXT[] =
	"DELETE FROM doc_text WHERE rowid IN (SELECT id FROM docs WHERE mailbox_id = ?1)";
static const char SQL_MB_PURGE_DOCS[] = "DELETE FROM docs WHERE mailbox_id = ?1";
static const char SQL_MSG_NEW[] =
	"SELECT uid, file FROM idx.messages WHERE mailbox_id = ?1 AND uid > ?2"
	" ORDER BY uid LIMIT ?3";
static const char SQL_DOC_INSERT[] =
	"INSERT INTO docs(mailbox_id, uid) VALUES (?1, ?2)"
	" ON CONFLICT(mailbox_id, uid) DO NOTHING RETURNING id";
static const char SQL_DOC_FIND[] = "SELECT id FROM docs WHERE mailbox_id = ?1 AND uid = ?2";
static const char SQL_TEXT_DELETE[] = "DELETE FROM doc_text WHERE rowid = ?1";
static const char SQL_TEXT_INSERT[] =
	"INSERT INTO doc_text(rowid, hfrom, hto, hcc, hbcc, subject, headers, body)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static const char SQL_STALE[] =
	"SELECT d.id FROM docs d WHERE NOT EXISTS (SELECT 1 FROM idx.messages m"
	" WHERE m.mailbox_id = d.mailbox_id AND m.uid = d.uid) LIMIT 1000";
static const char SQL_DOC_DELETE[] = "DELETE FROM docs WHERE id = ?1";
static const char SQL_STATE_STALE[] =
	"DELETE FROM mailbox_state WHERE id NOT IN (SELECT id FROM idx.mailboxes)";
static const char SQL_COUNT[] = "SELECT count(*) FROM docs";

/* Searches.  Every one joins idx.messages, which drops expunged messages.
 * The FTS query runs first (FTS5 returns the matching rowids of all
 * mailboxes, then docs' primary key filters them): probing the FTS table
 * once per document of a large mailbox is far slower. */
static const char SQL_ALL[] =
	"SELECT uid FROM idx.messages WHERE mailbox_id = ?1 ORDER BY uid";
static const char SQL_FTS[] =
	"SELECT d.uid FROM doc_text t CROSS JOIN docs d ON d.id = t.rowid"
	" CROSS JOIN idx.messages m ON m.mailbox_id = d.mailbox_id AND m.uid = d.uid"
	" WHERE doc_text MATCH ?1 AND d.mailbox_id = ?2 ORDER BY d.uid";
static const char SQL_FTS_HEADERS[] =
	"SELECT d.uid, t.headers FROM doc_text t CROSS JOIN docs d ON d.id = t.rowid"
	" CROSS JOIN idx.messages m ON m.mailbox_id = d.mailbox_id AND m.uid = d.uid"
	" WHERE doc_text MATCH ?1 AND d.mailbox_id = ?2 ORDER BY d.uid";

/* Short keys: a scan of the mailbox's stored text with instr().  Why the
 * shadow table doc_text_content (FTS5 keeps a stored column N there as cN,
 * in declaration order: hfrom c0 ... body c6) rather than doc_text: reading
 * rows through the virtual table costs about six times more. */
#define SCAN_SQL(cond) \
	"SELECT d.uid FROM docs d CROSS JOIN doc_text_content t ON t.id = d.id" \
	" CROSS JOIN idx.messages m ON m.mailbox_id = d.mailbox_id AND m.uid = d.uid" \
	" WHERE d.mailbox_id = ?2 AND (" cond ") ORDER BY d.uid"
static const char *const SQL_SCAN[] = {
	[STORE_SEARCH_FROM] = SCAN_SQL("instr(t.c0, ?1) > 0"),
	[STORE_SEARCH_TO] = SCAN_SQL("instr(t.c1, ?1) > 0"),
	[STORE_SEARCH_CC] = SCAN_SQL("instr(t.c2, ?1) > 0"),
	[STORE_SEARCH_BCC] = SCAN_SQL("instr(t.c3, ?1) > 0"),
	[STORE_SEARCH_SUBJECT] = SCAN_SQL("instr(t.c4, ?1) > 0"),
	[STORE_SEARCH_HEADER] = NULL,
	[STORE_SEARCH_BODY] = SCAN_SQL("instr(t.c6, ?1) > 0"),
	[STORE_SEARCH_TEXT] = SCAN_SQL("instr(t.c5, ?1) > 0 OR instr(t.c6, ?1) > 0"),
};
static const char SQL_SCAN_HEADERS[] =
	"SELECT d.uid, t.c5 FROM docs d CROSS JOIN doc_text_content t ON t.id = d.id"
	" CROSS JOIN idx.messages m ON m.mailbox_id = d.mailbox_id AND m.uid = d.uid"
	" WHERE d.mailbox_id = ?2 AND instr(t.c5, ?1) > 0 ORDER BY d.uid";

static const char *const FTS_COLUMNS[] = {
	[STORE_SEARCH_FROM] = "hfrom",
	[STORE_SEARCH_TO] = "hto",
	[STORE_SEARCH_CC] = "hcc",
	[STORE_SEARCH_BCC] = "hbcc",
	[STORE_SEARCH_SUBJECT] = "subject",
	[STORE_SEARCH_HEADER] = "headers",
	[STORE_SEARCH_BODY] = "body",
	[STORE_SEARCH_TEXT] = "headers body",
};

/* ------------------------------------------------------------ connections */

/* "file:" URI of path with mode=ro, every byte outside the unreserved set
 * percent-encoded (RFC 3986 2.1), so any folder name works. */
static char *ro_uri(const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "file:");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("/-._~", *p) != NULL) {
			buf_append(&b, p, 1);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			buf_append(&b, e, 3);
		}
	}
	buf_append_str(&b, "?mode=ro");
	return buf_steal(&b);
}

/* Close a connection that failed to open: -2 when the file is not a
 * usable database (SQLITE_NOTADB, SQLITE_CORRUPT: it may be recreated),
 * -1 for anything else (busy, permissions...). */
static int conn_fail(struct store_conn *c)
{
	int code = c->db != NULL ? sqlite3_errcode(c->db) & 0xff : SQLITE_ERROR;

	store_conn_close(c);
	return code == SQLITE_NOTADB || code == SQLITE_CORRUPT ? -2 : -1;
}

/* Open a connection to search.db with index.db attached as "idx".  0, or
 * -1 / -2 (see conn_fail) with *error_r. */
static int conn_open(struct store_search *ss, struct store_conn *c, const char **error_r)
{
	int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI |
		(ss->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
	char *err = NULL;
	sqlite3_stmt *st;
	int rc;

	memset(c, 0, sizeof(*c));
	c->tid = pthread_self();
	rc = sqlite3_open_v2(ss->path, &c->db, flags, NULL);
	if (rc != SQLITE_OK) {
		*error_r = store_errf("cannot open %s: %s", ss->path,
				      c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		return conn_fail(c);
	}
	sqlite3_busy_timeout(c->db, STORE_BUSY_TIMEOUT_MS);
	if (!ss->readonly &&
	    store_exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", &err) < 0) {
		*error_r = store_err_take(err);
		return conn_fail(c);
	}
	if ((st = store_stmt(c, SQL_ATTACH, error_r)) == NULL) {
		return conn_fail(c);
	}
	sqlite3_bind_text(st, 1, ss->idx_uri, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_sqlerr(c, "attaching index.db");
		return conn_fail(c);
	}
	return 0;
}

/* This thread's connection to search.db (opened on first use). */
static struct store_conn *conn_get(struct store_search *ss, const char **error_r)
{
	pthread_t self = pthread_self();
	struct store_conn *c;

	if (ss->broken != NULL) {
		*error_r = store_errf("search index unavailable: %s", ss->broken);
		return NULL;
	}
	pthread_mutex_lock(&ss->conns_lock);
	for (size_t i = 0; i < ss->conn_count; i++) {
		if (pthread_equal(ss->conns[i]->tid, self)) {
			c = ss->conns[i];
			pthread_mutex_unlock(&ss->conns_lock);
			return c;
		}
	}
	pthread_mutex_unlock(&ss->conns_lock);

	c = xcalloc(1, sizeof(*c));
	if (conn_open(ss, c, error_r) < 0) {
		free(c);
		return NULL;
	}
	pthread_mutex_lock(&ss->conns_lock);
	ss->conns = xrealloc(ss->conns, (ss->conn_count + 1) * sizeof(*ss->conns));
	ss->conns[ss->conn_count++] = c;
	pthread_mutex_unlock(&ss->conns_lock);
	return c;
}

/* ------------------------------------------------------------ schema */

static int schema_read(struct store_conn *c, int *version_r, const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(c->db, "SELECT coalesce(max(version), 0) FROM main.schema_version",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_sqlerr(c, "reading the search schema version");
		return -1;
	}
	rc = sqlite3_step(st);
	*version_r = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		*error_r = store_sqlerr(c, "reading the search schema version");
		return -1;
	}
	return 0;
}

/* Bring search.db to STORE_SEARCH_SCHEMA_VERSION.  1 when the file holds
 * a newer or unreadable schema (the caller recreates it: derived data),
 * 0 on success, -1 on error. */
static int schema_migrate(struct store_conn *c, const char **error_r)
{
	char *err = NULL;
	int version;

	if (store_exec(c, "CREATE TABLE IF NOT EXISTS main.schema_version ("
			  "  version INTEGER PRIMARY KEY,"
			  "  applied INTEGER NOT NULL)", &err) < 0) {
		int code = sqlite3_errcode(c->db) & 0xff;
		*error_r = store_err_take(err);
		return code == SQLITE_NOTADB || code == SQLITE_CORRUPT ? 1 : -1;
	}
	if (store_exec(c, "BEGIN IMMEDIATE", &err) < 0) {
		*error_r = store_err_take(err);
		return -1;
	}
	if (schema_read(c, &version, error_r) < 0)
		goto fail;
	if (version > STORE_SEARCH_SCHEMA_VERSION) {
		store_exec(c, "ROLLBACK", NULL);
		*error_r = store_errf("search.db has schema version %d, newer than %d",
				      version, STORE_SEARCH_SCHEMA_VERSION);
		return 1;
	}
	for (; version < STORE_SEARCH_SCHEMA_VERSION; version++) {
		char *sql = xasprintf("%s INSERT INTO main.schema_version(version, applied)"
				      " VALUES (%d, %lld);", migrations[version], version + 1,
				      (long long)clock_now());
		int rc = store_exec(c, sql, &err);
		free(sql);
		if (rc < 0) {
			*error_r = store_err_take(err);
			goto fail;
		}
	}
	if (store_exec(c, "COMMIT", &err) < 0) {
		*error_r = store_err_take(err);
		goto fail;
	}
	return 0;
fail:
	store_exec(c, "ROLLBACK", NULL);
	return -1;
}

static void unlink_db(const char *path)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };

	for (size_t i = 0; i < 3; i++) {
		char *p = xasprintf("%s%s", path, suffixes[i]);
		if (unlink(p) < 0 && errno != ENOENT)
			log_warn("store", "event=search_unlink_failed path=%s error=%s",
				 log_quote(p), log_quote(strerror(errno)));
		free(p);
	}
}

/* Create (mode 0640, like index.db) and migrate search.db, recreating it
 * once if it is unusable. */
static int schema_setup(struct store_search *ss, const char **error_r)
{
	for (int attempt = 0;; attempt++) {
		struct store_conn c;
		int fd = open(ss->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, STORE_FILE_MODE);
		int rc;

		if (fd >= 0)
			close(fd);
		if ((rc = conn_open(ss, &c, error_r)) < 0) {
			if (rc == -1)
				return -1;
			rc = 1;
		} else {
			rc = schema_migrate(&c, error_r);
			store_conn_close(&c);
		}
		if (rc <= 0)
			return rc;
		if (attempt > 0)
			return -1;
		log_warn("store", "event=search_recreate path=%s reason=%s", log_quote(ss->path),
			 log_quote(*error_r));
		unlink_db(ss->path);
	}
}

/* ------------------------------------------------------------ indexing */

struct pending_msg {
	uint32_t uid;
	char *file;
};

/* Read a message file whole: mmap'd (the files never change once
 * written).  1 with *map_r and *len_r set, 0 when the file is gone, -1 on error. */
static int map_file(const char *path, void **map_r, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	*map_r = NULL;
	*len_r = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	if (st.st_size > 0) {
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			close(fd);
			return -1;
		}
		*map_r = m;
		*len_r = (size_t)st.st_size;
	}
	close(fd);
	return 1;
}

static void bind_buf(sqlite3_stmt *st, int i, const struct buf *b)
{
	sqlite3_bind_text(st, i, buf_cstr(b), (int)b->len, SQLITE_STATIC);
}

/* Index one message file as (mailbox_id, uid).  0, or -1 with *error_r. */
static int index_one(struct store *store, struct store_conn *c, int64_t mailbox_id,
		     const struct pending_msg *pm, const char **error_r)
{
	char *path = store_message_path(store, pm->file);
	struct search_doc doc;
	sqlite3_stmt *st;
	void *map;
	size_t len;
	int64_t id;
	int rc;

	rc = map_file(path, &map, &len);
	if (rc <= 0) {
		/* gone: expunged after our snapshot of index.db was taken */
		if (rc < 0)
			log_warn("store", "event=search_read_failed path=%s error=%s",
				 log_quote(path), log_quote(strerror(errno)));
		free(path);
		return 0;
	}
	free(path);
	search_doc_init(&doc);
	search_doc_extract(map != NULL ? map : "", len, &doc);
	if (map != NULL)
		munmap(map, len);

	rc = -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		if ((st = store_stmt(c, SQL_DOC_INSERT, error_r)) == NULL)
			goto out;
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, pm->uid);
		int step = sqlite3_step(st);
		id = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		sqlite3_reset(st);
		if (step == SQLITE_ROW)
			break;
		if (step != SQLITE_DONE) {
			*error_r = store_sqlerr(c, "inserting a search document");
			goto out;
		}
		/* A leftover document (the state row was lost): replace it.
		 * Cannot happen while the invariants hold; cheap to survive. */
		if ((st = store_stmt(c, SQL_DOC_FIND, error_r)) == NULL)
			goto out;
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, pm->uid);
		int64_t old = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		sqlite3_reset(st);
		if ((st = store_stmt(c, SQL_TEXT_DELETE, error_r)) == NULL)
			goto out;
		sqlite3_bind_int64(st, 1, old);
		sqlite3_step(st);
		sqlite3_reset(st);
		if ((st = store_stmt(c, SQL_DOC_DELETE, error_r)) == NULL)
			goto out;
		sqlite3_bind_int64(st, 1, old);
		sqlite3_step(st);
		sqlite3_reset(st);
	}
	if (id == 0) {
		*error_r = store_errf("cannot insert the search document of uid %u", pm->uid);
		goto out;
	}
	if ((st = store_stmt(c, SQL_TEXT_INSERT, error_r)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	bind_buf(st, 2, &doc.from);
	bind_buf(st, 3, &doc.to);
	bind_buf(st, 4, &doc.cc);
	bind_buf(st, 5, &doc.bcc);
	bind_buf(st, 6, &doc.subject);
	bind_buf(st, 7, &doc.headers);
	bind_buf(st, 8, &doc.body);
	if (sqlite3_step(st) != SQLITE_DONE) {
		*error_r = store_sqlerr(c, "indexing message text");
		sqlite3_reset(st);
		goto out;
	}
	sqlite3_reset(st);
	rc = 0;
out:
	search_doc_free(&doc);
	return rc;
}

static int step_done(struct store_conn *c, sqlite3_stmt *st, const char *what,
		     const char **error_r)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		*error_r = store_sqlerr(c, what);
		return -1;
	}
	return 0;
}

/* Inside the transaction: index up to max new messages of mailbox_id.
 * *done_r is set when the mailbox is then fully indexed. */
static int index_mailbox_txn(struct store *store, struct store_conn *c, int64_t mailbox_id,
			     unsigned max, bool *done_r, const char **error_r)
{
	struct pending_msg *msgs = NULL;
	size_t count = 0;
	sqlite3_stmt *st;
	int64_t uidvalidity, uidnext, indexed = 0;
	int rc = -1;

	*done_r = true;
	if ((st = store_stmt(c, SQL_MB_STATE, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			*error_r = store_sqlerr(c, "reading the mailbox for indexing");
			return -1;
		}
		return 0;       /* no such mailbox (any more) */
	}
	uidvalidity = sqlite3_column_int64(st, 0);
	uidnext = sqlite3_column_int64(st, 1);
	bool have_state = sqlite3_column_type(st, 2) != SQLITE_NULL;
	bool same = have_state && sqlite3_column_int64(st, 2) == uidvalidity;
	if (same)
		indexed = sqlite3_column_int64(st, 3);
	sqlite3_reset(st);
	if (same && indexed >= uidnext - 1)
		return 0;

	if (have_state && !same) {
		/* a new uidvalidity: what we had belongs to another mailbox */
		if ((st = store_stmt(c, SQL_MB_PURGE_TEXT, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, mailbox_id);
		if (step_done(c, st, "purging a mailbox's search text", error_r) < 0)
			return -1;
		if ((st = store_stmt(c, SQL_MB_PURGE_DOCS, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, mailbox_id);
		if (step_done(c, st, "purging a mailbox's search documents", error_r) < 0)
			return -1;
	}

	if ((st = store_stmt(c, SQL_MSG_NEW, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, indexed);
	sqlite3_bind_int64(st, 3, max);
	msgs = xcalloc(max, sizeof(*msgs));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && count < max) {
		msgs[count].uid = (uint32_t)sqlite3_column_int64(st, 0);
		msgs[count].file = store_col_dup(st, 1);
		count++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		*error_r = store_sqlerr(c, "listing messages to index");
		rc = -1;
		goto out;
	}
	rc = -1;
	for (size_t i = 0; i < count; i++) {
		if (msgs[i].file != NULL && index_one(store, c, mailbox_id, &msgs[i], error_r) < 0)
			goto out;
	}
	if (count == max) {
		indexed = msgs[count - 1].uid;
		*done_r = false;
	} else {
		indexed = uidnext - 1;
	}
	if ((st = store_stmt(c, SQL_MB_SET, error_r)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uidvalidity);
	sqlite3_bind_int64(st, 3, indexed);
	if (step_done(c, st, "recording the indexed mailbox state", error_r) < 0)
		goto out;
	rc = 0;
out:
	for (size_t i = 0; i < count; i++)
		free(msgs[i].file);
	free(msgs);
	if (rc == 0 && count > 0)
		atomic_fetch_add(&store->search->indexed, (long long)count);
	return rc;
}

/* One batch of mailbox_id in its own transaction, under the process lock. */
static int index_mailbox_batch(struct store *store, struct store_conn *c, int64_t mailbox_id,
			       unsigned max, bool *done_r, const char **error_r)
{
	struct store_search *ss = store->search;
	char *err = NULL;
	int rc;

	pthread_mutex_lock(&ss->index_lock);
	if (store_exec(c, "BEGIN IMMEDIATE", &err) < 0) {
		pthread_mutex_unlock(&ss->index_lock);
		*error_r = store_err_take(err);
		return -1;
	}
	rc = index_mailbox_txn(store, c, mailbox_id, max, done_r, error_r);
	if (rc == 0 && store_exec(c, "COMMIT", &err) < 0) {
		*error_r = store_err_take(err);
		rc = -1;
	}
	if (rc < 0)
		store_exec(c, "ROLLBACK", NULL);
	pthread_mutex_unlock(&ss->index_lock);
	return rc;
}

/* Is mailbox_id fully indexed?  A read only, no lock: the common case of a
 * search. 1 yes (or no such mailbox), 0 no, -1 error. */
static int mailbox_current(struct store_conn *c, int64_t mailbox_id, const char **error_r)
{
	sqlite3_stmt *st = store_stmt(c, SQL_MB_STATE, error_r);
	int rc, ret;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		ret = 1;
	else if (rc != SQLITE_ROW)
		ret = -1;
	else
		ret = sqlite3_column_type(st, 2) != SQLITE_NULL &&
		      sqlite3_column_int64(st, 2) == sqlite3_column_int64(st, 0) &&
		      sqlite3_column_int64(st, 3) >= sqlite3_column_int64(st, 1) - 1;
	sqlite3_reset(st);
	if (ret < 0)
		*error_r = store_sqlerr(c, "reading the search state");
	return ret;
}

static int index_mailbox(struct store *store, struct store_conn *c, int64_t mailbox_id,
			 const atomic_bool *stop, const char **error_r)
{
	bool done = false;
	int rc = mailbox_current(c, mailbox_id, error_r);

	if (rc != 0)
		return rc < 0 ? -1 : 0;
	while (!done && (stop == NULL || !atomic_load(stop)))
		if (index_mailbox_batch(store, c, mailbox_id, SEARCH_BATCH, &done, error_r) < 0)
			return -1;
	return 0;
}

/* Every mailbox with something to index.  stop (may be NULL) is polled
 * between batches. */
static int index_all(struct store *store, struct store_conn *c, const atomic_bool *stop,
		     const char **error_r)
{
	sqlite3_stmt *st = store_stmt(c, SQL_MB_PENDING, error_r);
	int64_t *ids = NULL;
	size_t count = 0, alloc = 0;
	int rc;

	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == alloc) {
			alloc = alloc ? alloc * 2 : 64;
			ids = xrealloc(ids, alloc * sizeof(*ids));
		}
		ids[count++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_sqlerr(c, "listing mailboxes to index");
		free(ids);
		return -1;
	}
	rc = 0;
	for (size_t i = 0; i < count && rc == 0 && (stop == NULL || !atomic_load(stop)); i++)
		rc = index_mailbox(store, c, ids[i], stop, error_r);
	free(ids);
	return rc;
}

/* Remove the documents of messages no longer in index.db, in chunks. */
static int cleanup(struct store *store, struct store_conn *c, const atomic_bool *stop,
		   const char **error_r)
{
	struct store_search *ss = store->search;
	int64_t ids[1000];
	size_t count;
	long long removed = 0;
	char *err = NULL;

	do {
		sqlite3_stmt *st;
		int rc = -1;

		pthread_mutex_lock(&ss->index_lock);
		count = 0;
		if (store_exec(c, "BEGIN IMMEDIATE", &err) < 0) {
			pthread_mutex_unlock(&ss->index_lock);
			*error_r = store_err_take(err);
			return -1;
		}
		if ((st = store_stmt(c, SQL_STALE, error_r)) == NULL)
			goto fail;
		while (count < 1000 && sqlite3_step(st) == SQLITE_ROW)
			ids[count++] = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		for (size_t i = 0; i < count; i++) {
			if ((st = store_stmt(c, SQL_TEXT_DELETE, error_r)) == NULL)
				goto fail;
			sqlite3_bind_int64(st, 1, ids[i]);
			if (step_done(c, st, "removing stale search text", error_r) < 0)
				goto fail;
			if ((st = store_stmt(c, SQL_DOC_DELETE, error_r)) == NULL)
				goto fail;
			sqlite3_bind_int64(st, 1, ids[i]);
			if (step_done(c, st, "removing stale search documents", error_r) < 0)
				goto fail;
		}
		if (count < 1000) {
			if ((st = store_stmt(c, SQL_STATE_STALE, error_r)) == NULL ||
			    step_done(c, st, "removing stale mailbox states", error_r) < 0)
				goto fail;
		}
		if (store_exec(c, "COMMIT", &err) < 0) {
			*error_r = store_err_take(err);
			goto fail;
		}
		rc = 0;
fail:
		if (rc < 0)
			store_exec(c, "ROLLBACK", NULL);
		pthread_mutex_unlock(&ss->index_lock);
		if (rc < 0)
			return -1;
		removed += (long long)count;
	} while (count == 1000 && (stop == NULL || !atomic_load(stop)));
	if (removed > 0)
		log_info("store", "event=search_cleanup removed=%lld", removed);
	return 0;
}

/* ------------------------------------------------------------ indexer thread */

static void *indexer_main(void *arg)
{
	struct store *store = arg;
	struct store_search *ss = store->search;
	time_t last_cleanup = 0;
	const char *err;
	struct store_conn *c = conn_get(ss, &err);

	if (c == NULL) {
		log_error("store", "event=search_indexer_failed error=%s", log_quote(err));
		return NULL;
	}
	pthread_mutex_lock(&ss->lock);
	ss->pending = true;             /* catch up with what arrived while closed */
	for (;;) {
		while (!ss->pending && !ss->stopping) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += SEARCH_POLL_S;
			if (pthread_cond_timedwait(&ss->cond, &ss->lock, &ts) == ETIMEDOUT)
				ss->pending = true;
		}
		if (ss->stopping)
			break;
		/* wait for a quiet moment: each commit restarts the wait, up to
		 * SEARCH_MAX_DELAY_S after the first one */
		struct timespec first, ts;
		bool forced = false;
		clock_gettime(CLOCK_REALTIME, &first);
		for (;;) {
			ss->pending = false;
			clock_gettime(CLOCK_REALTIME, &ts);
			if (ts.tv_sec - first.tv_sec >= SEARCH_MAX_DELAY_S) {
				forced = true;
				break;
			}
			ts.tv_nsec += SEARCH_QUIET_MS % 1000 * 1000000L;
			ts.tv_sec += SEARCH_QUIET_MS / 1000 + ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			while (!ss->stopping && !ss->pending &&
			       pthread_cond_timedwait(&ss->cond, &ss->lock, &ts) != ETIMEDOUT)
				;
			if (ss->stopping || !ss->pending)
				break;
		}
		if (ss->stopping)
			break;
		ss->pending = false;
		atomic_store(&ss->yield, false);
		pthread_mutex_unlock(&ss->lock);

		long long before = atomic_load(&ss->indexed);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		/* forced: catch up whatever the load; otherwise give way to the
		 * next commit (the rest is taken at the next quiet moment) */
		if (index_all(store, c, forced ? &ss->stop : &ss->yield, &err) < 0)
			log_warn("store", "event=search_index_failed error=%s", log_quote(err));
		long long n = atomic_load(&ss->indexed) - before;
		if (n > 0) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			log_debug("store", "event=search_indexed messages=%lld ms=%lld", n,
				  (long long)((t1.tv_sec - t0.tv_sec) * 1000 +
					      (t1.tv_nsec - t0.tv_nsec) / 1000000));
		}
		time_t now = time(NULL);
		if (now - last_cleanup >= SEARCH_CLEANUP_S) {
			last_cleanup = now;
			if (cleanup(store, c, &ss->stop, &err) < 0)
				log_warn("store", "event=search_cleanup_failed error=%s",
					 log_quote(err));
		}
		pthread_mutex_lock(&ss->lock);
	}
	pthread_mutex_unlock(&ss->lock);
	return NULL;
}

/* ------------------------------------------------------------ store hooks */

void store_search_open(struct store *store)
{
	struct store_search *ss = xcalloc(1, sizeof(*ss));
	const char *err;
	char *idx;

	ss->path = xasprintf("%s/search.db", store->dir);
	idx = xasprintf("%s/index.db", store->dir);
	ss->idx_uri = ro_uri(idx);
	free(idx);
	ss->readonly = store->opts.readonly;
	pthread_mutex_init(&ss->conns_lock, NULL);
	pthread_mutex_init(&ss->index_lock, NULL);
	pthread_mutex_init(&ss->lock, NULL);
	pthread_cond_init(&ss->cond, NULL);
	store->search = ss;

	if (ss->readonly) {
		if (access(ss->path, R_OK) < 0)
			ss->broken = xstrdup("search.db does not exist (never opened read-write)");
		return;
	}
	if (schema_setup(ss, &err) < 0) {
		ss->broken = xstrdup(err);
		log_error("store", "event=search_open_failed path=%s error=%s",
			  log_quote(ss->path), log_quote(err));
		return;
	}
	int rc = pthread_create(&ss->thread, NULL, indexer_main, store);
	if (rc != 0) {
		/* searches still index synchronously */
		log_error("store", "event=search_thread_failed error=%s", log_quote(strerror(rc)));
		return;
	}
	ss->thread_started = true;
}

void store_search_close(struct store *store)
{
	struct store_search *ss = store->search;

	if (ss == NULL)
		return;
	if (ss->thread_started) {
		pthread_mutex_lock(&ss->lock);
		ss->stopping = true;
		atomic_store(&ss->stop, true);
		atomic_store(&ss->yield, true);
		pthread_cond_broadcast(&ss->cond);
		pthread_mutex_unlock(&ss->lock);
		pthread_join(ss->thread, NULL);
	}
	store->search = NULL;
	for (size_t i = 0; i < ss->conn_count; i++) {
		store_conn_close(ss->conns[i]);
		free(ss->conns[i]);
	}
	free(ss->conns);
	pthread_mutex_destroy(&ss->conns_lock);
	pthread_mutex_destroy(&ss->index_lock);
	pthread_mutex_destroy(&ss->lock);
	pthread_cond_destroy(&ss->cond);
	free(ss->broken);
	free(ss->idx_uri);
	free(ss->path);
	free(ss);
}

void store_search_notify(struct store *store)
{
	struct store_search *ss = store->search;

	if (ss == NULL || !ss->thread_started)
		return;
	atomic_store(&ss->yield, true);
	pthread_mutex_lock(&ss->lock);
	ss->pending = true;
	pthread_cond_signal(&ss->cond);
	pthread_mutex_unlock(&ss->lock);
}

/* ------------------------------------------------------------ searching */

static struct store_conn *search_conn(struct store *store, const char **error_r)
{
	if (store->search == NULL) {
		*error_r = "the store has no search index";
		return NULL;
	}
	return conn_get(store->search, error_r);
}

/* needle as an FTS5 string: in double quotes, each '"' doubled. */
static char *fts_query(const char *columns, const char *needle)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	buf_printf(&b, "{%s} : \"", columns);
	for (const char *p = needle; *p; p++) {
		if (*p == '"')
			buf_append(&b, "\"", 1);
		buf_append(&b, p, 1);
	}
	buf_append(&b, "\"", 1);
	return buf_steal(&b);
}

/* Does the headers column text have a field name (lowercase) whose value
 * contains needle (folded)? */
static bool headers_match(const char *text, size_t len, const char *name, size_t name_len,
			  const char *needle)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		if ((size_t)(eol - p) >= name_len + 2 && memcmp(p, name, name_len) == 0 &&
		    p[name_len] == ':' && p[name_len + 1] == ' ') {
			const char *v = p + name_len + 2;
			if (*needle == '\0' || memmem(v, (size_t)(eol - v), needle, strlen(needle)))
				return true;
		}
		p = eol + 1;
	}
	return false;
}

struct uids {
	uint32_t *v;
	size_t count, alloc;
};

static void uids_add(struct uids *u, uint32_t uid)
{
	if (u->count == u->alloc) {
		u->alloc = u->alloc ? u->alloc * 2 : 64;
		u->v = xrealloc(u->v, u->alloc * sizeof(*u->v));
	}
	u->v[u->count++] = uid;
}

int store_search_text(struct store *store, int64_t mailbox_id, enum store_search_field field,
		      const char *header_name, const char *needle,
		      int (*cb)(void *ctx, uint32_t uid), void *ctx, const char **error_r)
{
	struct store_conn *c;
	struct buf folded, name;
	struct uids hits = { 0 };
	sqlite3_stmt *st;
	char *query = NULL;
	const char *sql;
	int rc = -1;

	if ((unsigned)field > STORE_SEARCH_TEXT) {
		*error_r = "unknown search field";
		return -1;
	}
	if (needle == NULL)
		needle = "";
	if (u8_check((const uint8_t *)needle, strlen(needle)) != NULL) {
		*error_r = "search key is not valid UTF-8";
		return -1;
	}
	if (field == STORE_SEARCH_HEADER) {
		if (header_name == NULL || *header_name == '\0') {
			*error_r = "SEARCH HEADER without a field name";
			return -1;
		}
	}
	if ((c = search_conn(store, error_r)) == NULL)
		return -1;
	if (!store->search->readonly && index_mailbox(store, c, mailbox_id, NULL, error_r) < 0)
		return -1;

	buf_init(&folded, BUF_UNLIMITED);
	buf_init(&name, BUF_UNLIMITED);
	search_fold(needle, strlen(needle), &folded);
	if (field == STORE_SEARCH_HEADER)
		search_fold(header_name, strlen(header_name), &name);
	/* trigram queries need three characters (not bytes) */
	size_t chars = u8_mbsnlen((const uint8_t *)buf_cstr(&folded), folded.len);
	bool headers = field == STORE_SEARCH_HEADER;

	if (folded.len == 0 && !headers) {
		sql = SQL_ALL;
	} else if (chars >= 3) {
		query = fts_query(FTS_COLUMNS[field], buf_cstr(&folded));
		sql = headers ? SQL_FTS_HEADERS : SQL_FTS;
	} else {
		sql = headers ? SQL_SCAN_HEADERS : SQL_SCAN[field];
	}
	if ((st = store_stmt(c, sql, error_r)) == NULL)
		goto out;
	if (sql == SQL_ALL) {
		sqlite3_bind_int64(st, 1, mailbox_id);
	} else {
		if (query != NULL)
			sqlite3_bind_text(st, 1, query, -1, SQLITE_STATIC);
		else
			bind_buf(st, 1, &folded);
		sqlite3_bind_int64(st, 2, mailbox_id);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint32_t uid = (uint32_t)sqlite3_column_int64(st, 0);
		if (headers) {
			const char *text = (const char *)sqlite3_column_text(st, 1);
			size_t len = (size_t)sqlite3_column_bytes(st, 1);
			if (text == NULL || !headers_match(text, len, buf_cstr(&name), name.len,
							   buf_cstr(&folded)))
				continue;
		}
		uids_add(&hits, uid);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_sqlerr(c, "searching");
		rc = -1;
		goto out;
	}
	rc = 0;
	/* the statement is reset: cb may search again on this thread */
	for (size_t i = 0; i < hits.count; i++)
		if (cb(ctx, hits.v[i]) != 0)
			break;
out:
	free(hits.v);
	free(query);
	buf_free(&folded);
	buf_free(&name);
	return rc;
}

int store_search_sync(struct store *store, const char **error_r)
{
	struct store_conn *c = search_conn(store, error_r);

	if (c == NULL)
		return -1;
	if (store->search->readonly) {
		*error_r = "the store is read-only";
		return -1;
	}
	if (index_all(store, c, NULL, error_r) < 0)
		return -1;
	return cleanup(store, c, NULL, error_r);
}

int store_search_reindex(struct store *store, const char **error_r)
{
	struct store_conn *c = search_conn(store, error_r);
	struct store_search *ss;
	char *err = NULL;
	int rc;

	if (c == NULL)
		return -1;
	ss = store->search;
	if (ss->readonly) {
		*error_r = "the store is read-only";
		return -1;
	}
	pthread_mutex_lock(&ss->index_lock);
	rc = store_exec(c, "BEGIN IMMEDIATE; DELETE FROM doc_text; DELETE FROM docs;"
			   " DELETE FROM mailbox_state; COMMIT;", &err);
	if (rc < 0) {
		store_exec(c, "ROLLBACK", NULL);
		*error_r = store_err_take(err);
	}
	pthread_mutex_unlock(&ss->index_lock);
	if (rc < 0 || index_all(store, c, NULL, error_r) < 0)
		return -1;
	log_info("store", "event=search_reindexed messages=%lld",
		 (long long)atomic_load(&ss->indexed));
	return 0;
}

int store_search_stats(struct store *store, int64_t *docs_r, int64_t *indexed_r,
		       const char **error_r)
{
	struct store_conn *c = search_conn(store, error_r);
	sqlite3_stmt *st;

	if (c == NULL || (st = store_stmt(c, SQL_COUNT, error_r)) == NULL)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		*error_r = store_sqlerr(c, "counting search documents");
		return -1;
	}
	*docs_r = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	*indexed_r = (int64_t)atomic_load(&store->search->indexed);
	return 0;
}
