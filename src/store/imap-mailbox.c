/* IMAP mailbox management: CREATE, DELETE, RENAME, SUBSCRIBE, the \Recent
 * claim, and the request plumbing shared by every asynchronous IMAP write
 * (store.h, "IMAP: ...").
 *
 * Every write is one commit-thread request (store_op_submit), batched with
 * deliveries and run inside the batch transaction in its own savepoint, so
 * a failure changes nothing.  A failure that IMAP reports with a response
 * code (RFC 5530: ALREADYEXISTS, NONEXISTENT, INUSE, CANNOT, LIMIT,
 * OVERQUOTA; RFC 6154: USEATTR) is returned in store_write_result.code.
 * Events (lib/notify.h) are recorded on the op and published by the
 * commit thread after the commit.
 *
 * Rules (RFC 3501 6.3.3-6.3.7, RFC 9051 6.3.4-6.3.8):
 *  - names are checked by store_mailbox_name_ok (CANNOT) and stored with
 *    INBOX in canonical case; INBOX always exists and cannot be deleted;
 *  - CREATE makes missing parents; DELETE refuses a mailbox with children
 *    (INUSE, as Dovecot); RENAME takes the children along, and RENAME of
 *    INBOX moves its messages into a new mailbox and leaves INBOX empty
 *    (its children stay);
 *  - a mailbox keeps its UIDVALIDITY across RENAME; a new mailbox takes a
 *    never-used one, so a name deleted and created again gets a new value;
 *  - the \Recent mark (mailboxes.recent_uid) moves to uidnext when a
 *    session claims it: only one session sees a message as recent;
 *    messages at or above the mark are unclaimed (STATUS RECENT). */
#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Per-user cap on mailboxes (LIMIT): bounds LIST output and RENAME work. */
#define STORE_MAILBOXES_MAX 10000

static const char SQL_MB_OWNER[] =
	"SELECT user_id, uidvalidity, highestmodseq FROM mailboxes WHERE id = ?1";
static const char SQL_MB_COUNT[] =
	"SELECT count(*) FROM mailboxes WHERE user_id = ?1";
static const char SQL_MB_INSERT[] =
	"INSERT INTO mailboxes(user_id, name, special_use, uidvalidity) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_MB_CHILD[] =
	"SELECT 1 FROM mailboxes WHERE user_id = ?1 AND instr(name, ?2) = 1 LIMIT 1";
static const char SQL_MB_CHILDREN[] =
	"SELECT id, name FROM mailboxes WHERE user_id = ?1 AND instr(name, ?2) = 1";
static const char SQL_MB_RENAME[] =
	"UPDATE mailboxes SET name = ?2 WHERE id = ?1";
static const char SQL_MB_USAGE[] =
	"SELECT count(*), coalesce(sum(size), 0) FROM messages WHERE mailbox_id = ?1";
static const char SQL_MB_FILES[] =
	"SELECT file FROM messages WHERE mailbox_id = ?1";
static const char SQL_MB_DELETE[] =
	"DELETE FROM mailboxes WHERE id = ?1";
static const char SQL_USER_SUB[] =
	"UPDATE users SET used_bytes = used_bytes - ?1, used_messages = used_messages - ?2"
	" WHERE id = ?3";
static const char SQL_SUB_ADD[] =
	"INSERT OR IGNORE INTO subscriptions(user_id, name) VALUES (?1, ?2)";
static const char SQL_SUB_DEL[] =
	"DELETE FROM subscriptions WHERE user_id = ?1 AND name = ?2";
static const char SQL_SUB_LIST[] =
	"SELECT name FROM subscriptions WHERE user_id = ?1 ORDER BY name";
static const char SQL_RECENT_GET[] =
	"SELECT recent_uid, uidnext FROM mailboxes WHERE id = ?1";
static const char SQL_RECENT_SET[] =
	"UPDATE mailboxes SET recent_uid = uidnext WHERE id = ?1";
static const char SQL_RECENT_COUNT[] =
	"SELECT count(*) FROM messages WHERE mailbox_id = ?1"
	" AND uid >= (SELECT recent_uid FROM mailboxes WHERE id = ?1)";

static const char *const special_uses[] = {
	"\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash",
};

/* ------------------------------------------------------------- plumbing */

