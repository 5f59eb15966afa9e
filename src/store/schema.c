/* The index schema and its migrations.
 *
 * The schema is an ordered list of migrations; migrations[i] takes the
 * database from version i to version i + 1.  store_open() applies the
 * missing ones, each in its own IMMEDIATE transaction that also records the
 * new version in schema_version, so a crash between two leaves a valid,
 * older version that the next open continues from.  Several processes may
 * open the store at once: the version is re-read inside the transaction,
 * so a migration is never applied twice.
 *
 * To add a field: append a migration (ALTER TABLE ... ADD COLUMN ..., new
 * tables, indexes, data backfills) to the array and bump
 * STORE_SCHEMA_VERSION_CURRENT in store.h.  Never edit a migration that has
 * shipped.  docs/storage.md describes the current schema. */
#include "store/store-private.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <stdlib.h>

static const char *const migrations[] = {
	/* version 1: directory, mailboxes, messages */
	"CREATE TABLE domains ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  sender_policy INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE users ("
	"  id INTEGER PRIMARY KEY,"
	"  domain_id INTEGER NOT NULL REFERENCES domains(id),"
	"  address TEXT NOT NULL UNIQUE,"
	"  password_hash TEXT,"
	"  scram_sha256 TEXT,"
	"  quota_bytes INTEGER NOT NULL DEFAULT 0,"
	"  used_bytes INTEGER NOT NULL DEFAULT 0,"
	"  used_messages INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL);"
	"CREATE INDEX users_domain ON users(domain_id);"
	"CREATE TABLE aliases ("
	"  id INTEGER PRIMARY KEY,"
	"  alias TEXT NOT NULL,"
	"  target TEXT NOT NULL,"
	"  UNIQUE(alias, target));"
	"CREATE TABLE mailboxes ("
	"  id INTEGER PRIMARY KEY,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  special_use TEXT,"
	"  uidvalidity INTEGER NOT NULL,"
	"  uidnext INTEGER NOT NULL DEFAULT 1,"
	"  highestmodseq INTEGER NOT NULL DEFAULT 1,"
	"  messages INTEGER NOT NULL DEFAULT 0,"
	"  bytes INTEGER NOT NULL DEFAULT 0,"
	"  UNIQUE(user_id, name));"
	"CREATE TABLE messages ("
	"  id INTEGER PRIMARY KEY,"
	"  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
	"  uid INTEGER NOT NULL,"
	"  modseq INTEGER NOT NULL,"
	"  internal_date INTEGER NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  flags TEXT NOT NULL DEFAULT '',"
	"  file TEXT NOT NULL,"
	"  dsn TEXT,"
	"  UNIQUE(mailbox_id, uid));"
	/* store-wide counters, e.g. the last UIDVALIDITY handed out */
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY,"
	"  value INTEGER NOT NULL);",

	/* version 2: POP3 state and expunge history.
	 * messages.pop3_retrieved: when POP3 first retrieved (RETR) the message,
	 * NULL if never; drives pop3.expire_days (RFC 2449 EXPIRE).
	 * expunged: UIDs removed from a mailbox with the modseq of the removal,
	 * so IMAP sessions can report them (EXPUNGE, QRESYNC VANISHED). */
	"ALTER TABLE messages ADD COLUMN pop3_retrieved INTEGER;"
	"CREATE INDEX messages_pop3_retrieved ON messages(mailbox_id, pop3_retrieved)"
	"  WHERE pop3_retrieved IS NOT NULL;"
	"CREATE TABLE expunged ("
	"  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
	"  uid INTEGER NOT NULL,"
	"  modseq INTEGER NOT NULL,"
	"  PRIMARY KEY(mailbox_id, uid));",

	/* version 3: IMAP.
	 * mailboxes.recent_uid: the \Recent mark (IMAP4rev1): messages with
	 * uid >= it are recent for the next session that selects the mailbox;
	 * existing mailboxes start with nothing recent.
	 * subscriptions: LSUB / LIST (SUBSCRIBED) names, existing or not.
	 * keywords: every keyword used in a mailbox, for FLAGS responses.
	 * messages_file: COPY shares files between rows; a file is unlinked
	 * only when no row names it any more.
	 * messages_modseq: CONDSTORE / QRESYNC CHANGEDSINCE. */
	"ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 1;"
	"UPDATE mailboxes SET recent_uid = uidnext;"
	"CREATE TABLE subscriptions ("
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  PRIMARY KEY(user_id, name));"
	"CREATE TABLE keywords ("
	"  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
	"  keyword TEXT NOT NULL COLLATE NOCASE,"
	"  PRIMARY KEY(mailbox_id, keyword));"
	"CREATE INDEX messages_file ON messages(file);"
	"CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);",

	/* version 4: message summaries, object IDs, message quota, METADATA.
	 * users.quota_messages: RFC 9208 MESSAGE limit, 0 = unlimited.
	 * mailboxes.objectid: RFC 8474 MAILBOXID, "F" + 24 random hex digits,
	 * given to existing mailboxes here and to new ones by a trigger (so
	 * every INSERT gets one), kept across RENAME (an UPDATE of name).
	 * messages.savedate: RFC 8514 SAVEDATE, set when a row enters its
	 * mailbox (delivery, APPEND, COPY, MOVE); NULL for older rows, which
	 * report their internal date.
	 * summaries: one row per message row (same id), written with the
	 * message; older messages get theirs on first use (summary.c).
	 * msgid is the first <...> of Message-ID, for THREADID matching.
	 * annotations: RFC 5464 entries of a mailbox, or of the server with
	 * mailbox_id 0; removed with their mailbox (trigger) or user. */
	"ALTER TABLE users ADD COLUMN quota_messages INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE mailboxes ADD COLUMN objectid TEXT;"
	"UPDATE mailboxes SET objectid = 'F' || lower(hex(randomblob(12)));"
	"CREATE UNIQUE INDEX mailboxes_objectid ON mailboxes(objectid);"
	"CREATE TRIGGER mailboxes_objectid AFTER INSERT ON mailboxes"
	"  WHEN NEW.objectid IS NULL BEGIN"
	"  UPDATE mailboxes SET objectid = 'F' || lower(hex(randomblob(12))) WHERE id = NEW.id;"
	"  END;"
	"ALTER TABLE messages ADD COLUMN savedate INTEGER;"
	"CREATE TABLE summaries ("
	"  id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,"
	"  user_id INTEGER NOT NULL,"
	"  emailid TEXT NOT NULL,"
	"  threadid TEXT NOT NULL,"
	"  msgid TEXT NOT NULL,"
	"  sent_date INTEGER,"
	"  envelope TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  from_mailbox TEXT NOT NULL,"
	"  to_mailbox TEXT NOT NULL,"
	"  cc_mailbox TEXT NOT NULL,"
	"  from_display TEXT NOT NULL,"
	"  to_display TEXT NOT NULL,"
	"  message_id TEXT NOT NULL,"
	"  in_reply_to TEXT NOT NULL,"
	"  refs TEXT NOT NULL,"
	"  preview TEXT NOT NULL);"
	"CREATE INDEX summaries_msgid ON summaries(user_id, msgid);"
	"CREATE INDEX summaries_threadid ON summaries(user_id, threadid);"
	"CREATE TABLE annotations ("
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  mailbox_id INTEGER NOT NULL,"
	"  entry TEXT NOT NULL,"
	"  value BLOB NOT NULL,"
	"  PRIMARY KEY(user_id, mailbox_id, entry)) WITHOUT ROWID;"
	"CREATE TRIGGER mailboxes_annotations AFTER DELETE ON mailboxes BEGIN"
	"  DELETE FROM annotations WHERE user_id = OLD.user_id AND mailbox_id = OLD.id;"
	"  END;",

	/* version 5: the outbound queue (queue.c).  queue: one row per queued
	 * message, its file in the message folder like a mailbox copy (without
	 * Return-Path / Delivered-To), the envelope sender ("" null), the
	 * submitting user (NULL for forwarded mail), DSN ENVID/RET, flags
	 * (8-bit body, SMTPUTF8, REQUIRETLS) and the administrator's hold.
	 * queue_rcpts: one row per recipient with its own state (0 queued,
	 * 1 deferred, 2 delivered, 3 bounced), attempts, next attempt and last
	 * error, whether the delay DSN went out (warned) and whether the
	 * administrator asked to bounce it now (give_up); a message row goes
	 * when none of its recipients is pending. */
	"CREATE TABLE queue ("
	"  id INTEGER PRIMARY KEY,"
	"  file TEXT NOT NULL UNIQUE,"
	"  size INTEGER NOT NULL,"
	"  sender TEXT NOT NULL,"
	"  user_id INTEGER,"
	"  created INTEGER NOT NULL,"
	"  dsn TEXT,"
	"  flags INTEGER NOT NULL DEFAULT 0,"
	"  held INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE queue_rcpts ("
	"  id INTEGER PRIMARY KEY,"
	"  queue_id INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,"
	"  address TEXT NOT NULL,"
	"  domain TEXT NOT NULL,"
	"  orcpt TEXT,"
	"  notify INTEGER NOT NULL DEFAULT 0,"
	"  state INTEGER NOT NULL DEFAULT 0,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt INTEGER NOT NULL,"
	"  last_attempt INTEGER,"
	"  last_error TEXT,"
	"  warned INTEGER NOT NULL DEFAULT 0,"
	"  give_up INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX queue_rcpts_due ON queue_rcpts(state, next_attempt);"
	"CREATE INDEX queue_rcpts_queue ON queue_rcpts(queue_id);"
	"CREATE INDEX queue_rcpts_domain ON queue_rcpts(domain, state);",

	/* version 6: transport security state and signing keys.
	 * mta_sts_policies: the MTA-STS policy cache (RFC 8461 5.1), so a
	 * restart keeps enforcing what was fetched.  tls_results: outbound TLS
	 * session counts per UTC day (day = Unix time / 86400), policy domain
	 * and outcome, for TLS reports (RFC 8460); result_type "" is a
	 * success; reported is set once a report included the row.
	 * dkim_keys: the DKIM signing keys of our domains; algorithm is the a=
	 * value ("rsa-sha256", "ed25519-sha256"), private_key a PKCS#8 PEM,
	 * public_key the base64 p= value; state 0 pending (its DNS record not
	 * yet seen), 1 active (signing), 2 retiring (published, no longer
	 * signing, until retire_at), 3 retired. */
	"CREATE TABLE mta_sts_policies ("
	"  domain TEXT PRIMARY KEY COLLATE NOCASE,"
	"  policy_id TEXT NOT NULL,"
	"  policy TEXT NOT NULL,"
	"  fetched INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE tls_results ("
	"  day INTEGER NOT NULL,"
	"  policy_domain TEXT NOT NULL COLLATE NOCASE,"
	"  policy_type TEXT NOT NULL,"
	"  policy TEXT NOT NULL,"
	"  mx_host TEXT NOT NULL,"
	"  receiving_ip TEXT NOT NULL,"
	"  result_type TEXT NOT NULL,"
	"  detail TEXT NOT NULL,"
	"  count INTEGER NOT NULL,"
	"  reported INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY(day, policy_domain, policy_type, mx_host, receiving_ip, result_type))"
	"  WITHOUT ROWID;"
	"CREATE TABLE dkim_keys ("
	"  id INTEGER PRIMARY KEY,"
	"  domain TEXT NOT NULL COLLATE NOCASE,"
	"  selector TEXT NOT NULL COLLATE NOCASE,"
	"  algorithm TEXT NOT NULL,"
	"  private_key TEXT NOT NULL,"
	"  public_key TEXT NOT NULL,"
	"  state INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL,"
	"  activated INTEGER,"
	"  retire_at INTEGER,"
	"  UNIQUE(domain, selector));",

	/* version 7: DMARC aggregate reports (RFC 7489 7.2).  dmarc_results:
	 * one row per inbound DMARC evaluation whose policy record had a rua,
	 * kept for the daily report we send (day = Unix time / 86400; dkim
	 * holds "domain:result" pairs separated by spaces; policy the
	 * published adkim/aspf/p/sp/pct as "r r none none 100"; rua the
	 * record's rua URIs separated by spaces); reported is set once a
	 * report included the row.  dmarc_reports / dmarc_report_rows: the
	 * aggregate reports others sent us, one row per <record>. */
	"CREATE TABLE dmarc_results ("
	"  id INTEGER PRIMARY KEY,"
	"  day INTEGER NOT NULL,"
	"  policy_domain TEXT NOT NULL COLLATE NOCASE,"
	"  from_domain TEXT NOT NULL,"
	"  source_ip TEXT NOT NULL,"
	"  envelope_from TEXT NOT NULL,"
	"  spf_domain TEXT NOT NULL,"
	"  spf_result TEXT NOT NULL,"
	"  dkim TEXT NOT NULL,"
	"  spf_aligned INTEGER NOT NULL,"
	"  dkim_aligned INTEGER NOT NULL,"
	"  disposition TEXT NOT NULL,"
	"  policy TEXT NOT NULL,"
	"  rua TEXT NOT NULL,"
	"  reported INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX dmarc_results_domain ON dmarc_results(reported, policy_domain, day);"
	"CREATE TABLE dmarc_reports ("
	"  id INTEGER PRIMARY KEY,"
	"  org_name TEXT NOT NULL,"
	"  email TEXT NOT NULL,"
	"  report_id TEXT NOT NULL,"
	"  domain TEXT NOT NULL COLLATE NOCASE,"
	"  date_begin INTEGER NOT NULL,"
	"  date_end INTEGER NOT NULL,"
	"  received INTEGER NOT NULL,"
	"  UNIQUE(org_name, report_id));"
	"CREATE TABLE dmarc_report_rows ("
	"  report INTEGER NOT NULL REFERENCES dmarc_reports(id) ON DELETE CASCADE,"
	"  source_ip TEXT NOT NULL,"
	"  count INTEGER NOT NULL,"
	"  disposition TEXT NOT NULL,"
	"  eval_dkim TEXT NOT NULL,"
	"  eval_spf TEXT NOT NULL,"
	"  header_from TEXT NOT NULL,"
	"  dkim_result TEXT NOT NULL,"
	"  spf_result TEXT NOT NULL);"
	"CREATE INDEX dmarc_report_rows_report ON dmarc_report_rows(report);",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION_CURRENT,
	       "one migration per schema version");

