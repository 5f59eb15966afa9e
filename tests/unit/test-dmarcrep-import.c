/* Unit tests for queue/dmarcrep-import.c: which mailboxes are report
 * mailboxes, a pass over them (imported, known, other, the per-pass
 * limit), the position kept in the store across importers
 * (store/dmarc-import.c), and the dmarc_reports import settings.  A real store in a
 * scratch folder; reports are delivered into it as the server would. */
#include "unit.h"
#include "store-test-util.h"

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "queue/dmarcrep-import.h"
#include "store/dmarc.h"
#include "store/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void deliver(struct store *s, const char *address, const char *body)
{
	struct store_user u = { 0 };
	const char *err = NULL;

	CHECK(store_user_get(s, address, &u, &err) == 1);
	struct store_delivery_rcpt r = { .user_id = u.id, .delivered_to = address };
	struct store_delivery d = {
		.return_path = "", .body = body, .body_len = strlen(body),
		.internal_date = clock_now(), .rcpts = &r, .rcpt_count = 1,
	};
	CHECK(store_deliver_sync(s, &d, &err) == 0);
	store_user_clear(&u);
}

/* A mail carrying report id for domain as a text/xml body */
static char *report_mail(const char *id, const char *domain, int count)
{
	long now = (long)clock_now();

	return xasprintf("From: r@reporter.test\r\nSubject: Report Domain: %s\r\n"
			 "MIME-Version: 1.0\r\nContent-Type: text/xml\r\n\r\n"
			 "<feedback><report_metadata><org_name>Org</org_name>"
			 "<report_id>%s</report_id><date_range><begin>%ld</begin>"
			 "<end>%ld</end></date_range></report_metadata>"
			 "<policy_published><domain>%s</domain></policy_published>"
			 "<record><row><source_ip>192.0.2.1</source_ip><count>%d</count>"
			 "</row></record></feedback>\r\n",
			 domain, id, now - 3600, now, domain, count);
}

static const char PLAIN[] = "From: a@b.test\r\nSubject: hello\r\n\r\nno report\r\n";

struct seen {
	char list[512];
	char skipped[512];
};

static int seen_cb(void *ctx, int64_t user_id, const char *address)
{
	struct seen *s = ctx;

	(void)user_id;
	strncat(s->list, address, sizeof(s->list) - strlen(s->list) - 2);
	strcat(s->list, " ");
	return 0;
}

static void skipped_cb(void *ctx, const char *address)
{
	struct seen *s = ctx;

	strncat(s->skipped, address, sizeof(s->skipped) - strlen(s->skipped) - 2);
	strcat(s->skipped, " ");
}

static struct store *setup(const char *dir)
{
	struct store *s = store_test_open(dir, &(struct store_options){ 0 });
	const char *err = NULL;

	CHECK(store_domain_add(s, "a.test", &err) == 0);
	CHECK(store_domain_add(s, "b.test", &err) == 0);
	CHECK(store_domain_add(s, "c.test", &err) == 0);
	CHECK(store_user_add(s, "dmarc-reports@a.test", NULL, NULL, 0, &err) == 0);
	CHECK(store_user_add(s, "x@b.test", NULL, NULL, 0, &err) == 0);
	CHECK(store_user_add(s, "y@c.test", NULL, NULL, 0, &err) == 0);
	CHECK(store_user_add(s, "plain@a.test", NULL, NULL, 0, &err) == 0);
	CHECK(store_alias_add(s, "dmarc-reports@b.test", "x@b.test", &err) == 0);
	CHECK(store_alias_add(s, "@c.test", "y@c.test", &err) == 0);   /* catch-all */
	return s;
}

static struct config *conf(const char *extra)
{
	char *text = xasprintf("hostname = \"mail.a.test\";\n%s", extra);
	char *error = NULL;
	struct config *cfg = config_parse_string(text, "/tmp/t.conf", &error);

	if (cfg == NULL)
		fprintf(stderr, "config: %s\n", error);
	free(error);
	free(text);
	return cfg;
}

static void test_default_address(void)
{
	char *a = dmarcrep_import_default_address("example.com");
	CHECK_STR(a, "dmarc-reports@example.com");
	free(a);
}

