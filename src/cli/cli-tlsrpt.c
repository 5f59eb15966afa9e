/* `tern tlsrpt list|send`: SMTP TLS reporting (RFC 8460) for
 * administrators (queue/tlsrpt.h collects and sends, store/tlsrpt.c keeps
 * the results).
 *
 *   tern tlsrpt list [--domain D] [--json]   the collected TLS results
 *   tern tlsrpt send [--now]                 send the due reports at once;
 *                                            --now also reports today so far
 *
 * The running server writes what it collected every few seconds; `send`
 * queues report mails in the store, which the server's queue delivers on
 * its next scan. */
#include "cli/cli.h"
#include "lib/config.h"
#include "queue/tlsrpt.h"
#include "store/store.h"
#include "store/tlsrpt.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct list_ctx {
	bool json;
	json_t *array;
	unsigned count;
};

static int list_row(void *ctx, const struct store_tls_result *r)
{
	struct list_ctx *c = ctx;
	time_t t = (time_t)(r->day * 86400);
	struct tm tm;
	char day[16];

	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	c->count++;
	if (c->json) {
		json_t *o = json_object();
		json_object_set_new(o, "day", json_string(day));
		json_object_set_new(o, "policy_domain", json_string(r->policy_domain));
		json_object_set_new(o, "policy_type", json_string(r->policy_type));
		json_object_set_new(o, "policy", json_string(r->policy));
		json_object_set_new(o, "mx_host", json_string(r->mx_host));
		json_object_set_new(o, "receiving_ip", json_string(r->receiving_ip));
		json_object_set_new(o, "result_type",
				    json_string(r->result_type[0] ? r->result_type : "success"));
		json_object_set_new(o, "detail", json_string(r->detail));
		json_object_set_new(o, "count", json_integer(r->count));
		json_object_set_new(o, "reported", json_boolean(r->reported));
		json_array_append_new(c->array, o);
		return 0;
	}
	printf("%s %-24s %-15s %-28s %-15s %-26s %6lld%s\n", day, r->policy_domain,
	       r->policy_type, r->mx_host[0] ? r->mx_host : "-",
	       r->receiving_ip[0] ? r->receiving_ip : "-",
	       r->result_type[0] ? r->result_type : "success", (long long)r->count,
	       r->reported ? " reported" : "");
	return 0;
}

static int tlsrpt_list(struct config *cfg, int argc, char **argv)
{
	struct store_tlsrpt_filter f = { .max_day = -1 };
	struct list_ctx c = { 0 };
	struct store *store;
	const char *error = NULL;
	int rc;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			c.json = true;
		else if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc)
			f.domain = argv[++i];
		else
			return cli_usage_error("tlsrpt list: unknown option '%s'", argv[i]);
	}
	if (cli_store_open(cfg, true, &store) < 0)
		return CLI_FAIL;
	if (c.json)
		c.array = json_array();
	rc = store_tlsrpt_list(store, &f, list_row, &c, &error);
	store_close(&store);
	if (rc < 0) {
		json_decref(c.array);
		return cli_error("tlsrpt list: %s", error);
	}
	if (c.json) {
		char *s = json_dumps(c.array, JSON_INDENT(1));
		puts(s != NULL ? s : "[]");
		free(s);
		json_decref(c.array);
	} else if (c.count == 0) {
		puts("no TLS results collected");
	}
	return CLI_OK;
}

static int tlsrpt_send(struct config *cfg, int argc, char **argv)
{
	struct tlsrpt_send_stats st;
	struct store *store;
	const char *error = NULL;
	bool now = false;
	int rc;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--now") == 0)
			now = true;
		else
			return cli_usage_error("tlsrpt send: unknown option '%s'", argv[i]);
	}
	if (!cfg->tlsrpt.enabled)
		return cli_error("tlsrpt send: TLS reporting is disabled (tlsrpt.enabled)");
	if (cli_store_open(cfg, false, &store) < 0)
		return CLI_FAIL;
	rc = tlsrpt_send_run(store, cfg, now, &st, &error);
	store_close(&store);
	if (rc < 0)
		return cli_error("tlsrpt send: %s", error ? error : "failed");
	printf("tlsrpt: %u domain%s, %u report%s sent, %u without a TLS-RPT record, %u failed\n",
	       st.domains, st.domains == 1 ? "" : "s", st.reports, st.reports == 1 ? "" : "s",
	       st.no_record, st.failed);
	return st.failed > 0 ? CLI_FAIL : CLI_OK;
}

int cli_tlsrpt(struct config *cfg, int argc, char **argv)
{
	if (strcmp(argv[1], "list") == 0)
		return tlsrpt_list(cfg, argc, argv);
	if (strcmp(argv[1], "send") == 0)
		return tlsrpt_send(cfg, argc, argv);
	return cli_usage_error("unknown tlsrpt action '%s'", argv[1]);
}
