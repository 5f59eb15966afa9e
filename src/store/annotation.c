/* Annotations (RFC 5464 METADATA): entries such as "/private/comment" or
 * "/shared/vendor/x/y" on a mailbox, or on the server (mailbox_id 0), per
 * user (store.h, "Annotations").
 *
 * Invariants: names arrive validated and lowercased by the IMAP layer and
 * are stored as given; values are opaque bytes (RFC 5464 allows binary
 * literals), stored as BLOBs with their length.  Rows are keyed by
 * (user, mailbox id, entry): RENAME keeps them (the id does not change);
 * deleting the mailbox removes them (trigger mailboxes_annotations, schema
 * 4), deleting the user too (foreign key).  Writes go through the commit
 * thread like every write; reads use the thread's read connection.
 * Listing with depth 1 / infinity (RFC 5464 4.2.2) is a range scan over
 * the names that start with entry + "/", in byte order. */
#include "store/store-private.h"
#include "lib/buf.h"

#include <stdlib.h>
#include <string.h>

static const char SQL_ANN_SET[] =
	"INSERT INTO annotations(user_id, mailbox_id, entry, value) VALUES (?1, ?2, ?3, ?4)"
	" ON CONFLICT(user_id, mailbox_id, entry) DO UPDATE SET value = excluded.value";
static const char SQL_ANN_DEL[] =
	"DELETE FROM annotations WHERE user_id = ?1 AND mailbox_id = ?2 AND entry = ?3";
static const char SQL_ANN_USER[] =
	"SELECT 1 FROM users WHERE id = ?1";
static const char SQL_ANN_GET[] =
	"SELECT entry, value FROM annotations WHERE user_id = ?1 AND mailbox_id = ?2"
	" AND (entry = ?3 OR (entry >= ?4 AND entry < ?5)) ORDER BY entry";
static const char SQL_ANN_USAGE[] =
	"SELECT count(*), coalesce(sum(length(value)), 0) FROM annotations WHERE user_id = ?1";

static int op_annotation_set(struct store *store, struct store_op *op, char **error_r)
{
	struct store_imap_op *p = (struct store_imap_op *)op;
	struct store_conn *c = &store->wconn;
	sqlite3_stmt *st;
	int64_t owner;
	int rc;

	store_imap_op_reset(p);
	if (p->mailbox_id != 0) {
		rc = store_wmailbox_get(store, p->mailbox_id, &owner, NULL, NULL, error_r);
		if (rc < 0)
			return -1;
		if (rc == 0 || owner != p->user_id)
			return store_imap_fail(p, "NONEXISTENT", error_r, "mailbox does not exist");
	} else {
		if ((st = store_wstmt(c, SQL_ANN_USER, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, p->user_id);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return store_imap_fail(p, "NONEXISTENT", error_r, "user does not exist");
		if (rc != SQLITE_ROW) {
			*error_r = store_sqlerr_dup(c, "reading user");
			return -1;
		}
	}
	if ((st = store_wstmt(c, p->value ? SQL_ANN_SET : SQL_ANN_DEL, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, p->user_id);
	sqlite3_bind_int64(st, 2, p->mailbox_id);
	sqlite3_bind_text(st, 3, p->name, -1, SQLITE_STATIC);
	if (p->value != NULL)
		sqlite3_bind_blob64(st, 4, p->value, p->value_len, SQLITE_STATIC);
	p->new_mailbox_id = p->mailbox_id;
	return store_step_done(c, st, error_r);
}

int store_annotation_set(struct store *store, struct event_base *base, int64_t user_id,
			 int64_t mailbox_id, const char *entry, const char *value, size_t len,
			 store_write_cb *cb, void *ctx)
{
	struct store_imap_op *p;

	if (entry == NULL || entry[0] == '\0' || cb == NULL || (value == NULL && len > 0) ||
	    mailbox_id < 0)
		return -1;
	p = store_imap_op_new(op_annotation_set, cb, ctx);
	p->user_id = user_id;
	p->mailbox_id = mailbox_id;
	p->name = xstrdup(entry);
	if (value != NULL) {
		/* non-NULL even when empty: an empty value is not a removal */
		p->value = xmalloc(len + 1);
		memcpy(p->value, value, len);
		p->value[len] = '\0';
		p->value_len = len;
	}
	return store_imap_op_submit(store, base, p);
}

int store_annotation_get(struct store *store, int64_t user_id, int64_t mailbox_id,
			 const char *entry, int depth,
			 int (*cb)(void *ctx, const char *entry, const char *value, size_t len),
			 void *ctx, const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	size_t elen = strlen(entry);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL || (st = store_stmt(c, SQL_ANN_GET, error_r)) == NULL)
		return -1;
	/* children: entry + "/" <= name < entry + "0" ('0' follows '/') */
	bool slash = elen > 0 && entry[elen - 1] == '/';
	size_t plen = slash ? elen : elen + 1;
	char *lo = xasprintf("%s%s", entry, slash ? "" : "/");
	char *hi = xstrdup(lo);
	hi[plen - 1] = '0';
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_int64(st, 2, mailbox_id);
	sqlite3_bind_text(st, 3, entry, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, lo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, depth == 0 ? lo : hi, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const void *v = sqlite3_column_blob(st, 1);
		size_t vlen = (size_t)sqlite3_column_bytes(st, 1);

		if (name == NULL)
			continue;
		/* depth 1: one level below entry, no deeper */
		if (depth == 1 && strcmp(name, entry) != 0 &&
		    strchr(name + plen, '/') != NULL)
			continue;
		if (cb(ctx, name, v != NULL ? v : "", vlen) != 0)
			break;
	}
	sqlite3_reset(st);
	free(lo);
	free(hi);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = store_sqlerr(c, "reading annotations");
		return -1;
	}
	return 0;
}

int store_annotation_usage(struct store *store, int64_t user_id, int64_t *count_r,
			   int64_t *bytes_r, const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	sqlite3_stmt *st;
	int rc;

	*count_r = 0;
	*bytes_r = 0;
	if (c == NULL || (st = store_stmt(c, SQL_ANN_USAGE, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*count_r = sqlite3_column_int64(st, 0);
		*bytes_r = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		*error_r = store_sqlerr(c, "reading annotation usage");
		return -1;
	}
	return 0;
}
