/* `tern dmarc send|import|summary`: DMARC aggregate reports (RFC 7489
 * 7.2) for administrators (queue/dmarcrep.h sends ours,
 * mailauth/dmarc-report.h parses others', store/dmarc.h keeps both).
 *
 *   tern dmarc send [--now]        send the due reports at once; --now
 *                                  also reports today so far
 *   tern dmarc import FILE|-       keep a received report: a mail with
 *                                  the report attached, or the report
 *                                  itself (XML, gzip or zip)
 *   tern dmarc summary DOMAIN [--days N] [--json]
 *                                  per sending source, what the received
 *                                  reports say passed and failed
 *
 * Input is read up to DMARC_IMPORT_MAX bytes; more is refused. */
#include "cli/cli.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "mailauth/dmarc-report.h"
#include "queue/dmarcrep.h"
#include "store/dmarc.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DMARC_IMPORT_MAX (64u << 20)   /* bytes of one mail or report file */

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

static bool looks_like_report(const struct buf *b)
{
	const unsigned char *d = (const unsigned char *)b->data;
	size_t i = 0;

	if (b->len >= 2 && d[0] == 0x1f && d[1] == 0x8b)
		return true;
	if (b->len >= 4 && memcmp(d, "PK\003\004", 4) == 0)
		return true;
	if (b->len >= 3 && memcmp(d, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < b->len && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n'))
		i++;
	return i < b->len && d[i] == '<';
}

static int dmarc_import(struct config *cfg, int argc, char **argv)
{
	struct buf in, att;
	const struct buf *rep = &in;
	struct dmarc_report_in r;
	struct store *store;
	const char *error = NULL;
	int fd, rc;
	long got;

	if (argc != 3)
		return cli_usage_error("usage: tern dmarc import FILE|-");
	fd = strcmp(argv[2], "-") == 0 ? 0 : open(argv[2], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_error("dmarc import: %s: %s", argv[2], strerror(errno));
	buf_init(&in, DMARC_IMPORT_MAX);
	buf_init(&att, DMARC_IMPORT_MAX);
	for (;;) {
		char chunk[65536];
		got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		if (buf_append(&in, chunk, (size_t)got) < 0) {
			got = -1;
			break;
		}
	}
	if (fd != 0)
		close(fd);
	if (got < 0) {
		buf_free(&in);
		buf_free(&att);
		return cli_error("dmarc import: %s: read failed or larger than %u bytes", argv[2],
				 DMARC_IMPORT_MAX);
	}
	if (!looks_like_report(&in)) {
		if (dmarc_report_from_message(in.data != NULL ? in.data : "", in.len, &att,
					      &error) < 0) {
			buf_free(&in);
			buf_free(&att);
			return cli_error("dmarc import: %s", error);
		}
		rep = &att;
	}
	rc = dmarc_report_parse(rep->data != NULL ? rep->data : "", rep->len, &r, &error);
	buf_free(&in);
	buf_free(&att);
	if (rc < 0)
		return cli_error("dmarc import: %s", error);
	if (cli_store_open(cfg, false, &store) < 0) {
		dmarc_report_clear(&r);
		return CLI_FAIL;
	}
	struct store_dmarc_row *rows = xcalloc(r.count ? r.count : 1, sizeof(*rows));
	for (size_t i = 0; i < r.count; i++) {
		const struct dmarc_report_row *w = &r.rows[i];
		rows[i] = (struct store_dmarc_row){
			.source_ip = w->source_ip, .count = w->count, .disposition = w->disposition,
			.eval_dkim = w->eval_dkim, .eval_spf = w->eval_spf,
			.header_from = w->header_from, .dkim_result = w->dkim_result,
			.spf_result = w->spf_result,
		};
	}
	struct store_dmarc_report sr = {
		.org_name = r.org_name, .email = r.email, .report_id = r.report_id,
		.domain = r.domain, .date_begin = r.begin, .date_end = r.end,
		.rows = rows, .count = r.count,
	};
	rc = store_dmarc_import(store, &sr, &error);
	store_close(&store);
	free(rows);
	if (rc < 0) {
		dmarc_report_clear(&r);
		return cli_error("dmarc import: %s", error);
	}
	printf("dmarc: report %s from %s for %s, %zu record%s%s\n", r.report_id, r.org_name,
	       r.domain, r.count, r.count == 1 ? "" : "s", rc == 0 ? " (already imported)" : "");
	dmarc_report_clear(&r);
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