struct store_imap_op *store_imap_op_new(int (*fn)(struct store *store, struct store_op *op,
						 char **error_r),
					store_write_cb *cb, void *ctx)
{
	struct store_imap_op *p = xcalloc(1, sizeof(*p));

	p->op.fn = fn;
	p->cb = cb;
	p->ctx = ctx;
	return p;
}

void store_imap_op_reset(struct store_imap_op *p)
{
	free(p->src_uids);
	free(p->dst_uids);
	free(p->modified);
	p->src_uids = p->dst_uids = p->modified = NULL;
	p->result_count = p->modified_count = 0;
	p->code = NULL;
	p->modseq = 0;
	p->uidvalidity = 0;
	p->new_mailbox_id = 0;
	p->first_recent = 0;
}

void store_imap_op_free(struct store_op *op)
{
	struct store_imap_op *p = (struct store_imap_op *)op;

	store_imap_op_reset(p);
	free(p->name);
	free(p->name2);
	free(p->flags);
	free(p->uids);
	free(p->op.file_data);
	store_summary_data_free(&p->summary);
	free(p->value);
	if (p->arg_free != NULL)
		p->arg_free(p->arg);
	free(p);
}

int store_imap_fail(struct store_imap_op *p, const char *code, char **error_r,
		    const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	p->code = code;
	*error_r = s ? s : xstrdup("failed");
	return -1;
}

static void imap_done(void *ctx, int status, const char *error)
{
	struct store_imap_op *p = ctx;
	struct store_write_result r = { .status = status };

	if (status < 0) {
		r.error = error ? error : "store write failed";
		r.code = p->code;
	} else {
		r.modseq = p->modseq;
		r.uidvalidity = p->uidvalidity;
		r.src_uids = p->src_uids;
		r.dst_uids = p->dst_uids;
		r.count = p->result_count;
		r.modified_uids = p->modified;
		r.modified_count = p->modified_count;
		r.mailbox_id = p->new_mailbox_id;
	}
	p->cb(p->ctx, &r);
}