int store_schema_read(struct store_conn *c, int *version_r, const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(c->db, "SELECT coalesce(max(version), 0) FROM schema_version",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_sqlerr(c, "reading the schema version");
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		*error_r = store_sqlerr(c, "reading the schema version");
		sqlite3_finalize(st);
		return -1;
	}
	*version_r = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
}

int store_migrate(struct store *store, const char **error_r)
{
	struct store_conn *c = &store->wconn;
	char *err = NULL;
	int version;

	if (store_exec(c, "CREATE TABLE IF NOT EXISTS schema_version ("
			  "  version INTEGER PRIMARY KEY,"
			  "  applied INTEGER NOT NULL)", &err) < 0) {
		*error_r = store_err_take(err);
		return -1;
	}
	for (;;) {
		if (store_exec(c, "BEGIN IMMEDIATE", &err) < 0) {
			*error_r = store_err_take(err);
			return -1;
		}
		if (store_schema_read(c, &version, error_r) < 0)
			goto fail;
		if (version > STORE_SCHEMA_VERSION_CURRENT) {
			*error_r = store_errf("store schema version %d is newer than this tern "
					      "understands (%d)", version,
					      STORE_SCHEMA_VERSION_CURRENT);
			goto fail;
		}
		if (version == STORE_SCHEMA_VERSION_CURRENT)
			break;
		if (store_exec(c, migrations[version], &err) < 0) {
			*error_r = store_errf("migration to schema version %d failed: %s",
					      version + 1, err);
			free(err);
			goto fail;
		}
		char *sql = xasprintf("INSERT INTO schema_version(version, applied) "
				      "VALUES (%d, %lld)", version + 1, (long long)clock_now());
		int rc = store_exec(c, sql, &err);
		free(sql);
		if (rc < 0) {
			*error_r = store_err_take(err);
			goto fail;
		}
		if (store_exec(c, "COMMIT", &err) < 0) {
			*error_r = store_err_take(err);
			goto fail;
		}
		log_info("store", "event=migrated dir=%s schema_version=%d",
			 log_quote(store->dir), version + 1);
	}
	store_exec(c, "COMMIT", NULL);
	store->schema_version = version;
	return 0;
fail:
	store_exec(c, "ROLLBACK", NULL);
	return -1;
}