static void test_mailboxes(void)
{
	char dirbuf[64];
	const char *dir = store_test_mkdtemp(dirbuf, "/tmp/tern-dmarcimp-XXXXXX");
	struct store *s = setup(dir);
	struct config *cfg = conf("dmarc_reports = { import_addresses = [ \"x@b.test\", "
				  "\"missing@a.test\", \"far@remote.test\", \"y@c.test\" ]; };\n");
	struct seen seen = { 0 };
	const char *err = NULL;

	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	CHECK(dmarcrep_import_mailboxes(s, cfg, seen_cb, skipped_cb, &seen, &err) == 0);
	/* a.test's user, b.test's alias (its user once, though configured
	 * too); c.test's catch-all is not followed, but y@c.test is listed */
	CHECK_STR(seen.list, "dmarc-reports@a.test x@b.test y@c.test ");
	CHECK_STR(seen.skipped, "missing@a.test far@remote.test ");
	config_free(&cfg);
	store_close(&s);
	store_test_rm_rf(dir);
}

static int count_cb(void *ctx, const struct store_dmarc_summary *row)
{
	*(int64_t *)ctx += row->total;
	return 0;
}

static void test_pass(void)
{
	char dirbuf[64];
	const char *dir = store_test_mkdtemp(dirbuf, "/tmp/tern-dmarcimp-XXXXXX");
	struct store *s = setup(dir);
	struct config *cfg = conf("");
	struct dmarcrep_importer *imp;
	struct dmarcrep_import_stats st;
	const char *err = NULL;
	char *r1 = report_mail("id-1", "a.test", 4), *r2 = report_mail("id-2", "b.test", 2);

	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	imp = dmarcrep_importer_new(s, cfg);
	deliver(s, "dmarc-reports@a.test", r1);
	deliver(s, "dmarc-reports@a.test", PLAIN);
	deliver(s, "plain@a.test", r2);              /* no report mailbox */
	CHECK(dmarcrep_importer_pass(imp, &st, &err) == 0);
	CHECK(st.mailboxes == 2 && st.imported == 1 && st.other == 1 && st.known == 0);
	CHECK(st.failed == 0 && !st.more);

	/* nothing new: nothing read */
	CHECK(dmarcrep_importer_pass(imp, &st, &err) == 0);
	CHECK(st.imported + st.other + st.known + st.failed == 0);

	/* the same report again; a broken one */
	deliver(s, "dmarc-reports@a.test", r1);
	deliver(s, "dmarc-reports@a.test",
		"From: r@x.test\r\nContent-Type: text/xml\r\n\r\n<feedback><report\r\n");
	CHECK(dmarcrep_importer_pass(imp, &st, &err) == 0);
	CHECK(st.known == 1 && st.failed == 1 && st.imported == 0);

	/* a new importer (a restart) goes on where the first stopped */
	dmarcrep_importer_free(&imp);
	CHECK(imp == NULL);
	imp = dmarcrep_importer_new(s, cfg);
	CHECK(dmarcrep_importer_pass(imp, &st, &err) == 0);
	CHECK(st.mailboxes == 2 && st.known + st.imported + st.other + st.failed == 0);

	/* the per-pass limit */
	for (int i = 0; i < DMARCREP_IMPORT_PASS_MESSAGES + 5; i++)
		deliver(s, "x@b.test", PLAIN);
	deliver(s, "x@b.test", r2);
	CHECK(dmarcrep_importer_pass(imp, &st, &err) == 0);
	CHECK(st.other == DMARCREP_IMPORT_PASS_MESSAGES && st.more && st.imported == 0);
	CHECK(dmarcrep_importer_pass(imp, &st, &err) == 0);
	CHECK(st.other == 5 && st.imported == 1 && !st.more);

	/* what was kept: id-1 once (4 messages), id-2 from the report mailbox */
	int64_t total = 0;
	CHECK(store_dmarc_summary(s, "a.test", 0, count_cb, &total, &err) == 0);
	CHECK(total == 4);
	total = 0;
	CHECK(store_dmarc_summary(s, "b.test", 0, count_cb, &total, &err) == 0);
	CHECK(total == 2);

	dmarcrep_importer_free(&imp);
	free(r1);
	free(r2);
	config_free(&cfg);
	store_close(&s);
	store_test_rm_rf(dir);
}

/* The meta row of the position of address's INBOX, "" when none */
static void position_of(struct store *s, const char *dir, const char *address, char *out,
			size_t size, int64_t *id_r)
{
	struct store_user u = { 0 };
	struct store_mailbox mb = { 0 };
	const char *err = NULL;
	char *path = xasprintf("%s/index.db", dir), *sql;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	out[0] = '\0';
	CHECK(store_user_get(s, address, &u, &err) == 1);
	CHECK(store_mailbox_get(s, u.id, "INBOX", &mb, &err) == 1);
	*id_r = mb.id;
	sql = xasprintf("SELECT value FROM meta WHERE key = 'dmarc_import:%lld'", (long long)mb.id);
	CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(sql);
	free(path);
	store_mailbox_clear(&mb);
	store_user_clear(&u);
}