int store_imap_op_submit(struct store *store, struct event_base *base, struct store_imap_op *p)
{
	if (p->cb == NULL ||
	    store_op_submit(store, &p->op, store_imap_op_free, base, imap_done, p) < 0) {
		store_imap_op_free(&p->op);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------- writer-side helpers */

int store_wmailbox_get(struct store *store, int64_t mailbox_id, int64_t *user_id_r,
		       uint32_t *uidvalidity_r, int64_t *highestmodseq_r, char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, SQL_MB_OWNER, error_r);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (user_id_r)
			*user_id_r = sqlite3_column_int64(st, 0);
		if (uidvalidity_r)
			*uidvalidity_r = (uint32_t)sqlite3_column_int64(st, 1);
		if (highestmodseq_r)
			*highestmodseq_r = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_sqlerr_dup(c, "reading mailbox");
	return -1;
}

static int insert_mailbox(struct store *store, int64_t user_id, const char *name,
			  const char *special_use, int64_t *id_r, char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	uint32_t uidv;

	if (store_next_uidvalidity(store, &uidv, error_r) < 0)
		return -1;
	if ((st = store_wstmt(c, SQL_MB_INSERT, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	store_bind_text(st, 3, special_use);
	sqlite3_bind_int64(st, 4, uidv);
	if (store_step_done(c, st, error_r) < 0)
		return -1;
	*id_r = sqlite3_last_insert_rowid(c->db);
	return 0;
}

static int count_mailboxes(struct store *store, int64_t user_id, int64_t *n_r, char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, SQL_MB_COUNT, error_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		*error_r = store_sqlerr_dup(c, "counting mailboxes");
		sqlite3_reset(st);
		return -1;
	}
	*n_r = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

/* Create name (canonical, checked) and its missing parents; *id_r is the
 * new mailbox.  The user's special-use set exists already. */
static int create_with_parents(struct store *store, struct store_imap_op *p, int64_t user_id,
			       const char *name, const char *special_use, int64_t *id_r,
			       char **error_r)
{
	int64_t count, id;
	int rc;

	if (count_mailboxes(store, user_id, &count, error_r) < 0)
		return -1;
	for (const char *s = strchr(name, '/'); s != NULL; s = strchr(s + 1, '/')) {
		char *parent = xstrndup(name, (size_t)(s - name));
		rc = store_wmailbox_find(store, user_id, parent, &id, error_r);
		if (rc == 0 && count + 1 >= STORE_MAILBOXES_MAX)
			rc = store_imap_fail(p, "LIMIT", error_r, "too many mailboxes");
		else if (rc == 0 && (rc = insert_mailbox(store, user_id, parent, NULL, &id,
							  error_r)) == 0) {
			count++;
			store_op_add_event(&p->op, user_id, id, NOTIFY_MAILBOX, 1);
		}
		free(parent);
		if (rc < 0)
			return -1;
	}
	if (count >= STORE_MAILBOXES_MAX)
		return store_imap_fail(p, "LIMIT", error_r, "too many mailboxes");
	if (insert_mailbox(store, user_id, name, special_use, id_r, error_r) < 0)
		return -1;
	store_op_add_event(&p->op, user_id, *id_r, NOTIFY_MAILBOX, 1);
	return 0;
}

/* Check and canonicalise a name argument for fn; NULL after failing. */
static char *checked_name(struct store_imap_op *p, const char *name, char **error_r)
{
	const char *why;

	if (!store_mailbox_name_ok(name, &why)) {
		store_imap_fail(p, "CANNOT", error_r, "%s", why);
		return NULL;
	}
	return store_mailbox_canon(name);
}

/* The user must exist; creates INBOX and the special-use set if missing. */
static int user_ready(struct store *store, struct store_imap_op *p, char **error_r)
{
	char *err = NULL;

	if (store_mailboxes_ensure(store, p->user_id, &err) < 0) {
		p->code = "NONEXISTENT";
		*error_r = err;
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- CREATE */

static int op_create(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;
	char *name;
	int64_t id;
	int rc;

	store_imap_op_reset(p);
	if (p->name2 != NULL) {
		bool ok = false;
		for (size_t i = 0; i < sizeof(special_uses) / sizeof(special_uses[0]); i++)
			ok |= strcasecmp(p->name2, special_uses[i]) == 0;
		if (!ok)
			return store_imap_fail(p, "USEATTR", error_r,
					       "unsupported special-use attribute");
	}
	if ((name = checked_name(p, p->name, error_r)) == NULL)
		return -1;
	if (user_ready(store, p, error_r) < 0) {
		free(name);
		return -1;
	}
	rc = store_wmailbox_find(store, p->user_id, name, &id, error_r);
	if (rc > 0)
		rc = store_imap_fail(p, "ALREADYEXISTS", error_r, "mailbox already exists");
	if (rc == 0) {
		/* the attribute in its RFC 6154 spelling */
		const char *use = NULL;
		for (size_t i = 0; p->name2 && i < sizeof(special_uses) / sizeof(special_uses[0]); i++)
			if (strcasecmp(p->name2, special_uses[i]) == 0)
				use = special_uses[i];
		rc = create_with_parents(store, p, p->user_id, name, use, &id, error_r);
	}
	if (rc == 0) {
		p->new_mailbox_id = id;
		p->modseq = 1;
		log_info("store", "event=mailbox_create user_id=%lld mailbox_id=%lld name=%s",
			 (long long)p->user_id, (long long)id, log_quote(name));
	}
	free(name);
	return rc;
}

int store_mailbox_create(struct store *store, struct event_base *base, int64_t user_id,
			 const char *name, const char *special_use, store_write_cb *cb,
			 void *ctx)
{
	struct store_imap_op *p;

	if (name == NULL)
		return -1;
	p = store_imap_op_new(op_create, cb, ctx);
	p->user_id = user_id;
	p->name = xstrdup(name);
	p->name2 = special_use ? xstrdup(special_use) : NULL;
	return store_imap_op_submit(store, base, p);
}

/* ---------------------------------------------------------------- DELETE */

static int has_children(struct store *store, int64_t user_id, const char *name, char **error_r)
{
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, SQL_MB_CHILD, error_r);
	char *prefix = xasprintf("%s/", name);
	int rc;

	if (st == NULL) {
		free(prefix);
		return -1;
	}
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	free(prefix);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_sqlerr_dup(c, "listing mailboxes");
	return -1;
}

static int op_delete(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	int64_t id, count, bytes;
	char *name;
	int rc;

	store_imap_op_reset(p);
	if ((name = checked_name(p, p->name, error_r)) == NULL)
		return -1;
	if (strcmp(name, "INBOX") == 0) {
		free(name);
		return store_imap_fail(p, "CANNOT", error_r, "INBOX cannot be deleted");
	}
	if (user_ready(store, p, error_r) < 0)
		goto fail;
	rc = store_wmailbox_find(store, p->user_id, name, &id, error_r);
	if (rc == 0)
		store_imap_fail(p, "NONEXISTENT", error_r, "mailbox does not exist");
	if (rc <= 0)
		goto fail;
	if ((rc = has_children(store, p->user_id, name, error_r)) != 0) {
		if (rc > 0)
			store_imap_fail(p, "INUSE", error_r, "mailbox has children, delete them first");
		goto fail;
	}

	/* usage to give back, files to unlink after the commit */
	if ((st = store_wstmt(c, SQL_MB_USAGE, error_r)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		*error_r = store_sqlerr_dup(c, "mailbox usage");
		sqlite3_reset(st);
		goto fail;
	}
	count = sqlite3_column_int64(st, 0);
	bytes = sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	if ((st = store_wstmt(c, SQL_MB_FILES, error_r)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		store_op_add_unlink(op, store_message_path(store,
					(const char *)sqlite3_column_text(st, 0)));
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_sqlerr_dup(c, "listing message files");
		goto fail;
	}
	/* messages, expunge history and keywords go with it (ON DELETE CASCADE) */
	if ((st = store_wstmt(c, SQL_MB_DELETE, error_r)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	if (store_step_done(c, st, error_r) < 0)
		goto fail;
	if (count > 0) {
		if ((st = store_wstmt(c, SQL_USER_SUB, error_r)) == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, bytes);
		sqlite3_bind_int64(st, 2, count);
		sqlite3_bind_int64(st, 3, p->user_id);
		if (store_step_done(c, st, error_r) < 0)
			goto fail;
	}
	store_op_add_event(op, p->user_id, id, NOTIFY_MAILBOX | NOTIFY_MESSAGE_EXPUNGE, 0);
	log_info("store", "event=mailbox_delete user_id=%lld mailbox_id=%lld name=%s messages=%lld",
		 (long long)p->user_id, (long long)id, log_quote(name), (long long)count);
	free(name);
	return 0;
fail:
	free(name);
	return -1;
}

int store_mailbox_delete(struct store *store, struct event_base *base, int64_t user_id,
			 const char *name, store_write_cb *cb, void *ctx)
{
	struct store_imap_op *p;

	if (name == NULL)
		return -1;
	p = store_imap_op_new(op_delete, cb, ctx);
	p->user_id = user_id;
	p->name = xstrdup(name);
	return store_imap_op_submit(store, base, p);
}

/* ---------------------------------------------------------------- RENAME */

struct child {
	int64_t id;
	char *new_name;
};

static void children_free(struct child *ch, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ch[i].new_name);
	free(ch);
}

/* RENAME INBOX (RFC 3501 6.3.5): its messages move into a new mailbox
 * named to, INBOX stays (empty), its children stay where they are. */
static int rename_inbox(struct store *store, struct store_imap_op *p, int64_t inbox_id,
			const char *to, char **error_r)
{
	struct store_row *rows = NULL;
	size_t n = 0;
	int64_t new_id, modseq = 0, dest_modseq = 0;
	int rc;

	if (create_with_parents(store, p, p->user_id, to, NULL, &new_id, error_r) < 0)
		return -1;
	if (store_rows_load(store, inbox_id, STORE_ROWS_ALL, 0, &rows, &n, error_r) < 0)
		return -1;
	rc = 0;
	if (n > 0) {
		rc = store_mailbox_bump(store, inbox_id, NULL, NULL, &modseq, error_r);
		if (rc > 0)
			rc = store_rows_remove(store, &p->op, p->user_id, inbox_id, modseq, rows, n,
					       new_id, NULL, &dest_modseq, error_r);
		else if (rc == 0)
			rc = store_imap_fail(p, "NONEXISTENT", error_r, "INBOX vanished");
		/* keywords travel with the messages */
		for (size_t i = 0; rc == 0 && i < n; i++)
			rc = store_keywords_add(store, new_id, rows[i].flags, error_r);
	}
	store_rows_free(rows, n);
	p->new_mailbox_id = new_id;
	p->modseq = (uint64_t)(n > 0 ? dest_modseq : 1);
	return rc;
}

static int op_rename(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;
	struct store_conn *c = &store->wconn;
	struct child *ch = NULL;
	size_t nch = 0, alloc = 0;
	char *from = NULL, *to = NULL, *prefix = NULL;
	sqlite3_stmt *st;
	int64_t from_id, to_id;
	int rc = -1;

	store_imap_op_reset(p);
	if ((from = checked_name(p, p->name, error_r)) == NULL ||
	    (to = checked_name(p, p->name2, error_r)) == NULL)
		goto out;
	if (user_ready(store, p, error_r) < 0)
		goto out;
	rc = store_wmailbox_find(store, p->user_id, from, &from_id, error_r);
	if (rc == 0)
		rc = store_imap_fail(p, "NONEXISTENT", error_r, "mailbox does not exist");
	if (rc < 0)
		goto out;
	rc = store_wmailbox_find(store, p->user_id, to, &to_id, error_r);
	if (rc > 0)
		rc = store_imap_fail(p, "ALREADYEXISTS", error_r, "target mailbox already exists");
	if (rc < 0)
		goto out;
	prefix = xasprintf("%s/", from);
	/* INBOX's children stay, so "INBOX" -> "INBOX/old" is fine */
	if (strcmp(from, "INBOX") != 0 && strncmp(to, prefix, strlen(prefix)) == 0) {
		rc = store_imap_fail(p, "CANNOT", error_r, "cannot move a mailbox into itself");
		goto out;
	}
	if (strcmp(from, "INBOX") == 0) {
		rc = rename_inbox(store, p, from_id, to, error_r);
		if (rc == 0)
			log_info("store", "event=mailbox_rename user_id=%lld from=INBOX to=%s "
				 "mailbox_id=%lld", (long long)p->user_id, log_quote(to),
				 (long long)p->new_mailbox_id);
		goto out;
	}

	/* the children, each with its new name, checked before anything changes */
	rc = -1;
	if ((st = store_wstmt(c, SQL_MB_CHILDREN, error_r)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, p->user_id);
	sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
	int src;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		const char *old = (const char *)sqlite3_column_text(st, 1);
		if (nch == alloc) {
			alloc = alloc ? alloc * 2 : 8;
			ch = xrealloc(ch, alloc * sizeof(*ch));
		}
		ch[nch].id = sqlite3_column_int64(st, 0);
		ch[nch].new_name = xasprintf("%s/%s", to, old + strlen(prefix));
		nch++;
	}
	sqlite3_reset(st);
	if (src != SQLITE_DONE) {
		*error_r = store_sqlerr_dup(c, "listing mailboxes");
		goto out;
	}
	for (size_t i = 0; i < nch; i++) {
		const char *why;
		int64_t other;
		if (!store_mailbox_name_ok(ch[i].new_name, &why)) {
			rc = store_imap_fail(p, "CANNOT", error_r, "%s: %s", why, ch[i].new_name);
			goto out;
		}
		rc = store_wmailbox_find(store, p->user_id, ch[i].new_name, &other, error_r);
		if (rc > 0)
			rc = store_imap_fail(p, "ALREADYEXISTS", error_r, "%s already exists",
					     ch[i].new_name);
		if (rc < 0)
			goto out;
	}
	/* missing parents of the new name */
	for (const char *s = strchr(to, '/'); s != NULL; s = strchr(s + 1, '/')) {
		char *parent = xstrndup(to, (size_t)(s - to));
		int64_t id;
		rc = store_wmailbox_find(store, p->user_id, parent, &id, error_r);
		if (rc == 0 && (rc = insert_mailbox(store, p->user_id, parent, NULL, &id,
						     error_r)) == 0)
			store_op_add_event(op, p->user_id, id, NOTIFY_MAILBOX, 1);
		free(parent);
		if (rc < 0)
			goto out;
	}
	rc = -1;
	for (size_t i = 0; i <= nch; i++) {
		if ((st = store_wstmt(c, SQL_MB_RENAME, error_r)) == NULL)
			goto out;
		sqlite3_bind_int64(st, 1, i < nch ? ch[i].id : from_id);
		sqlite3_bind_text(st, 2, i < nch ? ch[i].new_name : to, -1, SQLITE_STATIC);
		if (store_step_done(c, st, error_r) < 0)
			goto out;
		store_op_add_event(op, p->user_id, i < nch ? ch[i].id : from_id, NOTIFY_MAILBOX, 0);
	}
	p->new_mailbox_id = from_id;
	rc = 0;
	log_info("store", "event=mailbox_rename user_id=%lld from=%s to=%s children=%zu",
		 (long long)p->user_id, log_quote(from), log_quote(to), nch);
out:
	children_free(ch, nch);
	free(prefix);
	free(from);
	free(to);
	return rc;
}

int store_mailbox_rename(struct store *store, struct event_base *base, int64_t user_id,
			 const char *from, const char *to, store_write_cb *cb, void *ctx)
{
	struct store_imap_op *p;

	if (from == NULL || to == NULL)
		return -1;
	p = store_imap_op_new(op_rename, cb, ctx);
	p->user_id = user_id;
	p->name = xstrdup(from);
	p->name2 = xstrdup(to);
	return store_imap_op_submit(store, base, p);
}

/* ------------------------------------------------------------- SUBSCRIBE */

static int op_subscribe(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	char *name;
	int rc;

	store_imap_op_reset(p);
	if ((name = checked_name(p, p->name, error_r)) == NULL)
		return -1;
	if (user_ready(store, p, error_r) < 0) {
		free(name);
		return -1;
	}
	if ((st = store_wstmt(c, p->subscribe ? SQL_SUB_ADD : SQL_SUB_DEL, error_r)) == NULL) {
		free(name);
		return -1;
	}
	sqlite3_bind_int64(st, 1, p->user_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = store_step_done(c, st, error_r);
	free(name);
	if (rc == 0)
		store_op_add_event(op, p->user_id, 0, NOTIFY_SUBSCRIPTION, 0);
	return rc;
}

int store_subscribe(struct store *store, struct event_base *base, int64_t user_id,
		    const char *name, bool subscribe, store_write_cb *cb, void *ctx)
{
	struct store_imap_op *p;

	if (name == NULL)
		return -1;
	p = store_imap_op_new(op_subscribe, cb, ctx);
	p->user_id = user_id;
	p->name = xstrdup(name);
	p->subscribe = subscribe;
	return store_imap_op_submit(store, base, p);
}

struct name_cb {
	int (*cb)(void *ctx, const char *name);
	void *ctx;
};

static int name_row(sqlite3_stmt *st, void *arg)
{
	struct name_cb *a = arg;
	const char *name = (const char *)sqlite3_column_text(st, 0);

	return a->cb(a->ctx, name ? name : "");
}

int store_subscription_list(struct store *store, int64_t user_id,
			    int (*cb)(void *ctx, const char *name), void *ctx,
			    const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	struct name_cb a = { cb, ctx };
	sqlite3_stmt *st;

	if (c == NULL || (st = store_stmt(c, SQL_SUB_LIST, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	return store_each_row(c, st, name_row, &a, "listing subscriptions", error_r);
}

/* ---------------------------------------------------------------- Recent */

static int op_claim_recent(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st = store_wstmt(c, SQL_RECENT_GET, error_r);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, p->mailbox_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		p->first_recent = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return store_imap_fail(p, "NONEXISTENT", error_r, "mailbox does not exist");
	if (rc != SQLITE_ROW) {
		*error_r = store_sqlerr_dup(c, "reading the recent mark");
		return -1;
	}
	if ((st = store_wstmt(c, SQL_RECENT_SET, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, p->mailbox_id);
	return store_step_done(c, st, error_r);
}

int store_mailbox_claim_recent(struct store *store, int64_t mailbox_id,
			       uint32_t *first_recent_uid_r, const char **error_r)
{
	struct store_imap_op p = { .op.fn = op_claim_recent, .mailbox_id = mailbox_id };
	int rc = store_run_op(store, &p.op, error_r);

	if (rc == 0)
		*first_recent_uid_r = p.first_recent;
	return rc;
}

int store_mailbox_unclaimed_recent(struct store *store, int64_t mailbox_id,
				   uint32_t *count_r, const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	sqlite3_stmt *st;
	int rc;

	*count_r = 0;
	if (c == NULL || (st = store_stmt(c, SQL_RECENT_COUNT, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*count_r = (uint32_t)sqlite3_column_int64(st, 0);
	else
		*error_r = store_sqlerr(c, "counting recent messages");
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}
