/* The DMARC report import's position per report mailbox
 * (store/dmarc-import.h) in the meta table of schema 7 (no migration).
 *
 * Invariants:
 *  - the rows are "dmarc_import:<mailbox id>" = "<uidvalidity>:<next uid>",
 *    both decimal, written only here; the meta column has INTEGER
 *    affinity, and a text that is no number stays text in SQLite, so the
 *    value is read back as written;
 *  - a value that does not parse is ignored, never trusted: the import
 *    then starts that mailbox from UID 1, which only repeats work (reports
 *    are recognised by org_name + report_id, RFC 7489 7.2.2);
 *  - writes run on the commit thread (store_run_op), reads on the calling
 *    thread's read connection; the listing is bounded. */
#include "store/dmarc-import.h"

#include "store/store-private.h"
#include "lib/buf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_PREFIX "dmarc_import:"

static const char SQL_POS_LIST[] =
	"SELECT key, value FROM meta WHERE key >= 'dmarc_import:' AND key < 'dmarc_import;'"
	" ORDER BY key LIMIT 8192";
static const char SQL_POS_SET[] =
	"INSERT INTO meta(key, value) VALUES (?1, ?2)"
	" ON CONFLICT(key) DO UPDATE SET value = excluded.value";
static const char SQL_POS_DEL[] =
	"DELETE FROM meta WHERE key = ?1";

_Static_assert(STORE_DMARC_IMPORT_POS_MAX == 8192, "LIMIT of SQL_POS_LIST");

/* A decimal number of at most max, all of [s, s+len); false otherwise. */
static bool parse_num(const char *s, size_t len, uint64_t max, uint64_t *v_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > max)
			return false;
	}
	*v_r = v;
	return true;
}

/* "dmarc_import:<id>" and "<uidvalidity>:<next uid>" into p */
static bool pos_parse(const char *key, const char *value, struct store_dmarc_import_pos *p)
{
	const char *colon;
	uint64_t id, uidv, next;

	if (key == NULL || value == NULL || strncmp(key, KEY_PREFIX, strlen(KEY_PREFIX)) != 0)
		return false;
	key += strlen(KEY_PREFIX);
	if (!parse_num(key, strlen(key), INT64_MAX, &id) || id == 0)
		return false;
	colon = strchr(value, ':');
	if (colon == NULL ||
	    !parse_num(value, (size_t)(colon - value), UINT32_MAX, &uidv) ||
	    !parse_num(colon + 1, strlen(colon + 1), UINT32_MAX, &next) || next == 0)
		return false;
	p->mailbox_id = (int64_t)id;
	p->uidvalidity = (uint32_t)uidv;
	p->next_uid = (uint32_t)next;
	return true;
}

struct list_arg {
	int (*cb)(void *ctx, const struct store_dmarc_import_pos *p);
	void *ctx;
};

static int list_row(sqlite3_stmt *st, void *arg)
{
	struct list_arg *a = arg;
	struct store_dmarc_import_pos p;

	if (!pos_parse((const char *)sqlite3_column_text(st, 0),
		       (const char *)sqlite3_column_text(st, 1), &p))
		return 0;
	return a->cb(a->ctx, &p);
}

int store_dmarc_import_pos_list(struct store *store,
				int (*cb)(void *ctx, const struct store_dmarc_import_pos *p),
				void *ctx, const char **error_r)
{
	struct store_conn *c = store_rconn(store, error_r);
	struct list_arg a = { cb, ctx };
	sqlite3_stmt *st;

	if (c == NULL || (st = store_stmt(c, SQL_POS_LIST, error_r)) == NULL)
		return -1;
	return store_each_row(c, st, list_row, &a, "DMARC import positions", error_r);
}

struct pos_op {
	struct store_op op;         /* first: the commit thread hands us &op */
	const struct store_dmarc_import_pos *set;
	size_t set_count;
	const int64_t *forget;
	size_t forget_count;
};

static int op_save(struct store *store, struct store_op *op, char **error_r)
{
	struct pos_op *t = (struct pos_op *)op;
	struct store_conn *c = &store->wconn;
	char key[64], value[32];
	sqlite3_stmt *st;

	for (size_t i = 0; i < t->set_count; i++) {
		const struct store_dmarc_import_pos *p = &t->set[i];
		snprintf(key, sizeof(key), KEY_PREFIX "%" PRId64, p->mailbox_id);
		snprintf(value, sizeof(value), "%" PRIu32 ":%" PRIu32, p->uidvalidity,
			 p->next_uid);
		if ((st = store_wstmt(c, SQL_POS_SET, error_r)) == NULL)
			return -1;
		sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
		if (store_step_all(c, st, "recording a DMARC import position", error_r) < 0)
			return -1;
	}
	for (size_t i = 0; i < t->forget_count; i++) {
		snprintf(key, sizeof(key), KEY_PREFIX "%" PRId64, t->forget[i]);
		if ((st = store_wstmt(c, SQL_POS_DEL, error_r)) == NULL)
			return -1;
		sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
		if (store_step_all(c, st, "forgetting a DMARC import position", error_r) < 0)
			return -1;
	}
	return 0;
}

int store_dmarc_import_pos_save(struct store *store,
				const struct store_dmarc_import_pos *set, size_t set_count,
				const int64_t *forget, size_t forget_count,
				const char **error_r)
{
	struct pos_op t = { .op.fn = op_save, .set = set, .set_count = set_count,
			    .forget = forget, .forget_count = forget_count };

	for (size_t i = 0; i < set_count; i++)
		if (set[i].mailbox_id <= 0 || set[i].next_uid == 0) {
			*error_r = "invalid DMARC import position";
			return -1;
		}
	if (set_count == 0 && forget_count == 0)
		return 0;
	return store_run_op(store, &t.op, error_r);
}
