/* `tern dmarc send|import|summary`: DMARC aggregate reports (RFC 7489
 * 7.2) for administrators (queue/dmarcrep.h sends ours,
 * mailauth/dmarc-report.h parses others', store/dmarc.h keeps both).
 *
 *   tern dmarc send [--now]        send the due reports at once; --now
 *                                  also reports today so far
 *   tern dmarc import FILE|-       keep a received report: a mail with
 *                                  the report attached, or the report
 *                                  itself (XML, gzip or zip)
 *   tern dmarc import --mailbox ADDRESS [--folder NAME]
 *                                  the same for every message of a
 *                                  user's folder (INBOX); the server does
 *                                  it by itself for the report mailboxes
 *                                  (queue/dmarcrep-import.h)
 *   tern dmarc summary DOMAIN [--days N] [--json]
 *                                  per sending source, what the received
 *                                  reports say passed and failed
 *
 * Input is read up to DMARCREP_IMPORT_MAX bytes; more is refused. */
#include "cli/cli.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "queue/dmarcrep.h"
#include "queue/dmarcrep-import.h"
#include "store/dmarc.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int dmarc_send(struct config *cfg, int argc, char **argv)
{
	struct dmarcrep_send_stats st;
	struct store *store;
	const char *error = NULL;
	bool now = false;
	int rc;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--now") == 0)
			now = true;
		else
			return cli_usage_error("dmarc send: unknown option '%s'", argv[i]);
	}
	if (!cfg->dmarc_reports.enabled)
		return cli_error("dmarc send: DMARC reports are disabled (dmarc_reports.enabled)");
	if (cli_store_open(cfg, false, &store) < 0)
		return CLI_FAIL;
	rc = dmarcrep_send_run(store, cfg, now, &st, &error);
	store_close(&store);
	if (rc < 0)
		return cli_error("dmarc send: %s", error ? error : "failed");
	printf("dmarc: %u domain%s, %u report%s sent, %u without a usable rua, %u failed\n",
	       st.domains, st.domains == 1 ? "" : "s", st.reports, st.reports == 1 ? "" : "s",
	       st.skipped, st.failed);
	return st.failed > 0 ? CLI_FAIL : CLI_OK;
}

/* "report R from O for D, N records" (malloc'd) */
static char *describe(const struct dmarcrep_import_info *info)
{
	return xasprintf("report %s from %s for %s, %zu record%s", info->report_id,
			 info->org_name, info->domain, info->records,
			 info->records == 1 ? "" : "s");
}

struct mailbox_ctx {
	struct store *store;
	int64_t not_before;
	unsigned imported, known, other;
};

static int import_message(void *ctx, const struct store_message *m)
{
	struct mailbox_ctx *c = ctx;
	int fd = open(m->path, O_RDONLY | O_CLOEXEC);
	struct dmarcrep_import_info info;
	const char *error = NULL;
	char *data = NULL;
	size_t len = 0;
	int rc = -1;

	if (fd >= 0 && dmarcrep_import_read(fd, &data, &len, &error) == 0)
		rc = dmarcrep_import_bytes(c->store, data, len, c->not_before, &info, &error);
	if (fd >= 0)
		close(fd);
	free(data);
	if (rc > 0) {
		char *what = describe(&info);
		printf("dmarc: UID %u: %s\n", m->uid, what);
		free(what);
		c->imported++;
	} else if (rc == 0) {
		c->known++;
	} else {
		c->other++;
	}
	if (rc >= 0)
		dmarcrep_import_info_clear(&info);
	return 0;
}

/* --mailbox ADDRESS [--folder NAME]: every message of the folder. */
static int import_mailbox(struct config *cfg, const char *address, const char *folder)
{
	struct mailbox_ctx c = { .not_before = dmarcrep_import_not_before(cfg, clock_now()) };
	struct store_user u = { 0 };
	struct store_mailbox mb = { 0 };
	const char *error = NULL;
	int rc;

	if (cli_store_open(cfg, false, &c.store) < 0)
		return CLI_FAIL;
	if (store_user_get(c.store, address, &u, &error) <= 0 ||
	    store_mailbox_get(c.store, u.id, folder, &mb, &error) <= 0) {
		store_user_clear(&u);
		store_close(&c.store);
		return cli_error("dmarc import: %s/%s: %s", address, folder,
				 error ? error : "not found");
	}
	rc = store_message_list(c.store, mb.id, 1, import_message, &c, &error);
	store_mailbox_clear(&mb);
	store_user_clear(&u);
	store_close(&c.store);
	if (rc < 0)
		return cli_error("dmarc import: %s", error);
	printf("dmarc: %u report%s imported, %u already imported, %u other message%s\n",
	       c.imported, c.imported == 1 ? "" : "s", c.known, c.other, c.other == 1 ? "" : "s");
	return CLI_OK;
}

