/* `tern dkim keygen|list|rotate|activate`: the DKIM signing keys of our
 * domains (store/dkim-keys.h), made and rotated here, used by the running
 * server's signer (cli/serve-dkim.c), which sees every change without a
 * restart.
 *
 *   tern dkim keygen DOMAIN [--selector S] [--algorithm rsa2048|ed25519]
 *   tern dkim list [DOMAIN] [--json]
 *   tern dkim rotate DOMAIN
 *   tern dkim activate DOMAIN SELECTOR
 *
 * Rules (docs/dkim.md): a key made while its domain has no active key of
 * that algorithm is active at once (nothing to rotate from); otherwise it
 * is pending, and the server activates it once its DNS record is visible
 * (or `activate` forces it), making the key it replaces retiring for
 * dkim.rotation_grace seconds.  keygen and rotate print the records to
 * publish as zone-file lines (RFC 6376 section 3.6.2.1). */
#include "cli/cli.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "mailauth/dkim-manage.h"
#include "store/dkim-keys.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What a domain has: its selectors, and per key type an active and a
 * pending selector (the newest of each). */
struct domain_keys {
	char **selectors;
	size_t n;
	char *active[2], *pending[2];
};

static int collect(void *ctx, const struct store_dkim_key *k)
{
	struct domain_keys *d = ctx;
	enum dkim_key_type t;

	d->selectors = xrealloc(d->selectors, (d->n + 1) * sizeof(*d->selectors));
	d->selectors[d->n++] = xstrdup(k->selector);
	if (dkim_key_type_from_algorithm(k->algorithm, &t) < 0)
		return 0;
	if (k->state == STORE_DKIM_ACTIVE) {
		free(d->active[t]);
		d->active[t] = xstrdup(k->selector);
	} else if (k->state == STORE_DKIM_PENDING) {
		free(d->pending[t]);
		d->pending[t] = xstrdup(k->selector);
	}
	return 0;
}

static void domain_keys_clear(struct domain_keys *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->selectors[i]);
	free(d->selectors);
	for (int t = 0; t < 2; t++) {
		free(d->active[t]);
		free(d->pending[t]);
	}
	memset(d, 0, sizeof(*d));
}

/* Normalise and check domain (one of the store's); the store opened
 * read-write and the domain's keys collected.  CLI status. */
static int open_domain(struct config *cfg, const char *arg, char **domain_r,
		       struct store **store_r, struct domain_keys *d)
{
	struct store_domain sd = { 0 };
	const char *error = NULL;
	char *domain = cli_domain_normalize(arg, &error);
	int rc;

	memset(d, 0, sizeof(*d));
	if (domain == NULL)
		return cli_error("%s: %s", arg, error);
	if (cli_store_open(cfg, false, store_r) < 0) {
		free(domain);
		return CLI_FAIL;
	}
	rc = store_domain_get(*store_r, domain, &sd, &error);
	store_domain_clear(&sd);
	if (rc <= 0) {
		store_close(store_r);
		if (rc < 0)
			rc = cli_error("%s: %s", domain, error);
		else
			rc = cli_error("%s is not a local domain (add it with `tern domain add`)",
				       domain);
		free(domain);
		return rc;
	}
	if (store_dkim_keys_list(*store_r, domain, collect, d, &error) < 0) {
		store_close(store_r);
		free(domain);
		domain_keys_clear(d);
		return cli_error("%s: %s", arg, error);
	}
	*domain_r = domain;
	return CLI_OK;
}

/* Make one key and store it; prints its record.  CLI status. */
static int make_key(struct store *store, const char *domain, const char *selector,
		    enum dkim_key_type type, int state)
{
	struct store_dkim_key k = { 0 };
	struct buf line;
	const char *error = NULL;
	char *pem, *pub;
	int rc;

	if (dkim_keygen(type, &pem, &pub, &error) < 0)
		return cli_error("%s: %s", domain, error);
	k.domain = (char *)domain;
	k.selector = (char *)selector;
	k.algorithm = (char *)dkim_key_type_algorithm(type);
	k.private_key = pem;
	k.public_key = pub;
	k.state = state;
	k.created = clock_now();
	rc = store_dkim_key_add(store, &k, NULL, &error);
	explicit_bzero(pem, strlen(pem));
	free(pem);
	if (rc < 0) {
		free(pub);
		return cli_error("%s: %s", domain, error);
	}
	buf_init(&line, 65536);
	dkim_record_zone_line(selector, domain, type, pub, &line);
	printf("; %s %s key, selector %s: %s\n%s", domain,
	       type == DKIM_KEY_RSA ? "RSA-2048" : "Ed25519", selector,
	       state == STORE_DKIM_ACTIVE ? "active (signing now)"
	       : "pending (signs once this record is visible in DNS)", buf_cstr(&line));
	buf_free(&line);
	free(pub);
	return CLI_OK;
}