/* Run sql on the index, as another writer would; frees sql */
static void index_exec(const char *dir, char *sql)
{
	char *path = xasprintf("%s/index.db", dir);
	sqlite3 *db = NULL;

	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	free(sql);
	free(path);
}

/* The position kept in the store across importers (restarts): where the
 * last one stopped, a changed UIDVALIDITY restarting, a removed mailbox
 * forgotten, a broken row ignored. */
static void test_positions(void)
{
	char dirbuf[64], pos[64], want[64];
	const char *dir = store_test_mkdtemp(dirbuf, "/tmp/tern-dmarcimp-XXXXXX");
	struct store *s = setup(dir);
	struct config *cfg = conf("");
	struct dmarcrep_importer *imp;
	struct dmarcrep_import_stats st;
	struct store_mailbox mb = { 0 };
	const char *err = NULL;
	char *r1 = report_mail("id-1", "a.test", 4), *r3 = report_mail("id-3", "a.test", 1);
	int64_t id = 0, id_b = 0;

	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	/* nothing looked at yet: no row */
	position_of(s, dir, "dmarc-reports@a.test", pos, sizeof(pos), &id);
	CHECK_STR(pos, "");

	imp = dmarcrep_importer_new(s, cfg);
	deliver(s, "dmarc-reports@a.test", r1);
	deliver(s, "dmarc-reports@a.test", PLAIN);
	deliver(s, "x@b.test", PLAIN);
	CHECK(dmarcrep_importer_pass(imp, &st, &err) == 0);
	CHECK(st.imported == 1 && st.other == 2);
	dmarcrep_importer_free(&imp);

	struct store_user u = { 0 };
	CHECK(store_user_get(s, "dmarc-reports@a.test", &u, &err) == 1);
	CHECK(store_mailbox_get(s, u.id, "INBOX", &mb, &err) == 1);
	store_user_clear(&u);
	snprintf(want, sizeof(want), "%u:3", (unsigned)mb.uidvalidity);
	position_of(s, dir, "dmarc-reports@a.test", pos, sizeof(pos), &id);
	CHECK_STR(pos, want);
	position_of(s, dir, "x@b.test", pos, sizeof(pos), &id_b);
	CHECK(strstr(pos, ":2") != NULL);

	/* a new importer reads only what came since */
	deliver(s, "dmarc-reports@a.test", r3);
	imp = dmarcrep_importer_new(s, cfg);
	CHECK(dmarcrep_importer_pass(imp, &st, &err) == 0);
	CHECK(st.imported == 1 && st.other == 0 && st.known == 0 && st.failed == 0);
	dmarcrep_importer_free(&imp);
	snprintf(want, sizeof(want), "%u:4", (unsigned)mb.uidvalidity);
	position_of(s, dir, "dmarc-reports@a.test", pos, sizeof(pos), &id);
	CHECK_STR(pos, want);

	/* a rebuilt mailbox (new UIDVALIDITY): read from UID 1 again */
	index_exec(dir, xasprintf("UPDATE mailboxes SET uidvalidity = uidvalidity + 7"
				  " WHERE id = %lld", (long long)id));
	imp = dmarcrep_importer_new(s, cfg);
	CHECK(dmarcrep_importer_pass(imp, &st, &err) == 0);
	CHECK(st.known == 2 && st.other == 1 && st.imported == 0);
	dmarcrep_importer_free(&imp);
	snprintf(want, sizeof(want), "%u:4", (unsigned)mb.uidvalidity + 7);
	position_of(s, dir, "dmarc-reports@a.test", pos, sizeof(pos), &id);
	CHECK_STR(pos, want);

	/* a broken row is ignored (the mailbox is read again), then rewritten */
	index_exec(dir, xasprintf("UPDATE meta SET value = 'x:y'"
				  " WHERE key = 'dmarc_import:%lld'", (long long)id));
	imp = dmarcrep_importer_new(s, cfg);
	CHECK(dmarcrep_importer_pass(imp, &st, &err) == 0);
	CHECK(st.known == 2 && st.other == 1);
	position_of(s, dir, "dmarc-reports@a.test", pos, sizeof(pos), &id);
	CHECK_STR(pos, want);

	/* x@b.test removed: its position is forgotten by the next pass */
	CHECK(store_user_remove(s, "x@b.test", &err) == 0);
	CHECK(dmarcrep_importer_pass(imp, &st, &err) == 0);
	CHECK(st.mailboxes == 1);
	dmarcrep_importer_free(&imp);
	char *path = xasprintf("%s/index.db", dir);
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, "SELECT count(*) FROM meta WHERE key LIKE 'dmarc_import:%'",
				 -1, &q, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 1);
	sqlite3_finalize(q);
	sqlite3_close(db);
	free(path);
	(void)id_b;

	store_mailbox_clear(&mb);
	free(r1);
	free(r3);
	config_free(&cfg);
	store_close(&s);
	store_test_rm_rf(dir);
}

