/* `tern queue list|show|flush|hold|release|delete|bounce`: the outbound
 * queue for administrators (store/queue.c keeps it).
 *
 *   tern queue list [--sender S] [--rcpt R] [--domain D] [--older-than AGE]
 *                   [--state queued|deferred|held] [--json]
 *   tern queue show ID [--json]        envelope, recipients, headers
 *   tern queue flush ID | --domain D   try again now
 *   tern queue hold|release|delete|bounce ID
 *
 * AGE is a number with s, m, h or d.  The running server notices the
 * changes on its next queue scan (within a few seconds). */
#include "cli/cli.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "mail/header.h"
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *state_name(enum store_queue_state s)
{
	switch (s) {
	case STORE_QUEUE_QUEUED: return "queued";
	case STORE_QUEUE_DEFERRED: return "deferred";
	case STORE_QUEUE_DELIVERED: return "delivered";
	case STORE_QUEUE_BOUNCED: return "bounced";
	}
	return "?";
}

static void json_string(const char *s)
{
	putchar('"');
	for (; s != NULL && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_time(time_t t)
{
	char buf[32];
	struct tm tm;

	if (t <= 0) {
		fputs("-", stdout);
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fputs(buf, stdout);
}

struct list_ctx {
	bool json;
	bool show;          /* with headers */
	const char *state;  /* NULL, "queued", "deferred", "held" */
	unsigned count;
};

static bool state_matches(const struct list_ctx *c, const struct store_queue_msg *m)
{
	if (c->state == NULL)
		return true;
	if (strcmp(c->state, "held") == 0)
		return m->held;
	for (size_t i = 0; i < m->rcpt_count; i++)
		if (strcmp(state_name(m->rcpts[i].state), c->state) == 0)
			return true;
	return false;
}

static void print_headers(const char *path, bool json)
{
	FILE *f = fopen(path, "r");
	struct buf h;
	char line[4096];

	buf_init(&h, 1024 * 1024);
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (strcmp(line, "\r\n") == 0 || strcmp(line, "\n") == 0)
			break;
		buf_append_str(&h, line);
	}
	if (f != NULL)
		fclose(f);
	if (json) {
		printf(", \"headers\": ");
		json_string(buf_cstr(&h));
	} else {
		printf("  headers:\n");
		for (const char *p = buf_cstr(&h); *p;) {
			size_t n = strcspn(p, "\r\n");
			printf("    %.*s\n", (int)n, p);
			p += n;
			p += strspn(p, "\r\n");
		}
	}
	buf_free(&h);
}

static int list_one(void *ctx, const struct store_queue_msg *m)
{
	struct list_ctx *c = ctx;

	if (!state_matches(c, m))
		return 0;
	if (c->json) {
		printf("%s{\"id\": ", c->count ? ",\n " : "");
		json_string(m->qid);
		printf(", \"sender\": ");
		json_string(m->sender);
		printf(", \"size\": %lld, \"created\": %lld, \"held\": %s, \"requiretls\": %s,"
		       " \"recipients\": [", (long long)m->size, (long long)m->created,
		       m->held ? "true" : "false",
		       (m->flags & STORE_QUEUE_F_REQUIRETLS) ? "true" : "false");
		for (size_t i = 0; i < m->rcpt_count; i++) {
			const struct store_queue_rcpt *r = &m->rcpts[i];
			printf("%s{\"address\": ", i ? ", " : "");
			json_string(r->address);
			printf(", \"state\": \"%s\", \"attempts\": %d, \"next_attempt\": %lld,"
			       " \"last_error\": ", state_name(r->state), r->attempts,
			       (long long)r->next_attempt);
			if (r->last_error)
				json_string(r->last_error);
			else
				printf("null");
			printf("}");
		}
		printf("]");
		if (c->show)
			print_headers(m->path, true);
		printf("}");
	} else {
		printf("%s  ", m->qid);
		print_time(m->created);
		printf("  %lld  <%s>%s%s\n", (long long)m->size, m->sender, m->held ? "  HELD" : "",
		       (m->flags & STORE_QUEUE_F_REQUIRETLS) ? "  REQUIRETLS" : "");
		for (size_t i = 0; i < m->rcpt_count; i++) {
			const struct store_queue_rcpt *r = &m->rcpts[i];
			printf("    %-9s %s  attempts=%d", state_name(r->state), r->address,
			       r->attempts);
			if (r->state < STORE_QUEUE_DELIVERED) {
				printf(" next=");
				print_time(r->next_attempt);
			}
			if (r->last_error)
				printf("  (%s)", r->last_error);
			printf("\n");
		}
		if (c->show)
			print_headers(m->path, false);
	}
	c->count++;
	return 0;
}

/* "90s", "15m", "2h", "3d" */
static int parse_age(const char *s, time_t *secs_r)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || end == s || n < 0 || n > 100LL * 365 * 86400)
		return -1;
	switch (*end) {
	case 's': case '\0': break;
	case 'm': n *= 60; break;
	case 'h': n *= 3600; break;
	case 'd': n *= 86400; break;
	default: return -1;
	}
	if (*end != '\0' && end[1] != '\0')
		return -1;
	*secs_r = (time_t)n;
	return 0;
}