static int dmarc_import(struct config *cfg, int argc, char **argv)
{
	const char *mailbox = NULL, *folder = "INBOX", *file = NULL, *error = NULL;
	struct dmarcrep_import_info info;
	struct store *store;
	char *data = NULL, *what;
	size_t len = 0;
	int fd, rc;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--mailbox") == 0 && i + 1 < argc)
			mailbox = argv[++i];
		else if (strcmp(argv[i], "--folder") == 0 && i + 1 < argc)
			folder = argv[++i];
		else if ((argv[i][0] != '-' || strcmp(argv[i], "-") == 0) && file == NULL)
			file = argv[i];
		else
			return cli_usage_error("usage: tern dmarc import FILE|- | --mailbox ADDRESS "
					       "[--folder NAME]");
	}
	if ((file == NULL) == (mailbox == NULL))
		return cli_usage_error("usage: tern dmarc import FILE|- | --mailbox ADDRESS "
				       "[--folder NAME]");
	if (mailbox != NULL)
		return import_mailbox(cfg, mailbox, folder);
	fd = strcmp(file, "-") == 0 ? 0 : open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_error("dmarc import: %s: %s", file, strerror(errno));
	rc = dmarcrep_import_read(fd, &data, &len, &error);
	if (fd != 0)
		close(fd);
	if (rc < 0)
		return cli_error("dmarc import: %s: %s", file, error);
	if (cli_store_open(cfg, false, &store) < 0) {
		free(data);
		return CLI_FAIL;
	}
	rc = dmarcrep_import_bytes(store, data, len, dmarcrep_import_not_before(cfg, clock_now()),
				   &info, &error);
	store_close(&store);
	free(data);
	if (rc < 0)
		return cli_error("dmarc import: %s", error);
	what = describe(&info);
	printf("dmarc: %s%s\n", what, rc == 0 ? " (already imported)" : "");
	free(what);
	dmarcrep_import_info_clear(&info);
	return CLI_OK;
}

struct summary_ctx {
	bool json;
	json_t *array;
	unsigned count;
};

static int summary_row(void *ctx, const struct store_dmarc_summary *s)
{
	struct summary_ctx *c = ctx;

	c->count++;
	if (c->json) {
		json_t *o = json_object();
		json_object_set_new(o, "source_ip", json_string(s->source_ip));
		json_object_set_new(o, "reporters", json_string(s->org_name));
		json_object_set_new(o, "messages", json_integer(s->total));
		json_object_set_new(o, "spf_pass", json_integer(s->spf_pass));
		json_object_set_new(o, "spf_fail", json_integer(s->total - s->spf_pass));
		json_object_set_new(o, "dkim_pass", json_integer(s->dkim_pass));
		json_object_set_new(o, "dkim_fail", json_integer(s->total - s->dkim_pass));
		json_object_set_new(o, "aligned_pass", json_integer(s->aligned_pass));
		json_object_set_new(o, "aligned_fail", json_integer(s->total - s->aligned_pass));
		json_array_append_new(c->array, o);
		return 0;
	}
	if (c->count == 1)
		printf("%-39s %8s %8s %8s %8s %8s %8s %8s  %s\n", "source", "messages", "spf-ok",
		       "spf-bad", "dkim-ok", "dkim-bad", "dmarc-ok", "dmarc-bad", "reported by");
	printf("%-39s %8lld %8lld %8lld %8lld %8lld %8lld %8lld  %s\n", s->source_ip,
	       (long long)s->total, (long long)s->spf_pass, (long long)(s->total - s->spf_pass),
	       (long long)s->dkim_pass, (long long)(s->total - s->dkim_pass),
	       (long long)s->aligned_pass, (long long)(s->total - s->aligned_pass), s->org_name);
	return 0;
}

static int dmarc_summary(struct config *cfg, int argc, char **argv)
{
	struct summary_ctx c = { 0 };
	const char *domain = NULL, *error = NULL;
	unsigned long days = 7;
	struct store *store;
	int rc;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			c.json = true;
		} else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc) {
			char *end;
			days = strtoul(argv[++i], &end, 10);
			if (*end != '\0' || days == 0 || days > 3650)
				return cli_usage_error("dmarc summary: --days takes 1 to 3650");
		} else if (argv[i][0] != '-' && domain == NULL) {
			domain = argv[i];
		} else {
			return cli_usage_error("dmarc summary: unknown option '%s'", argv[i]);
		}
	}
	if (domain == NULL)
		return cli_usage_error("usage: tern dmarc summary DOMAIN [--days N] [--json]");
	if (cli_store_open(cfg, true, &store) < 0)
		return CLI_FAIL;
	if (c.json)
		c.array = json_array();
	rc = store_dmarc_summary(store, domain, (int64_t)clock_now() - (int64_t)days * 86400,
				 summary_row, &c, &error);
	store_close(&store);
	if (rc < 0) {
		json_decref(c.array);
		return cli_error("dmarc summary: %s", error);
	}
	if (c.json) {
		char *s = json_dumps(c.array, JSON_INDENT(1));
		puts(s != NULL ? s : "[]");
		free(s);
		json_decref(c.array);
	} else if (c.count == 0) {
		printf("no DMARC reports for %s in the last %lu day%s\n", domain, days,
		       days == 1 ? "" : "s");
	}
	return CLI_OK;
}

int cli_dmarc(struct config *cfg, int argc, char **argv)
{
	if (strcmp(argv[1], "send") == 0)
		return dmarc_send(cfg, argc, argv);
	if (strcmp(argv[1], "import") == 0)
		return dmarc_import(cfg, argc, argv);
	if (strcmp(argv[1], "summary") == 0)
		return dmarc_summary(cfg, argc, argv);
	return cli_usage_error("unknown dmarc action '%s'", argv[1]);
}