static void test_bytes(void)
{
	char dirbuf[64];
	const char *dir = store_test_mkdtemp(dirbuf, "/tmp/tern-dmarcimp-XXXXXX");
	struct store *s = store_test_open(dir, &(struct store_options){ 0 });
	struct dmarcrep_import_info info;
	const char *err = NULL;
	char *mail = report_mail("id-9", "z.test", 1);
	const char *xml = strstr(mail, "<feedback>");

	/* the report itself, then the mail carrying it: known */
	CHECK(dmarcrep_import_bytes(s, xml, strlen(xml), 0, &info, &err) == 1);
	CHECK_STR(info.report_id, "id-9");
	CHECK_STR(info.domain, "z.test");
	CHECK(info.records == 1);
	dmarcrep_import_info_clear(&info);
	CHECK(dmarcrep_import_bytes(s, mail, strlen(mail), 0, &info, &err) == 0);
	dmarcrep_import_info_clear(&info);
	CHECK(dmarcrep_import_bytes(s, PLAIN, strlen(PLAIN), 0, &info, &err) ==
	      DMARCREP_IMPORT_NOT_REPORT);
	CHECK(dmarcrep_import_bytes(s, "", 0, 0, &info, &err) == DMARCREP_IMPORT_NOT_REPORT);
	CHECK(dmarcrep_import_bytes(s, "<feedback>", 10, 0, &info, &err) == DMARCREP_IMPORT_FAILED);
	/* a report that ended before the days kept is not kept */
	char *old = report_mail("id-old", "z.test", 1);
	CHECK(dmarcrep_import_bytes(s, old, strlen(old), (int64_t)clock_now() + 3600, &info,
				    &err) == DMARCREP_IMPORT_TOO_OLD);
	CHECK(dmarcrep_import_bytes(s, old, strlen(old), (int64_t)clock_now() - 7200, &info,
				    &err) == 1);
	dmarcrep_import_info_clear(&info);
	free(old);
	free(mail);
	store_close(&s);
	store_test_rm_rf(dir);
}

static void test_config(void)
{
	struct config *cfg = conf("");
	char *error = NULL;

	CHECK(cfg != NULL && cfg->dmarc_reports.import && cfg->dmarc_reports.import_interval == 300);
	CHECK(cfg != NULL && cfg->dmarc_reports.import_address_count == 0);
	/* keep_days 14: reports ending on day 86 or later are kept on day 100 */
	CHECK(cfg != NULL && dmarcrep_import_not_before(cfg, 100 * 86400 + 5) == 86 * 86400);
	config_free(&cfg);
	cfg = conf("dmarc_reports = { import = false; import_interval = 1;\n"
		   "  import_addresses = [ \"r@a.test\", \"s@b.test\" ]; };\n");
	CHECK(cfg != NULL && !cfg->dmarc_reports.import && cfg->dmarc_reports.import_interval == 1);
	CHECK(cfg != NULL && cfg->dmarc_reports.import_address_count == 2);
	CHECK_STR(cfg != NULL ? cfg->dmarc_reports.import_addresses[1] : "", "s@b.test");
	config_free(&cfg);
	cfg = config_parse_string("hostname = \"mail.a.test\";\ndmarc_reports = {\n"
				  "  import_addresses = [ \"no address\" ];\n};\n", "/tmp/t.conf",
				  &error);
	CHECK(cfg == NULL && error != NULL && strstr(error, "/tmp/t.conf:3:") != NULL);
	free(error);
	error = NULL;
	cfg = config_parse_string("hostname = \"mail.a.test\";\ndmarc_reports = {\n"
				  "  import_interval = 0;\n};\n", "/tmp/t.conf", &error);
	CHECK(cfg == NULL && error != NULL && strstr(error, "/tmp/t.conf:3:") != NULL);
	free(error);
	error = NULL;
	cfg = config_parse_string("hostname = \"mail.a.test\";\ndmarc_reports = {\n"
				  "  import_addresses = 5;\n};\n", "/tmp/t.conf", &error);
	CHECK(cfg == NULL && error != NULL && strstr(error, "dmarc@example.com") != NULL);
	free(error);
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);
	RUN(test_default_address);
	RUN(test_bytes);
	RUN(test_mailboxes);
	RUN(test_pass);
	RUN(test_positions);
	RUN(test_config);
	return unit_summary("dmarcrep-import");
}