/* ---- actions: the store's asynchronous write, waited for ---- */

struct wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int status;
	size_t count;
	char *error;
};

static void action_done(void *ctx, const struct store_write_result *r)
{
	struct wait *w = ctx;

	pthread_mutex_lock(&w->lock);
	w->status = r->status;
	w->count = r->count;
	w->error = r->status < 0 && r->error ? strdup(r->error) : NULL;
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static int queue_action(struct config *cfg, const char *qid, const char *domain,
			enum store_queue_action action, const char *verb)
{
	struct wait w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0, NULL };
	struct store *store;
	int ret = CLI_OK;

	if (cli_store_open(cfg, false, &store) < 0)
		return CLI_FAIL;
	if (store_queue_admin(store, NULL, qid, domain, action, action_done, &w) < 0) {
		store_close(&store);
		return cli_error("queue %s: the store refused the request", verb);
	}
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	if (w.status < 0)
		ret = cli_error("queue %s %s: %s", verb, qid ? qid : domain,
				w.error ? w.error : "failed");
	else
		printf("%s: %zu message%s\n", verb, w.count, w.count == 1 ? "" : "s");
	free(w.error);
	store_close(&store);
	return ret;
}

int cli_queue(struct config *cfg, int argc, char **argv)
{
	const char *action = argv[1];
	struct store_queue_filter f = { .now = clock_now() };
	struct list_ctx c = { 0 };
	const char *arg = NULL, *error = NULL;
	struct store *store;
	int rc;

	for (int i = 2; i < argc; i++) {
		const char *o = argv[i];
		bool has_value = i + 1 < argc;

		if (strcmp(o, "--json") == 0) {
			c.json = true;
		} else if (strcmp(o, "--sender") == 0 && has_value) {
			f.sender = argv[++i];
		} else if (strcmp(o, "--rcpt") == 0 && has_value) {
			f.rcpt = argv[++i];
		} else if (strcmp(o, "--domain") == 0 && has_value) {
			f.domain = argv[++i];
		} else if (strcmp(o, "--older-than") == 0 && has_value) {
			time_t age;
			if (parse_age(argv[++i], &age) < 0)
				return cli_usage_error("bad age '%s' (like 90s, 15m, 2h, 3d)", argv[i]);
			f.older_than = clock_now() - age;
		} else if (strcmp(o, "--state") == 0 && has_value) {
			c.state = argv[++i];
			if (strcmp(c.state, "queued") != 0 && strcmp(c.state, "deferred") != 0 &&
			    strcmp(c.state, "held") != 0)
				return cli_usage_error("--state is queued, deferred or held");
		} else if (o[0] == '-') {
			return cli_usage_error("unknown option '%s' for queue %s", o, action);
		} else if (arg == NULL) {
			arg = o;
		} else {
			return cli_usage_error("unexpected argument '%s'", o);
		}
	}
	if (strcmp(action, "list") == 0 || strcmp(action, "show") == 0) {
		bool show = strcmp(action, "show") == 0;
		if (show && arg == NULL)
			return cli_usage_error("usage: tern queue show ID [--json]");
		if (!show && arg != NULL)
			return cli_usage_error("usage: tern queue list [filters] [--json]");
		f.qid = arg;
		f.pending_only = !show;
		c.show = show;
		if (cli_store_open(cfg, true, &store) < 0)
			return CLI_FAIL;
		if (c.json)
			printf("[");
		rc = store_queue_list(store, &f, list_one, &c, &error);
		if (c.json)
			printf("]\n");
		store_close(&store);
		if (rc < 0)
			return cli_error("queue %s: %s", action, error);
		if (show && c.count == 0)
			return cli_error("queue show: no queued message %s", arg);
		if (!c.json && c.count == 0)
			fprintf(stderr, "the queue is empty\n");
		return CLI_OK;
	}
	static const struct {
		const char *name;
		enum store_queue_action action;
	} actions[] = {
		{ "flush", STORE_QUEUE_FLUSH }, { "hold", STORE_QUEUE_HOLD },
		{ "release", STORE_QUEUE_RELEASE }, { "delete", STORE_QUEUE_DELETE },
		{ "bounce", STORE_QUEUE_BOUNCE },
	};
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		if (strcmp(action, actions[i].name) != 0)
			continue;
		if (actions[i].action == STORE_QUEUE_FLUSH && f.domain != NULL && arg == NULL)
			return queue_action(cfg, NULL, f.domain, STORE_QUEUE_FLUSH, action);
		if (arg == NULL || f.domain != NULL)
			return cli_usage_error("usage: tern queue %s ID%s", action,
					       actions[i].action == STORE_QUEUE_FLUSH ?
					       " | --domain DOMAIN" : "");
		return queue_action(cfg, arg, NULL, actions[i].action, action);
	}
	return cli_usage_error("unknown action 'queue %s'", action);
}
