/* store_verify: check the index against the message files.
 *
 * Checks, in one read transaction (a consistent snapshot of the index):
 *   - SQLite's own PRAGMA quick_check;
 *   - every message row has its file, of exactly the recorded size (a file
 *     may be shared by several rows: IMAP COPY);
 *   - per-mailbox counters (messages, bytes) match the rows, and uidnext is
 *     above every UID in the mailbox;
 *   - per-user usage (used_bytes, used_messages) matches the rows;
 *   - (schema 4) every mailbox has a MAILBOXID, and every message summary
 *     belongs to the user owning the message's mailbox (THREADID lookups
 *     are per user);
 * then walks messages/ for files no row references.  Unreferenced files
 * younger than STORE_VERIFY_GRACE_S are skipped: they may belong to a batch
 * being committed right now by this or another process.  Older ones are
 * left over from a crash before a commit (their delivery was never
 * acknowledged) or were put there by hand. */
#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/clock.h"

#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct verify {
	struct store *store;
	void (*cb)(void *ctx, const char *problem);
	void *ctx;
	int problems;
	char **files;
	size_t file_count;
};

static void __attribute__((format(printf, 2, 3))) problem(struct verify *v, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	v->problems++;
	if (v->cb != NULL)
		v->cb(v->ctx, s ? s : "(out of memory)");
	free(s);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int check_messages(struct verify *v, struct store_conn *c, const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(c->db, "SELECT m.id, b.id, b.name, u.address, m.uid, m.size, m.file"
			       " FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id"
			       " JOIN users u ON b.user_id = u.id ORDER BY m.id",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_sqlerr(c, "verify");
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *file = (const char *)sqlite3_column_text(st, 6);
		const char *mbox = (const char *)sqlite3_column_text(st, 2);
		const char *user = (const char *)sqlite3_column_text(st, 3);
		int64_t uid = sqlite3_column_int64(st, 4), size = sqlite3_column_int64(st, 5);
		struct stat sb;

		if (file == NULL || strlen(file) != 16) {
			problem(v, "message %lld (%s %s uid %lld): bad file name",
				(long long)sqlite3_column_int64(st, 0), user, mbox, (long long)uid);
			continue;
		}
		v->files = xrealloc(v->files, (v->file_count + 1) * sizeof(*v->files));
		v->files[v->file_count++] = xstrdup(file);
		char *path = store_message_path(v->store, file);
		if (stat(path, &sb) < 0)
			problem(v, "%s %s uid %lld: file messages/%.2s/%s: %s", user, mbox,
				(long long)uid, file, file, strerror(errno));
		else if (sb.st_size != size)
			problem(v, "%s %s uid %lld: file messages/%.2s/%s has %lld bytes, index "
				"says %lld", user, mbox, (long long)uid, file, file,
				(long long)sb.st_size, (long long)size);
		free(path);
	}
	if (rc != SQLITE_DONE)
		*error_r = store_sqlerr(c, "verify");
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (v->file_count > 1)
		qsort(v->files, v->file_count, sizeof(*v->files), cmp_str);
	/* COPY shares a file between rows (one per mailbox holding the
	 * message): keep each name once for the walk below */
	size_t out = 0;
	for (size_t i = 0; i < v->file_count; i++) {
		if (out > 0 && strcmp(v->files[out - 1], v->files[i]) == 0) {
			free(v->files[i]);
			continue;
		}
		v->files[out++] = v->files[i];
	}
	v->file_count = out;
	return 0;
}

/* Run sql; for each row, report(v, st). */
static int each_row(struct verify *v, struct store_conn *c, const char *sql,
		    void (*report)(struct verify *v, sqlite3_stmt *st), const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_sqlerr(c, "verify");
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		report(v, st);
	if (rc != SQLITE_DONE)
		*error_r = store_sqlerr(c, "verify");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void report_quick_check(struct verify *v, sqlite3_stmt *st)
{
	const char *s = (const char *)sqlite3_column_text(st, 0);

	if (s == NULL || strcmp(s, "ok") != 0)
		problem(v, "index.db: %s", s ? s : "quick_check failed");
}

static void report_mailbox(struct verify *v, sqlite3_stmt *st)
{
	const char *user = (const char *)sqlite3_column_text(st, 0);
	const char *name = (const char *)sqlite3_column_text(st, 1);
	int64_t messages = sqlite3_column_int64(st, 2), bytes = sqlite3_column_int64(st, 3);
	int64_t uidnext = sqlite3_column_int64(st, 4), count = sqlite3_column_int64(st, 5);
	int64_t sum = sqlite3_column_int64(st, 6), maxuid = sqlite3_column_int64(st, 7);

	if (messages != count)
		problem(v, "%s %s: %lld messages counted, %lld in the index", user, name,
			(long long)messages, (long long)count);
	if (bytes != sum)
		problem(v, "%s %s: %lld bytes counted, %lld in the index", user, name,
			(long long)bytes, (long long)sum);
	if (maxuid >= uidnext)
		problem(v, "%s %s: uidnext %lld is not above the highest UID %lld", user, name,
			(long long)uidnext, (long long)maxuid);
}

static void report_user(struct verify *v, sqlite3_stmt *st)
{
	const char *user = (const char *)sqlite3_column_text(st, 0);
	int64_t used_bytes = sqlite3_column_int64(st, 1), used_msgs = sqlite3_column_int64(st, 2);
	int64_t count = sqlite3_column_int64(st, 3), sum = sqlite3_column_int64(st, 4);

	if (used_msgs != count)
		problem(v, "%s: usage says %lld messages, the index has %lld", user,
			(long long)used_msgs, (long long)count);
	if (used_bytes != sum)
		problem(v, "%s: usage says %lld bytes, the index has %lld", user,
			(long long)used_bytes, (long long)sum);
}

static void report_objectid(struct verify *v, sqlite3_stmt *st)
{
	problem(v, "%s %s: no MAILBOXID", (const char *)sqlite3_column_text(st, 0),
		(const char *)sqlite3_column_text(st, 1));
}

static void report_summary_owner(struct verify *v, sqlite3_stmt *st)
{
	problem(v, "%s %s: %lld message summaries recorded for another user",
		(const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
		(long long)sqlite3_column_int64(st, 2));
}

static bool is_hex(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

static int walk_files(struct verify *v, const char **error_r)
{
	DIR *top = opendir(v->store->msg_dir);
	struct dirent *de;
	time_t now = time(NULL);

	if (top == NULL) {
		*error_r = store_errf("cannot read %s: %s", v->store->msg_dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(top)) != NULL) {
		if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
					     (de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		char *sub = xasprintf("%s/%s", v->store->msg_dir, de->d_name);
		DIR *d = is_hex(de->d_name, 2) ? opendir(sub) : NULL;
		if (d == NULL) {
			problem(v, "unexpected entry messages/%s", de->d_name);
			free(sub);
			continue;
		}
		struct dirent *fe;
		while ((fe = readdir(d)) != NULL) {
			const char *name = fe->d_name;
			const char *key = name;
			struct stat sb;

			if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
				continue;
			if (is_hex(name, 16) && strncmp(name, de->d_name, 2) == 0 &&
			    v->file_count > 0 && bsearch(&key, v->files, v->file_count, sizeof(*v->files), cmp_str))
				continue;
			char *path = xasprintf("%s/%s", sub, name);
			if (stat(path, &sb) == 0 && now - sb.st_mtime < STORE_VERIFY_GRACE_S) {
				free(path);
				continue;
			}
			free(path);
			problem(v, "unreferenced file messages/%s/%s", de->d_name, name);
		}
		closedir(d);
		free(sub);
	}
	closedir(top);
	return 0;
}

int store_verify(struct store *store, void (*cb)(void *ctx, const char *problem), void *ctx,
		 const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	struct verify v = { .store = store, .cb = cb, .ctx = ctx };
	int rc = -1;

	if (c == NULL)
		return -1;
	if (store_exec(c, "BEGIN", NULL) < 0) {
		*error_r = store_sqlerr(c, "verify");
		return -1;
	}
	if (each_row(&v, c, "PRAGMA quick_check", report_quick_check, error_r) < 0 ||
	    check_messages(&v, c, error_r) < 0 ||
	    each_row(&v, c, "SELECT u.address, b.name, b.messages, b.bytes, b.uidnext,"
		     " count(m.id), coalesce(sum(m.size), 0), coalesce(max(m.uid), 0)"
		     " FROM mailboxes b JOIN users u ON b.user_id = u.id"
		     " LEFT JOIN messages m ON m.mailbox_id = b.id GROUP BY b.id",
		     report_mailbox, error_r) < 0 ||
	    each_row(&v, c, "SELECT u.address, u.used_bytes, u.used_messages,"
		     " count(m.id), coalesce(sum(m.size), 0) FROM users u"
		     " LEFT JOIN mailboxes b ON b.user_id = u.id"
		     " LEFT JOIN messages m ON m.mailbox_id = b.id GROUP BY u.id",
		     report_user, error_r) < 0 ||
	    each_row(&v, c, "SELECT u.address, b.name FROM mailboxes b"
		     " JOIN users u ON b.user_id = u.id WHERE b.objectid IS NULL",
		     report_objectid, error_r) < 0 ||
	    each_row(&v, c, "SELECT u.address, b.name, count(*) FROM summaries s"
		     " JOIN messages m ON m.id = s.id JOIN mailboxes b ON b.id = m.mailbox_id"
		     " JOIN users u ON u.id = b.user_id WHERE s.user_id != b.user_id"
		     " GROUP BY b.id", report_summary_owner, error_r) < 0) {
		store_exec(c, "ROLLBACK", NULL);
		goto out;
	}
	store_exec(c, "COMMIT", NULL);
	if (walk_files(&v, error_r) < 0)
		goto out;
	rc = v.problems;
out:
	for (size_t i = 0; i < v.file_count; i++)
		free(v.files[i]);
	free(v.files);
	return rc;
}