static int dkim_keygen_cmd(struct config *cfg, int argc, char **argv)
{
	const char *arg_domain = NULL, *selector = NULL, *alg = NULL;
	bool want[2] = { true, true };
	struct domain_keys d;
	struct store *store;
	char *domain = NULL, *base = NULL;
	int rc = CLI_OK;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--selector") == 0 && i + 1 < argc)
			selector = argv[++i];
		else if (strcmp(argv[i], "--algorithm") == 0 && i + 1 < argc)
			alg = argv[++i];
		else if (argv[i][0] == '-')
			return cli_usage_error("dkim keygen: unknown option '%s'", argv[i]);
		else if (arg_domain == NULL)
			arg_domain = argv[i];
		else
			return cli_usage_error("dkim keygen: one domain at a time");
	}
	if (arg_domain == NULL)
		return cli_usage_error("usage: tern dkim keygen DOMAIN [--selector S] "
				       "[--algorithm rsa2048|ed25519]");
	if (alg != NULL) {
		if (strcmp(alg, "rsa2048") == 0 || strcmp(alg, "rsa") == 0)
			want[DKIM_KEY_ED25519] = false;
		else if (strcmp(alg, "ed25519") == 0)
			want[DKIM_KEY_RSA] = false;
		else
			return cli_usage_error("dkim keygen: unknown algorithm '%s' "
					       "(rsa2048 or ed25519)", alg);
	}
	if ((rc = open_domain(cfg, arg_domain, &domain, &store, &d)) != CLI_OK)
		return rc;
	if (selector == NULL)
		base = dkim_selector_next(clock_now(), (const char *const *)d.selectors, d.n);
	for (int t = 0; t < 2 && rc == CLI_OK; t++) {
		char *sel;
		if (!want[t])
			continue;
		if (selector != NULL && alg != NULL)
			sel = xstrdup(selector);
		else
			sel = xasprintf("%s-%s", selector != NULL ? selector : base,
					t == DKIM_KEY_RSA ? "rsa" : "ed");
		rc = make_key(store, domain, sel, (enum dkim_key_type)t,
			      d.active[t] == NULL ? STORE_DKIM_ACTIVE : STORE_DKIM_PENDING);
		free(sel);
	}
	store_close(&store);
	domain_keys_clear(&d);
	free(base);
	free(domain);
	return rc;
}

static int dkim_rotate_cmd(struct config *cfg, int argc, char **argv)
{
	struct domain_keys d;
	struct store *store;
	char *domain = NULL, *base;
	int rc, made = 0;

	if (argc != 3)
		return cli_usage_error("usage: tern dkim rotate DOMAIN");
	if ((rc = open_domain(cfg, argv[2], &domain, &store, &d)) != CLI_OK)
		return rc;
	for (int t = 0; t < 2; t++) {
		if (d.pending[t] != NULL) {
			rc = cli_error("%s: a rotation is already pending (selector %s): publish "
				       "its record, or run `tern dkim activate %s %s`", domain,
				       d.pending[t], domain, d.pending[t]);
			goto out;
		}
	}
	if (d.active[0] == NULL && d.active[1] == NULL) {
		rc = cli_error("%s has no active DKIM key to rotate (make one with "
			       "`tern dkim keygen %s`)", domain, domain);
		goto out;
	}
	base = dkim_selector_next(clock_now(), (const char *const *)d.selectors, d.n);
	for (int t = 0; t < 2 && rc == CLI_OK; t++) {
		if (d.active[t] == NULL)
			continue;
		char *sel = xasprintf("%s-%s", base, t == DKIM_KEY_RSA ? "rsa" : "ed");
		rc = make_key(store, domain, sel, (enum dkim_key_type)t, STORE_DKIM_PENDING);
		free(sel);
		made++;
	}
	free(base);
	if (rc == CLI_OK)
		printf("; publish the record%s above; the server switches to the new key%s once "
		       "%s visible in DNS\n", made > 1 ? "s" : "", made > 1 ? "s" : "",
		       made > 1 ? "they are" : "it is");
out:
	store_close(&store);
	domain_keys_clear(&d);
	free(domain);
	return rc;
}

static int dkim_activate_cmd(struct config *cfg, int argc, char **argv)
{
	struct store_dkim_key k;
	struct domain_keys d;
	struct store *store;
	const char *error = NULL;
	char *domain = NULL;
	time_t now = clock_now(), until = now + (time_t)cfg->dkim.rotation_grace;
	int rc, n;

	if (argc != 4)
		return cli_usage_error("usage: tern dkim activate DOMAIN SELECTOR");
	if ((rc = open_domain(cfg, argv[2], &domain, &store, &d)) != CLI_OK)
		return rc;
	n = store_dkim_key_get(store, domain, argv[3], &k, &error);
	if (n <= 0) {
		rc = n < 0 ? cli_error("%s: %s", domain, error)
			: cli_error("%s has no DKIM key with selector %s", domain, argv[3]);
	} else if (k.state == STORE_DKIM_ACTIVE) {
		printf("%s: selector %s is already active\n", domain, k.selector);
	} else if ((n = store_dkim_key_activate(store, k.id, now, until, &error)) < 0) {
		rc = cli_error("%s: %s", domain, error);
	} else {
		struct tm tm;
		char when[32];
		gmtime_r(&until, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
		printf("%s: selector %s is active; %d older key%s retiring until %s\n", domain,
		       k.selector, n, n == 1 ? "" : "s", when);
	}
	store_dkim_key_clear(&k);
	store_close(&store);
	domain_keys_clear(&d);
	free(domain);
	return rc;
}

struct list_ctx {
	json_t *array;
	unsigned count;
};

static void fmt_time(time_t t, char *out, size_t outsz)
{
	struct tm tm;

	if (t == 0) {
		snprintf(out, outsz, "-");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int list_key(void *ctx, const struct store_dkim_key *k)
{
	struct list_ctx *c = ctx;
	char created[32], activated[32], retire[32];
	enum dkim_key_type t = DKIM_KEY_RSA;

	c->count++;
	fmt_time(k->created, created, sizeof(created));
	fmt_time(k->activated, activated, sizeof(activated));
	fmt_time(k->retire_at, retire, sizeof(retire));
	if (c->array != NULL) {
		struct buf rec;
		json_t *o = json_object();
		buf_init(&rec, 65536);
		if (dkim_key_type_from_algorithm(k->algorithm, &t) == 0)
			dkim_record_text(t, k->public_key, &rec);
		json_object_set_new(o, "domain", json_string(k->domain));
		json_object_set_new(o, "selector", json_string(k->selector));
		json_object_set_new(o, "algorithm", json_string(k->algorithm));
		json_object_set_new(o, "state", json_string(store_dkim_state_name(k->state)));
		json_object_set_new(o, "created", json_integer((json_int_t)k->created));
		json_object_set_new(o, "activated", k->activated ? json_integer((json_int_t)k->activated)
				    : json_null());
		json_object_set_new(o, "retire_at", k->retire_at ? json_integer((json_int_t)k->retire_at)
				    : json_null());
		json_object_set_new(o, "public_key", json_string(k->public_key));
		json_object_set_new(o, "dns_name", json_sprintf("%s._domainkey.%s", k->selector,
								 k->domain));
		json_object_set_new(o, "dns_record", json_string(buf_cstr(&rec)));
		json_array_append_new(c->array, o);
		buf_free(&rec);
		return 0;
	}
	printf("%-30s %-20s %-15s %-9s created=%s activated=%s retire_at=%s\n", k->domain,
	       k->selector, k->algorithm, store_dkim_state_name(k->state), created, activated,
	       retire);
	return 0;
}

static int dkim_list_cmd(struct config *cfg, int argc, char **argv)
{
	struct list_ctx c = { 0 };
	struct store *store;
	const char *error = NULL, *arg = NULL;
	char *domain = NULL;
	bool json = false;
	int rc;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (argv[i][0] == '-')
			return cli_usage_error("dkim list: unknown option '%s'", argv[i]);
		else if (arg == NULL)
			arg = argv[i];
		else
			return cli_usage_error("usage: tern dkim list [DOMAIN] [--json]");
	}
	if (arg != NULL && (domain = cli_domain_normalize(arg, &error)) == NULL)
		return cli_error("%s: %s", arg, error);
	if (cli_store_open(cfg, true, &store) < 0) {
		free(domain);
		return CLI_FAIL;
	}
	if (json)
		c.array = json_array();
	rc = store_dkim_keys_list(store, domain, list_key, &c, &error);
	store_close(&store);
	free(domain);
	if (rc < 0) {
		json_decref(c.array);
		return cli_error("dkim list: %s", error);
	}
	if (json) {
		char *s = json_dumps(c.array, JSON_INDENT(1));
		puts(s != NULL ? s : "[]");
		free(s);
		json_decref(c.array);
	} else if (c.count == 0) {
		puts("no DKIM keys (make them with `tern dkim keygen DOMAIN`)");
	}
	return CLI_OK;
}

int cli_dkim(struct config *cfg, int argc, char **argv)
{
	if (strcmp(argv[1], "keygen") == 0)
		return dkim_keygen_cmd(cfg, argc, argv);
	if (strcmp(argv[1], "list") == 0)
		return dkim_list_cmd(cfg, argc, argv);
	if (strcmp(argv[1], "rotate") == 0)
		return dkim_rotate_cmd(cfg, argc, argv);
	if (strcmp(argv[1], "activate") == 0)
		return dkim_activate_cmd(cfg, argc, argv);
	return cli_usage_error("unknown dkim action '%s'", argv[1]);
}
