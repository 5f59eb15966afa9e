/* tern.conf: parse and validate the server-wide configuration (libconfig
 * 1.5 syntax), and write the commented template `tern init` starts from.
 *
 * Invariants:
 *  - Every setting has a default set before parsing, so a file holding only
 *    `hostname = "...";` gives a complete, usable struct config.
 *  - The file is checked strictly: an unknown name, a wrong type, a value
 *    out of range or a malformed address is an error naming FILE:LINE
 *    (config_setting_source_line()) and what was expected.  Nothing is
 *    silently ignored, so a typo never turns into a default.
 *  - Every path in struct config is absolute: relative paths are joined to
 *    the realpath of the config file's directory.
 *  - Strings in struct config are malloc'd and owned by it; config_free()
 *    releases them all.
 * The settings and their defaults are documented in docs/configuration.md
 * and, as comments, in the template written by config_write_template(). */
#include "lib/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "lib/buf.h"

#define CONFIG_DEFAULT_FILE "/etc/tern/tern.conf"
#define CONFIG_MAX_HOSTNAME 253
#define CONFIG_MAX_USER 32
#define CONFIG_MAX_SEPARATORS 8

static const char *const listener_names[LISTENER_KIND_COUNT] = {
	[LISTENER_SMTP] = "smtp",
	[LISTENER_SUBMISSION] = "submission",
	[LISTENER_SUBMISSIONS] = "submissions",
	[LISTENER_IMAP] = "imap",
	[LISTENER_IMAPS] = "imaps",
	[LISTENER_POP3] = "pop3",
	[LISTENER_POP3S] = "pop3s",
	[LISTENER_HTTP] = "http",
	[LISTENER_HTTPS] = "https",
};

static const int listener_ports[LISTENER_KIND_COUNT] = {
	[LISTENER_SMTP] = 25,
	[LISTENER_SUBMISSION] = 587,
	[LISTENER_SUBMISSIONS] = 465,
	[LISTENER_IMAP] = 143,
	[LISTENER_IMAPS] = 993,
	[LISTENER_POP3] = 110,
	[LISTENER_POP3S] = 995,
	[LISTENER_HTTP] = 80,
	[LISTENER_HTTPS] = 443,
};

const char *listener_kind_name(enum listener_kind kind)
{
	if ((unsigned)kind >= LISTENER_KIND_COUNT)
		return "unknown";
	return listener_names[kind];
}

int listener_kind_default_port(enum listener_kind kind)
{
	if ((unsigned)kind >= LISTENER_KIND_COUNT)
		return 0;
	return listener_ports[kind];
}

const char *config_default_path(void)
{
	const char *env = getenv("TERN_CONF");
	return env != NULL && *env != '\0' ? env : CONFIG_DEFAULT_FILE;
}

int config_parse_size(const char *s, uint64_t *bytes_r)
{
	uint64_t n = 0, mult = 1;
	const char *p = s;

	if (s == NULL || !isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (n > ((uint64_t)INT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	switch (toupper((unsigned char)*p)) {
	case 'K': mult = 1ULL << 10; p++; break;
	case 'M': mult = 1ULL << 20; p++; break;
	case 'G': mult = 1ULL << 30; p++; break;
	case 'T': mult = 1ULL << 40; p++; break;
	default: break;
	}
	if (toupper((unsigned char)*p) == 'B')
		p++;
	if (*p != '\0')
		return -1;
	if (n != 0 && mult > (uint64_t)INT64_MAX / n)
		return -1;
	*bytes_r = n * mult;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Validation of single values (shared by the parser and the template) */

bool config_hostname_valid(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > CONFIG_MAX_HOSTNAME)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && s[len - 1] != '-';
}

/* A host name (the trailing dot, if any, removed by the caller). */
static bool hostname_valid(const char *s)
{
	return config_hostname_valid(s, strlen(s));
}

/* A POSIX-portable user name as useradd accepts it. */
static bool user_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > CONFIG_MAX_USER || s[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '_' && c != '-' && c != '.')
			return false;
	}
	return true;
}

static bool ip_valid(const char *s)
{
	unsigned char tmp[16];
	return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

/* "ADDR" or "ADDR/PREFIX" with PREFIX 0-32 (IPv4) or 0-128 (IPv6). */
static bool cidr_valid(const char *s)
{
	const char *slash = strchr(s, '/');
	unsigned char tmp[16];
	char *addr;
	int family = 0;
	unsigned prefix = 0, max;

	if (slash == NULL)
		return ip_valid(s);
	addr = xstrndup(s, (size_t)(slash - s));
	if (inet_pton(AF_INET, addr, tmp) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, addr, tmp) == 1)
		family = AF_INET6;
	free(addr);
	if (family == 0)
		return false;
	max = family == AF_INET ? 32 : 128;
	const char *p = slash + 1;
	if (*p == '\0' || strlen(p) > 3)
		return false;
	for (; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p))
			return false;
		prefix = prefix * 10 + (unsigned)(*p - '0');
	}
	return prefix <= max;
}

/* ------------------------------------------------------------------ */
/* The parser: a table of known settings per group */

struct parse_ctx {
	const char *name;       /* file name for messages */
	struct config *cfg;
	char *error;            /* first error (malloc'd) */
};

struct key;
typedef int key_handler(struct parse_ctx *p, const config_setting_t *s, const struct key *k);

struct key {
	const char *name;
	key_handler *handler;
	size_t off;                 /* offset of the target in struct config */
	int64_t min, max;           /* integer range; for strings: min 0 allows "" */
	const struct key *group;    /* sub-table for groups */
	int index;                  /* listener kind for ports */
};

static int fail(struct parse_ctx *p, const config_setting_t *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct parse_ctx *p, const config_setting_t *s, const char *fmt, ...)
{
	const char *file = config_setting_source_file(s);
	char *msg;
	va_list ap;

	if (p->error != NULL)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (file != NULL && file[0] != '/' && p->cfg != NULL && p->cfg->dir != NULL)
		/* an @include'd file, named as written: show where it is */
		p->error = xasprintf("%s/%s:%u: %s", p->cfg->dir, file,
				     config_setting_source_line(s), msg != NULL ? msg : "error");
	else
		p->error = xasprintf("%s:%u: %s", file != NULL ? file : p->name,
				     config_setting_source_line(s), msg != NULL ? msg : "error");
	free(msg);
	return -1;
}

static const char *type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP: return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: return "an integer";
	case CONFIG_TYPE_FLOAT: return "a number with a fraction";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY: return "an array";
	case CONFIG_TYPE_LIST: return "a list";
	default: return "nothing";
	}
}

/* "limits.timeout" for messages */
static char *full_name(const config_setting_t *s)
{
	const config_setting_t *parent = s->parent;
	const char *name = config_setting_name(s);

	if (name == NULL)
		name = "(element)";
	if (parent != NULL && parent->parent != NULL && config_setting_name(parent) != NULL)
		return xasprintf("%s.%s", config_setting_name(parent), name);
	return xstrdup(name);
}

static int fail_type(struct parse_ctx *p, const config_setting_t *s, const char *expected)
{
	char *name = full_name(s);
	fail(p, s, "%s must be %s, not %s", name, expected, type_name(s));
	free(name);
	return -1;
}

static int fail_range(struct parse_ctx *p, const config_setting_t *s, const struct key *k,
		      long long v)
{
	char *name = full_name(s);
	fail(p, s, "%s = %lld is out of range (expected %lld to %lld)", name, v,
	     (long long)k->min, (long long)k->max);
	free(name);
	return -1;
}

static void *target(struct parse_ctx *p, const struct key *k)
{
	return (char *)p->cfg + k->off;
}

static void set_string(char **dst, const char *value)
{
	free(*dst);
	*dst = xstrdup(value);
}

static int get_string(struct parse_ctx *p, const config_setting_t *s, const struct key *k,
		      const char **value_r)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail_type(p, s, "a string");
	*value_r = config_setting_get_string(s);
	if (**value_r == '\0' && k->min > 0) {
		char *name = full_name(s);
		fail(p, s, "%s must not be empty", name);
		free(name);
		return -1;
	}
	return 0;
}

static int h_path(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	const char *v;
	if (get_string(p, s, k, &v) < 0)
		return -1;
	set_string(target(p, k), v);
	return 0;
}

static int h_hostname(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	const char *v;
	if (get_string(p, s, k, &v) < 0)
		return -1;
	char *h = xstrdup(v);
	size_t len = strlen(h);
	if (len > 1 && h[len - 1] == '.')
		h[len - 1] = '\0';
	if (!hostname_valid(h)) {
		free(h);
		return fail(p, s, "hostname \"%s\" is not a valid host name "
			    "(expected letters, digits, '-' and '.', like \"mail.example.com\")", v);
	}
	for (char *c = h; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	free(p->cfg->hostname);
	p->cfg->hostname = h;
	return 0;
}

static int h_user(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	const char *v;
	if (get_string(p, s, k, &v) < 0)
		return -1;
	if (!user_valid(v))
		return fail(p, s, "user \"%s\" is not a valid user name "
			    "(expected up to %d letters, digits, '_', '-' or '.')", v, CONFIG_MAX_USER);
	set_string(&p->cfg->user, v);
	return 0;
}

static int h_bool(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return fail_type(p, s, "true or false");
	*(bool *)target(p, k) = config_setting_get_bool(s) != 0;
	return 0;
}

static int get_int(struct parse_ctx *p, const config_setting_t *s, const struct key *k,
		   bool size, long long *v_r)
{
	int type = config_setting_type(s);
	long long v;

	if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
		v = config_setting_get_int64(s);
	} else if (size && type == CONFIG_TYPE_STRING) {
		uint64_t bytes;
		if (config_parse_size(config_setting_get_string(s), &bytes) < 0) {
			char *name = full_name(s);
			fail(p, s, "%s = \"%s\" is not a size (expected bytes, or a number "
			     "with K, M or G like \"50M\")", name, config_setting_get_string(s));
			free(name);
			return -1;
		}
		v = (long long)bytes;
	} else {
		return fail_type(p, s, size ? "an integer or a size string like \"50M\""
				 : "an integer");
	}
	if (v < k->min || v > k->max)
		return fail_range(p, s, k, v);
	*v_r = v;
	return 0;
}

static int h_unsigned(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	long long v;
	if (get_int(p, s, k, false, &v) < 0)
		return -1;
	*(unsigned *)target(p, k) = (unsigned)v;
	return 0;
}

static int h_size(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	long long v;
	if (get_int(p, s, k, true, &v) < 0)
		return -1;
	*(size_t *)target(p, k) = (size_t)v;
	return 0;
}

static int h_port(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	long long v;

	if (config_setting_type(s) == CONFIG_TYPE_BOOL) {
		/* false disables; true keeps the standard port */
		v = config_setting_get_bool(s) ? listener_ports[k->index] : 0;
	} else if (config_setting_type(s) == CONFIG_TYPE_INT ||
		   config_setting_type(s) == CONFIG_TYPE_INT64) {
		v = config_setting_get_int64(s);
		if (v < 0 || v > 65535) {
			char *name = full_name(s);
			fail(p, s, "%s = %lld is not a port (expected 1 to 65535, "
			     "or 0 or false to disable)", name, v);
			free(name);
			return -1;
		}
	} else {
		return fail_type(p, s, "a port number or false");
	}
	p->cfg->port[k->index] = (int)v;
	return 0;
}

static int h_choice(struct parse_ctx *p, const config_setting_t *s, const struct key *k,
		    const char *const *choices, char **dst)
{
	const char *v;
	if (get_string(p, s, k, &v) < 0)
		return -1;
	for (size_t i = 0; choices[i] != NULL; i++) {
		if (strcmp(v, choices[i]) == 0) {
			set_string(dst, v);
			return 0;
		}
	}
	struct buf b;
	buf_init(&b, BUF_UNLIMITED);
	for (size_t i = 0; choices[i] != NULL; i++)
		buf_printf(&b, "%s\"%s\"", i == 0 ? "" : choices[i + 1] == NULL ? " or " : ", ",
			   choices[i]);
	char *name = full_name(s);
	fail(p, s, "%s = \"%s\" is not known (expected %s)", name, v, buf_cstr(&b));
	free(name);
	buf_free(&b);
	return -1;
}

static int h_fsync(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	static const char *const choices[] = { "syncfs", "fsync", NULL };
	return h_choice(p, s, k, choices, &p->cfg->store_fsync);
}

static int h_log_level(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	static const char *const choices[] = { "debug", "info", "warn", "error", NULL };
	return h_choice(p, s, k, choices, &p->cfg->log_level);
}

static int h_separator(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	const char *v;
	if (get_string(p, s, k, &v) < 0)
		return -1;
	size_t len = strlen(v);
	bool ok = len <= CONFIG_MAX_SEPARATORS;
	for (size_t i = 0; ok && i < len; i++) {
		unsigned char c = (unsigned char)v[i];
		/* must be a character that can appear in a local part but is
		 * not a letter or digit, and is not the '@' itself */
		ok = c > 0x20 && c < 0x7f && !isalnum(c) && strchr("@\"\\()<>[],;: ", c) == NULL;
	}
	if (!ok)
		return fail(p, s, "smtp.subaddress_separator = \"%s\" is not allowed (expected up to "
			    "%d punctuation characters such as \"+\" or \"+-\", or \"\" to disable)",
			    v, CONFIG_MAX_SEPARATORS);
	set_string(&p->cfg->subaddress_separator, v);
	return 0;
}

/* A list or array of strings, each checked by valid() */
static int h_addresses(struct parse_ctx *p, const config_setting_t *s, char **dst,
		       unsigned *count, unsigned max, bool (*valid)(const char *),
		       const char *what, bool allow_empty)
{
	int type = config_setting_type(s);
	char *name = full_name(s);
	int ret = -1;
	unsigned n;

	if (type == CONFIG_TYPE_STRING) {
		n = 1;
	} else if (type == CONFIG_TYPE_ARRAY || type == CONFIG_TYPE_LIST) {
		n = (unsigned)config_setting_length(s);
	} else {
		fail(p, s, "%s must be a list of strings like [ \"%s\" ], not %s", name,
		     what[0] == 'I' ? "0.0.0.0" : strstr(what, "MX") != NULL ? "mail.example.com"
		     : strchr(what, '@') != NULL ? "dmarc@example.com" : "10.0.0.0/8",
		     type_name(s));
		goto out;
	}
	if (n == 0 && !allow_empty) {
		fail(p, s, "%s is empty (expected at least one address; "
		     "a port of 0 disables a listener)", name);
		goto out;
	}
	if (n > max) {
		fail(p, s, "%s has %u entries (at most %u allowed)", name, n, max);
		goto out;
	}
	for (unsigned i = 0; i < *count; i++) {
		free(dst[i]);
		dst[i] = NULL;
	}
	*count = 0;
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *e = type == CONFIG_TYPE_STRING ? s : config_setting_get_elem(s, i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			fail(p, e, "%s entries must be strings, not %s", name, type_name(e));
			goto out;
		}
		const char *v = config_setting_get_string(e);
		if (!valid(v)) {
			fail(p, e, "%s: \"%s\" is not %s", name, v, what);
			goto out;
		}
		dst[(*count)++] = xstrdup(v);
	}
	ret = 0;
out:
	free(name);
	return ret;
}

static int h_bind(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	(void)k;
	return h_addresses(p, s, p->cfg->bind, &p->cfg->bind_count, CONFIG_MAX_BIND, ip_valid,
			   "an IPv4 or IPv6 address", false);
}

static int h_trusted(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	(void)k;
	return h_addresses(p, s, p->cfg->proxy_trusted, &p->cfg->proxy_trusted_count,
			   CONFIG_MAX_TRUSTED, cidr_valid,
			   "an IP address or a network like \"10.0.0.0/8\"", true);
}

static int parse_group(struct parse_ctx *p, const config_setting_t *g, const struct key *keys);

static int h_group(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return fail_type(p, s, "a group { ... }");
	return parse_group(p, s, k->group);
}

/* A DNS server as libunbound takes it: "ADDR" or "ADDR@PORT" */
static bool dns_server_valid(const char *s)
{
	const char *at = strchr(s, '@');
	char *addr;
	bool ok;

	if (at == NULL)
		return ip_valid(s);
	if (at[1] == '\0' || strlen(at + 1) > 5)
		return false;
	unsigned port = 0;
	for (const char *c = at + 1; *c != '\0'; c++) {
		if (!isdigit((unsigned char)*c))
			return false;
		port = port * 10 + (unsigned)(*c - '0');
	}
	if (port == 0 || port > 65535)
		return false;
	addr = xstrndup(s, (size_t)(at - s));
	ok = ip_valid(addr);
	free(addr);
	return ok;
}

/* A zone name for a stub: "." or LDH labels (a trailing dot allowed);
 * '_' is allowed too since service names (_25._tcp) are zones as well. */
static bool dns_zone_valid(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (strcmp(s, ".") == 0)
		return true;
	if (len == 0 || len > 254)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

static int h_dns_mode(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	static const char *const choices[] = { "system", "upstream", "stub", NULL };
	return h_choice(p, s, k, choices, &p->cfg->dns.mode);
}

static int h_dns_upstream(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	(void)k;
	return h_addresses(p, s, p->cfg->dns.upstream, &p->cfg->dns.upstream_count,
			   CONFIG_MAX_DNS_SERVERS, dns_server_valid,
			   "an IP address with an optional @port, like \"127.0.0.1@5353\"", true);
}

static void dns_stubs_clear(struct config *cfg)
{
	for (unsigned i = 0; i < cfg->dns.stub_count; i++) {
		struct config_dns_stub *st = &cfg->dns.stub[i];
		free(st->zone);
		for (unsigned j = 0; j < st->server_count; j++)
			free(st->servers[j]);
		memset(st, 0, sizeof(*st));
	}
	cfg->dns.stub_count = 0;
}

/* stub = ( { zone = "example.test"; servers = [ "127.0.0.1@5353" ]; }, ... ); */
static int h_dns_stub(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	int type = config_setting_type(s);
	unsigned n;

	(void)k;
	if (type != CONFIG_TYPE_LIST && !(type == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0))
		return fail(p, s, "dns.stub must be a list of groups like ( { zone = \"example.test\"; "
			    "servers = [ \"127.0.0.1@5353\" ]; } ), not %s", type_name(s));
	n = (unsigned)config_setting_length(s);
	if (n > CONFIG_MAX_DNS_STUBS)
		return fail(p, s, "dns.stub has %u entries (at most %u allowed)", n,
			    CONFIG_MAX_DNS_STUBS);
	dns_stubs_clear(p->cfg);
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		struct config_dns_stub *st = &p->cfg->dns.stub[i];
		const config_setting_t *zone, *servers;

		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			return fail(p, e, "dns.stub entries must be groups { zone = ...; servers = "
				    "[ ... ]; }, not %s", type_name(e));
		for (int j = 0; j < config_setting_length(e); j++) {
			const char *name = config_setting_name(config_setting_get_elem(e, (unsigned)j));
			if (name == NULL || (strcmp(name, "zone") != 0 && strcmp(name, "servers") != 0))
				return fail(p, config_setting_get_elem(e, (unsigned)j),
					    "unknown setting '%s' in a dns.stub entry (expected zone "
					    "and servers)", name != NULL ? name : "");
		}
		zone = config_setting_get_member(e, "zone");
		servers = config_setting_get_member(e, "servers");
		if (zone == NULL || servers == NULL)
			return fail(p, e, "a dns.stub entry needs zone = \"...\"; and servers = [ ... ];");
		if (config_setting_type(zone) != CONFIG_TYPE_STRING)
			return fail_type(p, zone, "a string");
		if (!dns_zone_valid(config_setting_get_string(zone)))
			return fail(p, zone, "dns.stub zone \"%s\" is not a domain name",
				    config_setting_get_string(zone));
		p->cfg->dns.stub_count = i + 1;
		st->zone = xstrdup(config_setting_get_string(zone));
		if (h_addresses(p, servers, st->servers, &st->server_count, CONFIG_MAX_DNS_SERVERS,
				dns_server_valid, "an IP address with an optional @port, "
				"like \"127.0.0.1@5353\"", false) < 0)
			return -1;
	}
	return 0;
}

static int h_dns_anchor(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	const char *v;
	if (get_string(p, s, k, &v) < 0)
		return -1;
	free(p->cfg->dns.trust_anchor_file);
	/* "" keeps the default */
	p->cfg->dns.trust_anchor_file = *v == '\0' ? NULL : xstrdup(v);
	return 0;
}

/* The dns group, then the checks that need the whole group */
static int h_dns(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return fail_type(p, s, "a group { ... }");
	if (parse_group(p, s, k->group) < 0)
		return -1;
	if (strcmp(p->cfg->dns.mode, "upstream") == 0 && p->cfg->dns.upstream_count == 0)
		return fail(p, s, "dns.mode = \"upstream\" needs dns.upstream = [ \"ADDR\", ... ]");
	if (strcmp(p->cfg->dns.mode, "stub") == 0 && p->cfg->dns.stub_count == 0)
		return fail(p, s, "dns.mode = \"stub\" needs dns.stub = ( { zone = \"...\"; "
			    "servers = [ \"ADDR@PORT\" ]; } )");
	return 0;
}

static void routes_clear(struct config *cfg)
{
	for (unsigned i = 0; i < cfg->queue.route_count; i++) {
		free(cfg->queue.route[i].domain);
		free(cfg->queue.route[i].host);
	}
	memset(cfg->queue.route, 0, sizeof(cfg->queue.route));
	cfg->queue.route_count = 0;
}

/* routes = ( { domain = "example.org"; host = "mx.example.net"; port = 25; }, ... ); */
static int h_routes(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	int type = config_setting_type(s);
	unsigned n;

	(void)k;
	if (type != CONFIG_TYPE_LIST && !(type == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0))
		return fail(p, s, "queue.routes must be a list of groups like ( { domain = "
			    "\"example.org\"; host = \"mx.example.net\"; } ), not %s", type_name(s));
	n = (unsigned)config_setting_length(s);
	if (n > CONFIG_MAX_ROUTES)
		return fail(p, s, "queue.routes has %u entries (at most %u allowed)", n,
			    CONFIG_MAX_ROUTES);
	routes_clear(p->cfg);
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		struct config_route *r = &p->cfg->queue.route[i];
		const config_setting_t *domain, *host, *port;

		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			return fail(p, e, "queue.routes entries must be groups { domain = ...; "
				    "host = ...; }, not %s", type_name(e));
		for (int j = 0; j < config_setting_length(e); j++) {
			const char *name = config_setting_name(config_setting_get_elem(e, (unsigned)j));
			if (name == NULL || (strcmp(name, "domain") != 0 && strcmp(name, "host") != 0 &&
					     strcmp(name, "port") != 0))
				return fail(p, config_setting_get_elem(e, (unsigned)j),
					    "unknown setting '%s' in a queue.routes entry (expected "
					    "domain, host and port)", name != NULL ? name : "");
		}
		domain = config_setting_get_member(e, "domain");
		host = config_setting_get_member(e, "host");
		port = config_setting_get_member(e, "port");
		if (domain == NULL || host == NULL)
			return fail(p, e, "a queue.routes entry needs domain = \"...\"; and "
				    "host = \"...\";");
		if (config_setting_type(domain) != CONFIG_TYPE_STRING)
			return fail_type(p, domain, "a string");
		if (config_setting_type(host) != CONFIG_TYPE_STRING)
			return fail_type(p, host, "a string");
		if (!dns_zone_valid(config_setting_get_string(domain)))
			return fail(p, domain, "queue.routes domain \"%s\" is not a domain name",
				    config_setting_get_string(domain));
		if (!dns_zone_valid(config_setting_get_string(host)))
			return fail(p, host, "queue.routes host \"%s\" is not a host name or "
				    "IPv4 address", config_setting_get_string(host));
		p->cfg->queue.route_count = i + 1;
		r->domain = xstrdup(config_setting_get_string(domain));
		r->host = xstrdup(config_setting_get_string(host));
		r->port = 25;
		if (port != NULL) {
			if (config_setting_type(port) != CONFIG_TYPE_INT ||
			    config_setting_get_int(port) < 1 || config_setting_get_int(port) > 65535)
				return fail_type(p, port, "a port number 1-65535");
			r->port = (unsigned)config_setting_get_int(port);
		}
	}
	return 0;
}

static void dmarc_overrides_clear(struct config *cfg)
{
	for (unsigned i = 0; i < cfg->mailauth.dmarc_override_count; i++)
		free(cfg->mailauth.dmarc_override[i].domain);
	free(cfg->mailauth.dmarc_override);
	cfg->mailauth.dmarc_override = NULL;
	cfg->mailauth.dmarc_override_count = 0;
}

/* dmarc_overrides = ( { domain = "example.org"; action = "none"; }, ... );
 * (docs/dmarc.md): domains stored lower case without a trailing dot, each
 * at most once. */
static int h_dmarc_overrides(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	static const char *const actions[] = { "none", "quarantine", "reject", NULL };
	struct config *cfg = p->cfg;
	int type = config_setting_type(s);
	unsigned n;

	(void)k;
	if (type != CONFIG_TYPE_LIST && !(type == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0))
		return fail(p, s, "mailauth.dmarc_overrides must be a list of groups like ( { "
			    "domain = \"example.org\"; action = \"none\"; } ), not %s",
			    type_name(s));
	n = (unsigned)config_setting_length(s);
	if (n > CONFIG_MAX_DMARC_OVERRIDES)
		return fail(p, s, "mailauth.dmarc_overrides has %u entries (at most %u allowed)", n,
			    CONFIG_MAX_DMARC_OVERRIDES);
	dmarc_overrides_clear(cfg);
	cfg->mailauth.dmarc_override = xcalloc(n > 0 ? n : 1, sizeof(*cfg->mailauth.dmarc_override));
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		const config_setting_t *domain, *action;
		struct config_dmarc_override *o = &cfg->mailauth.dmarc_override[i];
		const char *d, *a;
		size_t len;
		int which = -1;

		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			return fail(p, e, "mailauth.dmarc_overrides entries must be groups { domain = "
				    "...; action = ...; }, not %s", type_name(e));
		for (int j = 0; j < config_setting_length(e); j++) {
			const char *name = config_setting_name(config_setting_get_elem(e, (unsigned)j));
			if (name == NULL || (strcmp(name, "domain") != 0 && strcmp(name, "action") != 0))
				return fail(p, config_setting_get_elem(e, (unsigned)j),
					    "unknown setting '%s' in a mailauth.dmarc_overrides entry "
					    "(expected domain and action)", name != NULL ? name : "");
		}
		domain = config_setting_get_member(e, "domain");
		action = config_setting_get_member(e, "action");
		if (domain == NULL || action == NULL)
			return fail(p, e, "a mailauth.dmarc_overrides entry needs domain = \"...\"; and "
				    "action = \"none\" | \"quarantine\" | \"reject\";");
		if (config_setting_type(domain) != CONFIG_TYPE_STRING)
			return fail_type(p, domain, "a string");
		if (config_setting_type(action) != CONFIG_TYPE_STRING)
			return fail_type(p, action, "a string");
		d = config_setting_get_string(domain);
		a = config_setting_get_string(action);
		if (strcmp(d, ".") == 0 || !dns_zone_valid(d) || strchr(d, '.') == NULL)
			return fail(p, domain, "mailauth.dmarc_overrides domain \"%s\" is not a domain "
				    "name with at least two labels (IDNs in their xn-- form)", d);
		for (int j = 0; actions[j] != NULL; j++)
			if (strcmp(a, actions[j]) == 0)
				which = j;
		if (which < 0)
			return fail(p, action, "mailauth.dmarc_overrides action \"%s\" is not one of "
				    "\"none\", \"quarantine\", \"reject\"", a);
		len = strlen(d);
		if (d[len - 1] == '.')
			len--;
		o->domain = xstrndup(d, len);
		for (char *c = o->domain; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
		o->action = (enum config_dmarc_action)which;
		cfg->mailauth.dmarc_override_count = i + 1;
		for (unsigned j = 0; j < i; j++)
			if (strcmp(cfg->mailauth.dmarc_override[j].domain, o->domain) == 0)
				return fail(p, domain, "mailauth.dmarc_overrides lists \"%s\" twice",
					    o->domain);
	}
	return 0;
}

static bool arc_sealer_valid(const char *v)
{
	return strcmp(v, ".") != 0 && dns_zone_valid(v) && strchr(v, '.') != NULL;
}

/* arc_trusted_sealers = [ "lists.example.org", ... ] (docs/arc.md): stored
 * lower case without a trailing dot. */
static int h_arc_sealers(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	struct config *cfg = p->cfg;
	(void)k;
	if (h_addresses(p, s, cfg->mailauth.arc_trusted_sealer,
			&cfg->mailauth.arc_trusted_sealer_count, CONFIG_MAX_ARC_SEALERS,
			arc_sealer_valid, "a domain name like \"lists.example.org\" (IDNs in "
			"their xn-- form)", true) < 0)
		return -1;
	for (unsigned i = 0; i < cfg->mailauth.arc_trusted_sealer_count; i++) {
		char *d = cfg->mailauth.arc_trusted_sealer[i];
		size_t len = strlen(d);
		if (len > 1 && d[len - 1] == '.')
			d[len - 1] = '\0';
		for (char *c = d; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	return 0;
}

static void rate_limits_clear(struct config *cfg)
{
	for (unsigned i = 0; i < cfg->queue.rate_limit_count; i++) {
		free(cfg->queue.rate_limit[i].domain);
		free(cfg->queue.rate_limit[i].mx);
	}
	memset(cfg->queue.rate_limit, 0, sizeof(cfg->queue.rate_limit));
	cfg->queue.rate_limit_count = 0;
}

/* A whole number member of a queue.rate_limits entry within [min, max]. */
static int rate_limit_number(struct parse_ctx *p, const config_setting_t *v, long long min,
			     long long max, unsigned *dst)
{
	long long n;

	if (config_setting_type(v) != CONFIG_TYPE_INT && config_setting_type(v) != CONFIG_TYPE_INT64)
		return fail_type(p, v, "a whole number");
	n = config_setting_get_int64(v);
	if (n < min || n > max)
		return fail(p, v, "queue.rate_limits %s = %lld is out of range (expected %lld to "
			    "%lld)", config_setting_name(v), n, min, max);
	*dst = (unsigned)n;
	return 0;
}

/* rate_limits = ( { domain = "gmail.com"; messages = 100; seconds = 60; },
 *                 { mx = "*.outlook.com"; messages = 50; seconds = 60; } ); */
static int h_rate_limits(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	int type = config_setting_type(s);
	unsigned n;

	(void)k;
	if (type != CONFIG_TYPE_LIST && !(type == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0))
		return fail(p, s, "queue.rate_limits must be a list of groups like ( { domain = "
			    "\"gmail.com\"; messages = 100; seconds = 60; } ), not %s", type_name(s));
	n = (unsigned)config_setting_length(s);
	if (n > CONFIG_MAX_RATE_LIMITS)
		return fail(p, s, "queue.rate_limits has %u entries (at most %u allowed)", n,
			    CONFIG_MAX_RATE_LIMITS);
	rate_limits_clear(p->cfg);
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		struct config_rate_limit *r = &p->cfg->queue.rate_limit[i];
		const config_setting_t *domain, *mx, *messages, *seconds;
		const char *name;

		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			return fail(p, e, "queue.rate_limits entries must be groups { domain = ...; "
				    "messages = ...; seconds = ...; }, not %s", type_name(e));
		for (int j = 0; j < config_setting_length(e); j++) {
			name = config_setting_name(config_setting_get_elem(e, (unsigned)j));
			if (name == NULL || (strcmp(name, "domain") != 0 && strcmp(name, "mx") != 0 &&
					     strcmp(name, "messages") != 0 &&
					     strcmp(name, "seconds") != 0))
				return fail(p, config_setting_get_elem(e, (unsigned)j),
					    "unknown setting '%s' in a queue.rate_limits entry "
					    "(expected domain or mx, messages and seconds)",
					    name != NULL ? name : "");
		}
		domain = config_setting_get_member(e, "domain");
		mx = config_setting_get_member(e, "mx");
		messages = config_setting_get_member(e, "messages");
		seconds = config_setting_get_member(e, "seconds");
		if ((domain == NULL) == (mx == NULL))
			return fail(p, e, "a queue.rate_limits entry needs either domain = \"...\"; "
				    "or mx = \"...\"; (one of them)");
		if (messages == NULL || seconds == NULL)
			return fail(p, e, "a queue.rate_limits entry needs messages = N; and "
				    "seconds = N;");
		p->cfg->queue.rate_limit_count = i + 1;
		if (domain != NULL) {
			if (config_setting_type(domain) != CONFIG_TYPE_STRING)
				return fail_type(p, domain, "a string");
			name = config_setting_get_string(domain);
			if (!dns_zone_valid(name) || strcmp(name, ".") == 0)
				return fail(p, domain, "queue.rate_limits domain \"%s\" is not a "
					    "domain name", name);
			r->domain = xstrdup(name);
		} else {
			if (config_setting_type(mx) != CONFIG_TYPE_STRING)
				return fail_type(p, mx, "a string");
			name = config_setting_get_string(mx);
			/* "*.suffix" or a host name */
			if (!dns_zone_valid(strncmp(name, "*.", 2) == 0 ? name + 2 : name) ||
			    strcmp(name, ".") == 0 || strcmp(name, "*..") == 0)
				return fail(p, mx, "queue.rate_limits mx \"%s\" is not a host name "
					    "or a pattern like \"*.outlook.com\"", name);
			r->mx = xstrdup(name);
		}
		for (char *c = r->domain != NULL ? r->domain : r->mx; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
		if (rate_limit_number(p, messages, 1, 1000000, &r->messages) < 0 ||
		    rate_limit_number(p, seconds, 1, 86400, &r->seconds) < 0)
			return -1;
	}
	return 0;
}

/* The smarthost group; then tls not set means implicit TLS on port 465
 * (RFC 8314 3.3: the submissions port), STARTTLS otherwise. */
static int h_smarthost(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	const char *tls;

	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return fail_type(p, s, "a group { ... }");
	if (parse_group(p, s, k->group) < 0)
		return -1;
	tls = p->cfg->queue.smarthost.tls;
	p->cfg->queue.smarthost.implicit_tls = tls != NULL ? strcmp(tls, "implicit") == 0
							   : p->cfg->queue.smarthost.port == 465;
	return 0;
}

static int h_smarthost_tls(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	static const char *const choices[] = { "starttls", "implicit", NULL };
	return h_choice(p, s, k, choices, &p->cfg->queue.smarthost.tls);
}

/* queue.smarthost.host: a host name (what its certificate names) or an address */
static int h_smarthost_host(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	const char *v;

	if (get_string(p, s, k, &v) < 0)
		return -1;
	if (*v != '\0' && !dns_zone_valid(v))
		return fail(p, s, "queue.smarthost.host \"%s\" is not a host name or IPv4 address", v);
	free(p->cfg->queue.smarthost.host);
	/* "" means no smarthost */
	p->cfg->queue.smarthost.host = *v == '\0' ? NULL : xstrdup(v);
	return 0;
}

/* An optional string: "" leaves it NULL (the default) */
static int h_opt_string(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	const char *v;
	char **dst;

	if (get_string(p, s, k, &v) < 0)
		return -1;
	dst = target(p, k);
	free(*dst);
	*dst = *v == '\0' ? NULL : xstrdup(v);
	return 0;
}

#define OFF(field) offsetof(struct config, field)
#define SIZE_MAX_CFG ((int64_t)1 << 40)

static const struct key tls_keys[] = {
	{ "cert", h_path, OFF(tls_cert), 1, 0, NULL, 0 },
	{ "key", h_path, OFF(tls_key), 1, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

#define PORT_KEY(kind, name) { name, h_port, 0, 0, 65535, NULL, kind }
static const struct key listen_keys[] = {
	{ "bind", h_bind, 0, 0, 0, NULL, 0 },
	PORT_KEY(LISTENER_SMTP, "smtp"),
	PORT_KEY(LISTENER_SUBMISSION, "submission"),
	PORT_KEY(LISTENER_SUBMISSIONS, "submissions"),
	PORT_KEY(LISTENER_IMAP, "imap"),
	PORT_KEY(LISTENER_IMAPS, "imaps"),
	PORT_KEY(LISTENER_POP3, "pop3"),
	PORT_KEY(LISTENER_POP3S, "pop3s"),
	PORT_KEY(LISTENER_HTTP, "http"),
	PORT_KEY(LISTENER_HTTPS, "https"),
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct key limits_keys[] = {
	/* RFC 5321 4.5.3.1.4: a command line is at least 512 octets */
	{ "smtp_line", h_size, OFF(limits.smtp_line), 512, 1 << 20, NULL, 0 },
	{ "header_size", h_size, OFF(limits.header_size), 1024, 1 << 30, NULL, 0 },
	{ "message_size", h_size, OFF(limits.message_size), 1024, SIZE_MAX_CFG, NULL, 0 },
	{ "recipients", h_unsigned, OFF(limits.recipients), 1, 1000000, NULL, 0 },
	{ "timeout", h_unsigned, OFF(limits.timeout), 1, 86400, NULL, 0 },
	{ "errors", h_unsigned, OFF(limits.errors), 1, 1000000, NULL, 0 },
	{ "connections_per_ip", h_unsigned, OFF(limits.connections_per_ip), 1, 1000000, NULL, 0 },
	{ "connections", h_unsigned, OFF(limits.connections), 1, 10000000, NULL, 0 },
	{ "auth_failures", h_unsigned, OFF(limits.auth_failures), 1, 1000000, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct key smtp_keys[] = {
	{ "plaintext_auth_loopback", h_bool, OFF(plaintext_auth_loopback), 0, 0, NULL, 0 },
	{ "subaddress_separator", h_separator, 0, 0, 0, NULL, 0 },
	{ "proxy_trusted", h_trusted, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct key store_keys[] = {
	{ "fsync", h_fsync, 0, 1, 0, NULL, 0 },
	{ "commit_batch", h_unsigned, OFF(commit_batch), 1, 65536, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct key pop3_keys[] = {
	/* RFC 2449 6.7: EXPIRE is a number of days, at most a few years here */
	{ "expire_days", h_unsigned, OFF(pop3.expire_days), 0, 36500, NULL, 0 },
	{ "delete_to_trash", h_bool, OFF(pop3.delete_to_trash), 0, 0, NULL, 0 },
	{ "plaintext_auth_loopback", h_bool, OFF(pop3.plaintext_auth_loopback), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct key mailauth_keys[] = {
	{ "spf", h_bool, OFF(mailauth.spf), 0, 0, NULL, 0 },
	{ "dkim", h_bool, OFF(mailauth.dkim), 0, 0, NULL, 0 },
	{ "dmarc", h_bool, OFF(mailauth.dmarc), 0, 0, NULL, 0 },
	{ "dmarc_enforce", h_bool, OFF(mailauth.dmarc_enforce), 0, 0, NULL, 0 },
	{ "dmarc_overrides", h_dmarc_overrides, 0, 0, 0, NULL, 0 },
	{ "arc", h_bool, OFF(mailauth.arc), 0, 0, NULL, 0 },
	{ "arc_trusted_sealers", h_arc_sealers, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct key dkim_keys[] = {
	{ "sign", h_bool, OFF(dkim.sign), 0, 0, NULL, 0 },
	{ "rotation_grace", h_unsigned, OFF(dkim.rotation_grace), 0, 31536000, NULL, 0 },
	{ "check_interval", h_unsigned, OFF(dkim.check_interval), 1, 604800, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct key imap_keys[] = {
	{ "plaintext_auth_loopback", h_bool, OFF(imap.plaintext_auth_loopback), 0, 0, NULL, 0 },
	/* per user and client address, as Dovecot counts them */
	{ "connections_per_user", h_unsigned, OFF(imap.connections_per_user), 0, 100000, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct key log_keys[] = {
	{ "level", h_log_level, 0, 1, 0, NULL, 0 },
	{ "syslog", h_bool, OFF(log_syslog), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct key dns_keys[] = {
	{ "mode", h_dns_mode, 0, 1, 0, NULL, 0 },
	{ "upstream", h_dns_upstream, 0, 0, 0, NULL, 0 },
	{ "stub", h_dns_stub, 0, 0, 0, NULL, 0 },
	{ "dnssec", h_bool, OFF(dns.dnssec), 0, 0, NULL, 0 },
	{ "trust_anchor_file", h_dns_anchor, 0, 0, 0, NULL, 0 },
	{ "timeout", h_unsigned, OFF(dns.timeout), 1, 300, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct key smarthost_keys[] = {
	{ "host", h_smarthost_host, 0, 0, 0, NULL, 0 },
	{ "port", h_unsigned, OFF(queue.smarthost.port), 1, 65535, NULL, 0 },
	{ "user", h_opt_string, OFF(queue.smarthost.user), 0, 0, NULL, 0 },
	{ "password_file", h_opt_string, OFF(queue.smarthost.password_file), 0, 0, NULL, 0 },
	{ "tls", h_smarthost_tls, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct key mta_sts_keys[] = {
	{ "enabled", h_bool, OFF(queue.mta_sts.enabled), 0, 0, NULL, 0 },
	{ "ca_file", h_opt_string, OFF(queue.mta_sts.ca_file), 0, 0, NULL, 0 },
	{ "port", h_unsigned, OFF(queue.mta_sts.port), 1, 65535, NULL, 0 },
	{ "timeout", h_unsigned, OFF(queue.mta_sts.timeout), 1, 300, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct key queue_keys[] = {
	{ "retry_min", h_unsigned, OFF(queue.retry_min), 1, 86400, NULL, 0 },
	{ "retry_max", h_unsigned, OFF(queue.retry_max), 1, 7 * 86400, NULL, 0 },
	{ "max_age", h_unsigned, OFF(queue.max_age), 60, 60 * 86400, NULL, 0 },
	{ "warn_after", h_unsigned, OFF(queue.warn_after), 0, 60 * 86400, NULL, 0 },
	{ "scan_interval", h_unsigned, OFF(queue.scan_interval), 1, 3600, NULL, 0 },
	{ "connections", h_unsigned, OFF(queue.connections), 1, 10000, NULL, 0 },
	{ "connections_per_domain", h_unsigned, OFF(queue.connections_per_domain), 1, 10000,
	  NULL, 0 },
	{ "remote_port", h_unsigned, OFF(queue.remote_port), 1, 65535, NULL, 0 },
	{ "routes", h_routes, 0, 0, 0, NULL, 0 },
	{ "ca_file", h_opt_string, OFF(queue.ca_file), 0, 0, NULL, 0 },
	{ "smarthost", h_smarthost, 0, 0, 0, smarthost_keys, 0 },
	{ "rate_limits", h_rate_limits, 0, 0, 0, NULL, 0 },
	{ "mta_sts", h_group, 0, 0, 0, mta_sts_keys, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static int h_srs_domain(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	const char *v;
	if (get_string(p, s, k, &v) < 0)
		return -1;
	free(p->cfg->srs.domain);
	p->cfg->srs.domain = NULL;
	if (*v == '\0')
		return 0;   /* "" = the hostname */
	if (!hostname_valid(v))
		return fail(p, s, "srs.domain \"%s\" is not a domain name", v);
	char *d = xstrdup(v);
	for (char *c = d; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	p->cfg->srs.domain = d;
	return 0;
}

static int h_srs_secrets(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	const char *v;
	if (get_string(p, s, k, &v) < 0)
		return -1;
	free(p->cfg->srs.secrets_file);
	p->cfg->srs.secrets_file = *v == '\0' ? NULL : xstrdup(v);   /* "" = no SRS */
	return 0;
}

static const struct key srs_keys[] = {
	{ "secrets_file", h_srs_secrets, 0, 0, 0, NULL, 0 },
	{ "domain", h_srs_domain, 0, 0, 0, NULL, 0 },
	{ "max_age", h_unsigned, OFF(srs.max_age), 1, 3650, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* sendmail.users: ( { uid = "www-data"; address = "web@example.com"; }, ... ) */
static void sendmail_users_clear(struct config *cfg)
{
	for (unsigned i = 0; i < cfg->sendmail.user_count; i++) {
		free(cfg->sendmail.users[i].uid);
		free(cfg->sendmail.users[i].address);
	}
	memset(cfg->sendmail.users, 0, sizeof(cfg->sendmail.users));
	cfg->sendmail.user_count = 0;
}

/* local@domain without spaces or controls: the store checks the rest */
static bool sendmail_address_valid(const char *a)
{
	const char *at = strrchr(a, '@');

	if (at == NULL || at == a || !dns_zone_valid(at + 1))
		return false;
	for (const char *c = a; *c != '\0'; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return false;
	return true;
}

static int h_sendmail_users(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	int type = config_setting_type(s);
	unsigned n;

	(void)k;
	if (type != CONFIG_TYPE_LIST && !(type == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0))
		return fail(p, s, "sendmail.users must be a list of groups like ( { uid = "
			    "\"www-data\"; address = \"web@example.com\"; } ), not %s", type_name(s));
	n = (unsigned)config_setting_length(s);
	if (n > CONFIG_MAX_SENDMAIL_USERS)
		return fail(p, s, "sendmail.users has %u entries (at most %u allowed)", n,
			    CONFIG_MAX_SENDMAIL_USERS);
	sendmail_users_clear(p->cfg);
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		struct config_sendmail_user *u = &p->cfg->sendmail.users[i];
		const config_setting_t *uid, *address;
		char num[32];
		const char *uid_text;

		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			return fail(p, e, "sendmail.users entries must be groups { uid = ...; "
				    "address = ...; }, not %s", type_name(e));
		for (int j = 0; j < config_setting_length(e); j++) {
			const char *name = config_setting_name(config_setting_get_elem(e, (unsigned)j));
			if (name == NULL || (strcmp(name, "uid") != 0 && strcmp(name, "address") != 0))
				return fail(p, config_setting_get_elem(e, (unsigned)j),
					    "unknown setting '%s' in a sendmail.users entry (expected "
					    "uid and address)", name != NULL ? name : "");
		}
		uid = config_setting_get_member(e, "uid");
		address = config_setting_get_member(e, "address");
		if (uid == NULL || address == NULL)
			return fail(p, e, "a sendmail.users entry needs uid = \"LOGIN\"; (or a number) "
				    "and address = \"USER@DOMAIN\";");
		if (config_setting_type(uid) == CONFIG_TYPE_INT && config_setting_get_int(uid) >= 0) {
			snprintf(num, sizeof(num), "%d", config_setting_get_int(uid));
			uid_text = num;
		} else if (config_setting_type(uid) == CONFIG_TYPE_STRING) {
			uid_text = config_setting_get_string(uid);
			if (!user_valid(uid_text))
				return fail(p, uid, "sendmail.users uid \"%s\" is not a login name "
					    "or a number", uid_text);
		} else {
			return fail_type(p, uid, "a login name or a number");
		}
		if (config_setting_type(address) != CONFIG_TYPE_STRING)
			return fail_type(p, address, "a string");
		if (!sendmail_address_valid(config_setting_get_string(address)))
			return fail(p, address, "sendmail.users address \"%s\" is not an address "
				    "like user@example.com", config_setting_get_string(address));
		p->cfg->sendmail.user_count = i + 1;
		u->uid = xstrdup(uid_text);
		u->address = xstrdup(config_setting_get_string(address));
	}
	return 0;
}

static int h_sendmail_domain(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	const char *v;
	if (get_string(p, s, k, &v) < 0)
		return -1;
	if (!dns_zone_valid(v))
		return fail(p, s, "sendmail.default_domain \"%s\" is not a domain name", v);
	set_string(&p->cfg->sendmail.default_domain, v);
	return 0;
}

static const struct key sendmail_keys[] = {
	{ "socket", h_path, OFF(sendmail.socket), 0, 0, NULL, 0 },
	{ "default_domain", h_sendmail_domain, 0, 1, 0, NULL, 0 },
	{ "users", h_sendmail_users, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* tlsrpt.organization / contact: one line of printable text */
static int h_tlsrpt_text(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	const char *v;
	char **dst;

	if (get_string(p, s, k, &v) < 0)
		return -1;
	for (const char *c = v; *c != '\0'; c++)
		if ((unsigned char)*c < ' ' || *c == 0x7f)
			return fail(p, s, "tlsrpt.%s must be one line of text", k->name);
	if (strlen(v) > 256)
		return fail(p, s, "tlsrpt.%s is longer than 256 bytes", k->name);
	dst = target(p, k);
	free(*dst);
	*dst = *v == '\0' ? NULL : xstrdup(v);
	return 0;
}

static int h_tlsrpt_sender(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	const char *v;

	if (get_string(p, s, k, &v) < 0)
		return -1;
	free(p->cfg->tlsrpt.sender);
	p->cfg->tlsrpt.sender = NULL;
	if (*v == '\0')
		return 0;   /* "" = noreply-tlsrpt@hostname */
	if (!sendmail_address_valid(v) || strlen(v) > 254)
		return fail(p, s, "tlsrpt.sender \"%s\" is not an address like user@example.com", v);
	p->cfg->tlsrpt.sender = xstrdup(v);
	return 0;
}

static const struct key tlsrpt_keys[] = {
	{ "enabled", h_bool, OFF(tlsrpt.enabled), 0, 0, NULL, 0 },
	{ "organization", h_tlsrpt_text, OFF(tlsrpt.organization), 0, 0, NULL, 0 },
	{ "contact", h_tlsrpt_text, OFF(tlsrpt.contact), 0, 0, NULL, 0 },
	{ "sender", h_tlsrpt_sender, 0, 0, 0, NULL, 0 },
	{ "send_hour", h_unsigned, OFF(tlsrpt.send_hour), 0, 23, NULL, 0 },
	{ "keep_days", h_unsigned, OFF(tlsrpt.keep_days), 1, 3650, NULL, 0 },
	{ "ca_file", h_opt_string, OFF(tlsrpt.ca_file), 0, 0, NULL, 0 },
	{ "timeout", h_unsigned, OFF(tlsrpt.timeout), 1, 600, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* dmarc_reports.organization / contact / sender: one line of printable
 * text; the sender and contact also an address */
static int h_dmarcrep_text(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	const char *v;
	char **dst;

	if (get_string(p, s, k, &v) < 0)
		return -1;
	for (const char *c = v; *c != '\0'; c++)
		if ((unsigned char)*c < ' ' || *c == 0x7f)
			return fail(p, s, "dmarc_reports.%s must be one line of text", k->name);
	if (strlen(v) > 254)
		return fail(p, s, "dmarc_reports.%s is longer than 254 bytes", k->name);
	if (k->index == 1 && *v != '\0' && !sendmail_address_valid(v))
		return fail(p, s, "dmarc_reports.%s \"%s\" is not an address like "
			    "user@example.com", k->name, v);
	dst = target(p, k);
	free(*dst);
	*dst = *v == '\0' ? NULL : xstrdup(v);
	return 0;
}

static int h_dmarcrep_import(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	(void)k;
	return h_addresses(p, s, p->cfg->dmarc_reports.import_addresses,
			   &p->cfg->dmarc_reports.import_address_count, CONFIG_MAX_DMARC_IMPORT,
			   sendmail_address_valid, "an address like \"dmarc@example.com\"", true);
}

static const struct key dmarc_reports_keys[] = {
	{ "enabled", h_bool, OFF(dmarc_reports.enabled), 0, 0, NULL, 0 },
	{ "organization", h_dmarcrep_text, OFF(dmarc_reports.organization), 0, 0, NULL, 0 },
	{ "contact", h_dmarcrep_text, OFF(dmarc_reports.contact), 0, 0, NULL, 1 },
	{ "sender", h_dmarcrep_text, OFF(dmarc_reports.sender), 0, 0, NULL, 1 },
	{ "send_hour", h_unsigned, OFF(dmarc_reports.send_hour), 0, 23, NULL, 0 },
	{ "keep_days", h_unsigned, OFF(dmarc_reports.keep_days), 1, 3650, NULL, 0 },
	{ "import", h_bool, OFF(dmarc_reports.import), 0, 0, NULL, 0 },
	{ "import_interval", h_unsigned, OFF(dmarc_reports.import_interval), 1, 86400, NULL, 0 },
	{ "import_addresses", h_dmarcrep_import, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static int h_mta_sts_mode(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	static const char *const choices[] = { "testing", "enforce", "none", NULL };
	return h_choice(p, s, k, choices, &p->cfg->mta_sts.mode);
}

/* An mx pattern of RFC 8461 3.2: a host name, or "*." and a host name */
static bool mta_sts_mx_valid(const char *v)
{
	if (strncmp(v, "*.", 2) == 0)
		v += 2;
	return hostname_valid(v) && strchr(v, '.') != NULL;
}

static int h_mta_sts_mx(struct parse_ctx *p, const config_setting_t *s, const struct key *k)
{
	(void)k;
	return h_addresses(p, s, p->cfg->mta_sts.mx, &p->cfg->mta_sts.mx_count,
			   CONFIG_MAX_MTA_STS_MX, mta_sts_mx_valid,
			   "an MX host name like \"mail.example.com\" or \"*.example.com\"", true);
}

/* RFC 8461 3.2: max_age at most 31557600; below a day makes little sense */
static const struct key mta_sts_policy_keys[] = {
	{ "mode", h_mta_sts_mode, 0, 1, 0, NULL, 0 },
	{ "mx", h_mta_sts_mx, 0, 0, 0, NULL, 0 },
	{ "max_age", h_unsigned, OFF(mta_sts.max_age), 86400, 31557600, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct key root_keys[] = {
	{ "hostname", h_hostname, 0, 1, 0, NULL, 0 },
	{ "user", h_user, 0, 1, 0, NULL, 0 },
	{ "data_dir", h_path, OFF(data_dir), 1, 0, NULL, 0 },
	{ "tls", h_group, 0, 0, 0, tls_keys, 0 },
	{ "listen", h_group, 0, 0, 0, listen_keys, 0 },
	{ "worker_threads", h_unsigned, OFF(worker_threads), 0, 1024, NULL, 0 },
	{ "limits", h_group, 0, 0, 0, limits_keys, 0 },
	{ "smtp", h_group, 0, 0, 0, smtp_keys, 0 },
	{ "store", h_group, 0, 0, 0, store_keys, 0 },
	{ "log", h_group, 0, 0, 0, log_keys, 0 },
	{ "pop3", h_group, 0, 0, 0, pop3_keys, 0 },
	{ "imap", h_group, 0, 0, 0, imap_keys, 0 },
	{ "mailauth", h_group, 0, 0, 0, mailauth_keys, 0 },
	{ "dkim", h_group, 0, 0, 0, dkim_keys, 0 },
	{ "dns", h_dns, 0, 0, 0, dns_keys, 0 },
	{ "queue", h_group, 0, 0, 0, queue_keys, 0 },
	{ "srs", h_group, 0, 0, 0, srs_keys, 0 },
	{ "sendmail", h_group, 0, 0, 0, sendmail_keys, 0 },
	{ "tlsrpt", h_group, 0, 0, 0, tlsrpt_keys, 0 },
	{ "dmarc_reports", h_group, 0, 0, 0, dmarc_reports_keys, 0 },
	{ "mta_sts", h_group, 0, 0, 0, mta_sts_policy_keys, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static int parse_group(struct parse_ctx *p, const config_setting_t *g, const struct key *keys)
{
	int n = config_setting_length(g);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(s);
		const struct key *k;

		for (k = keys; k->name != NULL; k++) {
			if (name != NULL && strcmp(k->name, name) == 0)
				break;
		}
		if (k->name == NULL) {
			if (g->parent == NULL)
				return fail(p, s, "unknown setting '%s'", name ? name : "");
			return fail(p, s, "unknown setting '%s' in group '%s'", name ? name : "",
				    config_setting_name(g));
		}
		if (k->handler(p, s, k) < 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */

static void config_set_defaults(struct config *cfg)
{
	cfg->user = xstrdup("tern");
	cfg->data_dir = xstrdup("data");
	cfg->tls_cert = xstrdup("tls/cert.pem");
	cfg->tls_key = xstrdup("tls/key.pem");
	cfg->bind[0] = xstrdup("0.0.0.0");
	cfg->bind[1] = xstrdup("::");
	cfg->bind_count = 2;
	for (int i = 0; i < LISTENER_KIND_COUNT; i++)
		cfg->port[i] = listener_ports[i];
	cfg->worker_threads = 0;
	cfg->limits = (struct config_limits){
		.smtp_line = 2048,
		.header_size = 100 * 1024,
		.message_size = 50 * 1024 * 1024,
		.recipients = 1000,
		.timeout = 300,
		.errors = 20,
		.connections_per_ip = 50,
		.connections = 2000,
		.auth_failures = 3,
	};
	cfg->plaintext_auth_loopback = false;
	cfg->subaddress_separator = xstrdup("+");
	cfg->proxy_trusted_count = 0;
	cfg->store_fsync = xstrdup("syncfs");
	cfg->commit_batch = 256;
	cfg->log_level = xstrdup("info");
	cfg->log_syslog = false;
	cfg->pop3.expire_days = 0;
	cfg->pop3.delete_to_trash = false;
	cfg->pop3.plaintext_auth_loopback = false;
	cfg->imap.plaintext_auth_loopback = false;
	cfg->imap.connections_per_user = 10;
	cfg->mailauth.spf = true;
	cfg->mailauth.dkim = true;
	cfg->mailauth.dmarc = true;
	cfg->mailauth.dmarc_enforce = true;
	cfg->mailauth.arc = true;
	cfg->dkim.sign = true;
	cfg->dkim.rotation_grace = 7 * 86400;
	cfg->dkim.check_interval = 3600;
	cfg->dns.mode = xstrdup("system");
	cfg->dns.dnssec = true;
	cfg->dns.timeout = 10;
	cfg->queue.retry_min = 300;
	cfg->queue.retry_max = 3600;
	cfg->queue.max_age = 5 * 86400;
	cfg->queue.warn_after = 4 * 3600;
	cfg->queue.scan_interval = 5;
	cfg->queue.connections = 20;
	cfg->queue.connections_per_domain = 5;
	cfg->queue.remote_port = 25;
	cfg->srs.max_age = 21;
	cfg->queue.smarthost.port = 587;
	cfg->queue.mta_sts.enabled = true;
	cfg->queue.mta_sts.port = 443;
	cfg->queue.mta_sts.timeout = 10;
	cfg->tlsrpt.enabled = true;
	cfg->tlsrpt.send_hour = 1;
	cfg->tlsrpt.keep_days = 14;
	cfg->tlsrpt.timeout = 30;
	cfg->dmarc_reports.enabled = true;
	cfg->dmarc_reports.send_hour = 1;
	cfg->dmarc_reports.keep_days = 14;
	cfg->dmarc_reports.import = true;
	cfg->dmarc_reports.import_interval = 300;
	cfg->mta_sts.mode = xstrdup("testing");
	cfg->mta_sts.max_age = 604800;
}

/* Absolute form of the directory holding path (realpath when it exists). */
static char *config_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir, *real;

	if (slash == NULL)
		dir = xstrdup(".");
	else if (slash == path)
		dir = xstrdup("/");
	else
		dir = xstrndup(path, (size_t)(slash - path));
	real = realpath(dir, NULL);
	if (real != NULL) {
		free(dir);
		return real;
	}
	if (dir[0] != '/') {
		char *cwd = getcwd(NULL, 0);
		if (cwd != NULL) {
			char *abs = xasprintf("%s/%s", cwd, dir);
			free(cwd);
			free(dir);
			return abs;
		}
	}
	return dir;
}

static void resolve_path(const char *dir, char **path)
{
	if ((*path)[0] == '/')
		return;
	const char *rel = *path;
	while (rel[0] == '.' && rel[1] == '/')
		rel += 2;
	char *abs = strcmp(rel, ".") == 0 || rel[0] == '\0' ? xstrdup(dir)
		: xasprintf("%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", rel);
	free(*path);
	*path = abs;
}

static struct config *config_finish(config_t *lc, const char *name, int read_ret,
				    char **error_r)
{
	struct parse_ctx p = { .name = name };
	struct config *cfg;

	if (read_ret != CONFIG_TRUE) {
		const char *file = config_error_file(lc);
		*error_r = xasprintf("%s:%d: %s", file != NULL ? file : name,
				     config_error_line(lc),
				     config_error_text(lc) != NULL ? config_error_text(lc)
				     : "syntax error");
		return NULL;
	}
	cfg = xcalloc(1, sizeof(*cfg));
	config_set_defaults(cfg);
	cfg->path = xstrdup(name);
	cfg->dir = config_dir_of(name);
	p.cfg = cfg;
	if (parse_group(&p, config_root_setting(lc), root_keys) < 0) {
		*error_r = p.error;
		config_free(&cfg);
		return NULL;
	}
	if (cfg->hostname == NULL) {
		*error_r = xasprintf("%s: hostname is required (add a line like "
				     "hostname = \"mail.example.com\";)", name);
		config_free(&cfg);
		return NULL;
	}
	resolve_path(cfg->dir, &cfg->data_dir);
	resolve_path(cfg->dir, &cfg->tls_cert);
	resolve_path(cfg->dir, &cfg->tls_key);
	if (cfg->dns.trust_anchor_file != NULL)
		resolve_path(cfg->dir, &cfg->dns.trust_anchor_file);
	if (cfg->srs.secrets_file != NULL)
		resolve_path(cfg->dir, &cfg->srs.secrets_file);
	if (cfg->tlsrpt.ca_file != NULL)
		resolve_path(cfg->dir, &cfg->tlsrpt.ca_file);
	if (cfg->sendmail.socket == NULL) {
		/* beside the data folder, which only the service user may enter */
		char *parent = config_dir_of(cfg->data_dir);
		cfg->sendmail.socket = xasprintf("%s%srun/submit.sock", parent,
						 strcmp(parent, "/") == 0 ? "" : "/");
		free(parent);
	} else if (cfg->sendmail.socket[0] != '\0') {
		resolve_path(cfg->dir, &cfg->sendmail.socket);
	}
	return cfg;
}

struct config *config_load(const char *path, char **error_r)
{
	config_t lc;
	struct config *cfg;
	FILE *f;
	char *dir;
	int ret;

	*error_r = NULL;
	f = fopen(path, "r");
	if (f == NULL) {
		*error_r = xasprintf("%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	dir = config_dir_of(path);
	config_init(&lc);
	config_set_include_dir(&lc, dir);
	ret = config_read(&lc, f);
	fclose(f);
	cfg = config_finish(&lc, path, ret, error_r);
	config_destroy(&lc);
	free(dir);
	return cfg;
}

/* Case-insensitive search for "@include" (there is no directory to include
 * from, and the fuzz target must not open files). */
static bool has_include(const char *text)
{
	for (const char *p = strchr(text, '@'); p != NULL; p = strchr(p + 1, '@')) {
		if (strncasecmp(p, "@include", 8) == 0)
			return true;
	}
	return false;
}

struct config *config_parse_string(const char *text, const char *name, char **error_r)
{
	config_t lc;
	struct config *cfg;

	*error_r = NULL;
	if (has_include(text)) {
		*error_r = xasprintf("%s: @include is only allowed in files", name);
		return NULL;
	}
	config_init(&lc);
	cfg = config_finish(&lc, name, config_read_string(&lc, text), error_r);
	config_destroy(&lc);
	return cfg;
}

void config_free(struct config **cfgp)
{
	struct config *cfg = *cfgp;

	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->dir);
	free(cfg->hostname);
	free(cfg->user);
	free(cfg->data_dir);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	for (unsigned i = 0; i < cfg->bind_count; i++)
		free(cfg->bind[i]);
	for (unsigned i = 0; i < cfg->proxy_trusted_count; i++)
		free(cfg->proxy_trusted[i]);
	free(cfg->subaddress_separator);
	free(cfg->store_fsync);
	free(cfg->log_level);
	free(cfg->dns.mode);
	for (unsigned i = 0; i < cfg->dns.upstream_count; i++)
		free(cfg->dns.upstream[i]);
	dns_stubs_clear(cfg);
	free(cfg->dns.trust_anchor_file);
	routes_clear(cfg);
	dmarc_overrides_clear(cfg);
	free(cfg->srs.secrets_file);
	free(cfg->srs.domain);
	free(cfg->sendmail.socket);
	free(cfg->sendmail.default_domain);
	sendmail_users_clear(cfg);
	free(cfg->queue.ca_file);
	free(cfg->queue.smarthost.host);
	free(cfg->queue.smarthost.user);
	free(cfg->queue.smarthost.password_file);
	free(cfg->queue.smarthost.tls);
	rate_limits_clear(cfg);
	free(cfg->queue.mta_sts.ca_file);
	free(cfg->tlsrpt.organization);
	free(cfg->tlsrpt.contact);
	free(cfg->tlsrpt.sender);
	free(cfg->tlsrpt.ca_file);
	free(cfg->dmarc_reports.organization);
	free(cfg->dmarc_reports.contact);
	free(cfg->dmarc_reports.sender);
	for (unsigned i = 0; i < cfg->dmarc_reports.import_address_count; i++)
		free(cfg->dmarc_reports.import_addresses[i]);
	free(cfg->mta_sts.mode);
	for (unsigned i = 0; i < cfg->mta_sts.mx_count; i++)
		free(cfg->mta_sts.mx[i]);
	for (unsigned i = 0; i < cfg->mailauth.arc_trusted_sealer_count; i++)
		free(cfg->mailauth.arc_trusted_sealer[i]);
	free(cfg);
	*cfgp = NULL;
}

/* ------------------------------------------------------------------ */
/* Template */

static __thread char template_error[512];

static int template_fail(const char **error_r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int template_fail(const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(template_error, sizeof(template_error), fmt, ap);
	va_end(ap);
	*error_r = template_error;
	return -1;
}

static void template_text(struct buf *b, const char *hostname, const char *user,
			  const char *const *bind, unsigned bind_count, int offset)
{
	static const char *const default_bind[] = { "0.0.0.0", "::" };
	static const char *const comments[LISTENER_KIND_COUNT] = {
		[LISTENER_SMTP] = "mail from other servers (MX), STARTTLS offered",
		[LISTENER_SUBMISSION] = "mail from your users, STARTTLS required before AUTH",
		[LISTENER_SUBMISSIONS] = "the same with implicit TLS",
		[LISTENER_IMAP] = "IMAP with STARTTLS",
		[LISTENER_IMAPS] = "IMAP with implicit TLS",
		[LISTENER_POP3] = "POP3 with STARTTLS",
		[LISTENER_POP3S] = "POP3 with implicit TLS",
		[LISTENER_HTTP] = "plain HTTP",
		[LISTENER_HTTPS] = "HTTPS: MTA-STS policy, autoconfig, admin API",
	};

	if (bind_count == 0) {
		bind = default_bind;
		bind_count = 2;
	}
	buf_printf(b,
		"# tern.conf - Tern mail server configuration (libconfig syntax).\n"
		"# Every setting below shows its default unless noted; only hostname is\n"
		"# required.  Relative paths are relative to this file's directory.\n"
		"# Domains, users and aliases are not set here: use `tern domain`,\n"
		"# `tern user` and `tern alias`.  Check this file with `tern config check`.\n"
		"# Full reference: docs/configuration.md\n"
		"\n"
		"# The name of this server: SMTP greeting, Received headers, TLS certificate.\n"
		"# Required.\n"
		"hostname = \"%s\";\n"
		"\n"
		"# The unprivileged user the worker process (and `tern` commands that\n"
		"# change data, when run as root) run as.  Default \"tern\".\n"
		"user = \"%s\";\n"
		"\n"
		"# Databases and message files.  Default \"data\".\n"
		"data_dir = \"data\";\n"
		"\n"
		"# TLS certificate chain and private key (PEM).  The key is read by the\n"
		"# master process as root before privileges are dropped, so it can stay\n"
		"# readable by root only.\n"
		"tls = {\n"
		"  cert = \"tls/cert.pem\";\n"
		"  key = \"tls/key.pem\";\n"
		"};\n"
		"\n"
		"# Listeners.  bind: the addresses every listener binds (default\n"
		"# [ \"0.0.0.0\", \"::\" ], all IPv4 and IPv6 addresses).  A port of 0 or\n"
		"# false disables that listener.\n"
		"listen = {\n"
		"  bind = [ ",
		hostname, user);
	for (unsigned i = 0; i < bind_count; i++)
		buf_printf(b, "%s\"%s\"", i == 0 ? "" : ", ", bind[i]);
	buf_printf(b, " ];\n");
	for (int i = 0; i < LISTENER_KIND_COUNT; i++) {
		char setting[64];
		snprintf(setting, sizeof(setting), "%s = %d;", listener_names[i],
			 listener_ports[i] + offset);
		if (offset != 0)
			buf_printf(b, "  %-20s # %s (standard port %d)\n", setting, comments[i],
				   listener_ports[i]);
		else
			buf_printf(b, "  %-20s # %s\n", setting, comments[i]);
	}
	buf_printf(b,
		"};\n"
		"\n"
		"# Event-loop threads in the worker; 0 = one per CPU core.\n"
		"worker_threads = 0;\n"
		"\n"
		"# Limits on what a client may send or use.  Sizes are bytes, or strings\n"
		"# with a K, M or G suffix such as \"50M\".\n"
		"limits = {\n"
		"  smtp_line = 2048;            # longest SMTP command line (at least 512)\n"
		"  header_size = 102400;        # largest header section of a message\n"
		"  message_size = 52428800;     # largest message (advertised with SIZE; >= 1024)\n"
		"  recipients = 1000;           # recipients per message\n"
		"  timeout = 300;               # idle timeout, seconds\n"
		"  errors = 20;                 # protocol errors before disconnecting\n"
		"  connections_per_ip = 50;     # concurrent connections from one client address\n"
		"  connections = 2000;          # concurrent connections in all\n"
		"  auth_failures = 3;           # failed logins per connection before disconnecting\n"
		"};\n"
		"\n"
		"smtp = {\n"
		"  # Allow AUTH without TLS from 127.0.0.0/8 and ::1 (webmail on this host).\n"
		"  plaintext_auth_loopback = false;\n"
		"  # user+tag@domain delivers to user@domain; \"\" disables subaddressing.\n"
		"  subaddress_separator = \"+\";\n"
		"  # Load balancers allowed to send PROXY protocol headers (addresses or\n"
		"  # networks like \"10.0.0.0/8\").  Empty: PROXY headers are refused.\n"
		"  proxy_trusted = [ ];\n"
		"};\n"
		"\n"
		"store = {\n"
		"  # How a batch of new messages is made durable before it is acknowledged:\n"
		"  # \"syncfs\" (one syncfs of the data filesystem per batch) or \"fsync\"\n"
		"  # (one fsync per file).\n"
		"  fsync = \"syncfs\";\n"
		"  # Most messages committed together in one transaction.\n"
		"  commit_batch = 256;\n"
		"};\n"
		"\n"
		"pop3 = {\n"
		"  # Delete messages this many days after POP3 first retrieved them\n"
		"  # (\"leave on server\" clients); 0 = never.\n"
		"  expire_days = 0;\n"
		"  # DELE moves messages to Trash instead of deleting them.\n"
		"  delete_to_trash = false;\n"
		"  # Allow USER/PASS and AUTH without TLS from 127.0.0.0/8 and ::1.\n"
		"  plaintext_auth_loopback = false;\n"
		"};\n"
		"\n"
		"imap = {\n"
		"  # Allow LOGIN and AUTHENTICATE without TLS from 127.0.0.0/8 and ::1.\n"
		"  plaintext_auth_loopback = false;\n"
		"  # Logged-in sessions of one user from one client address (0 = no limit).\n"
		"  connections_per_user = 10;\n"
		"};\n"
		"\n"
		"# DNS resolver for outbound mail (docs/dns-resolver.md).  The defaults:\n"
		"# the resolvers of /etc/resolv.conf, DNSSEC validated with the root key\n"
		"# of Debian's dns-root-data.  mode \"upstream\" forwards to the servers in\n"
		"# upstream = [ \"ADDR\", \"ADDR@PORT\" ]; mode \"stub\" sends the zones of\n"
		"# stub = ( { zone = \"...\"; servers = [ ... ]; } ) to those servers.\n"
		"# dns = {\n"
		"#   mode = \"system\";\n"
		"#   dnssec = true;\n"
		"#   trust_anchor_file = \"\";     # \"\" = /usr/share/dns/root.key\n"
		"#   timeout = 10;               # seconds per lookup\n"
		"# };\n"
		"\n"
		"# Forwarding: an alias with remote targets resends the message with an\n"
		"# SRS envelope sender (SRS0=HASH=TT=domain=user@domain below) so SPF\n"
		"# passes at the destination, and bounces to such addresses go back to\n"
		"# the original sender (docs/bounces-and-forwarding.md).  secrets_file:\n"
		"# one secret per line, the first signs, all verify (`tern init` writes a\n"
		"# random one); \"\" forwards without rewriting.  domain: \"\" = hostname.\n"
		"srs = {\n"
		"  secrets_file = \"srs.secret\";\n"
		"  domain = \"\";\n"
		"  max_age = 21;                # days a bounce address stays valid\n"
		"};\n"
		"\n"
		"# The MTA-STS policy (RFC 8461) served to other mail servers at\n"
		"# https://mta-sts.DOMAIN/.well-known/mta-sts.txt for every local domain\n"
		"# (docs/http.md).  It takes effect once the _mta-sts TXT record of the\n"
		"# domain is published (`tern dns records DOMAIN`).  mode: \"testing\"\n"
		"# (senders report failures but still deliver), \"enforce\" (senders\n"
		"# refuse MX hosts without a valid certificate for their name) or\n"
		"# \"none\".  mx: the MX host names senders may use (\"*.example.com\"\n"
		"# allowed); default: hostname.  max_age: seconds senders keep the policy.\n"
		"mta_sts = {\n"
		"  mode = \"testing\";\n"
		"  # mx = [ \"%s\" ];\n"
		"  max_age = 604800;\n"
		"};\n"
		"\n"
		"# Checks of mail arriving on port 25 (docs/spf.md, docs/dkim.md,\n"
		"# docs/dmarc.md), reported in one Authentication-Results field.\n"
		"# dmarc_enforce = false: record DMARC results, never reject or\n"
		"# quarantine (a gentle start).  dmarc_overrides: your own decision for\n"
		"# mail claiming a domain, e.g. ( { domain = \"example.org\"; action = \"none\"; } ).\n"
		"# The defaults:\n"
		"# mailauth = {\n"
		"#   spf = true;\n"
		"#   dkim = true;\n"
		"#   dmarc = true;\n"
		"#   dmarc_enforce = true;\n"
		"#   arc = true;\n"
		"#   # arc_trusted_sealers = [ \"lists.example.org\" ];\n"
		"# };\n"
		"\n"
		"# DKIM signing of your users' mail with the keys `tern dkim keygen`\n"
		"# makes (docs/dkim.md).  rotation_grace: seconds an old key stays\n"
		"# published after a rotation; check_interval: seconds between DNS\n"
		"# checks of keys waiting for their record.  The defaults:\n"
		"# dkim = {\n"
		"#   sign = true;\n"
		"#   rotation_grace = 604800;\n"
		"#   check_interval = 3600;\n"
		"# };\n"
		"\n"
		"log = {\n"
		"  level = \"info\";              # \"debug\", \"info\", \"warn\" or \"error\"\n"
		"  syslog = false;              # true: to syslog (mail facility) instead of stderr\n"
		"};\n", hostname);
}

int config_write_template_user(const char *path, const char *hostname, const char *user,
			       const char *const *bind, unsigned bind_count, int port_offset,
			       const char **error_r)
{
	struct buf b;
	int fd, ret = 0;

	if (user == NULL)
		user = "tern";
	if (hostname == NULL || !hostname_valid(hostname))
		return template_fail(error_r, "invalid host name \"%s\"", hostname ? hostname : "");
	if (!user_valid(user))
		return template_fail(error_r, "invalid user name \"%s\"", user);
	if (bind_count > CONFIG_MAX_BIND)
		return template_fail(error_r, "at most %d bind addresses", CONFIG_MAX_BIND);
	for (unsigned i = 0; i < bind_count; i++) {
		if (!ip_valid(bind[i]))
			return template_fail(error_r, "\"%s\" is not an IPv4 or IPv6 address", bind[i]);
	}
	if (port_offset < 0 || port_offset > 65535 - 995)
		return template_fail(error_r, "port offset %d out of range (0 to %d)",
				     port_offset, 65535 - 995);

	if (path == NULL)
		return 0;
	buf_init(&b, BUF_UNLIMITED);
	template_text(&b, hostname, user, bind, bind_count, port_offset);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = template_fail(error_r, "%s: %s", path, strerror(errno));
		goto out;
	}
	for (size_t done = 0; done < b.len;) {
		ssize_t n = write(fd, b.data + done, b.len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = template_fail(error_r, "write %s: %s", path, strerror(errno));
			break;
		}
		done += (size_t)n;
	}
	if (ret == 0 && fsync(fd) < 0)
		ret = template_fail(error_r, "fsync %s: %s", path, strerror(errno));
	if (close(fd) < 0 && ret == 0)
		ret = template_fail(error_r, "close %s: %s", path, strerror(errno));
	if (ret < 0)
		unlink(path);
out:
	buf_free(&b);
	return ret;
}

int config_write_template(const char *path, const char *hostname,
			  const char *const *bind, unsigned bind_count, int port_offset,
			  const char **error_r)
{
	return config_write_template_user(path, hostname, NULL, bind, bind_count, port_offset,
					  error_r);
}

/* ---- SRS secrets (srs.secrets_file) ---- */

int config_srs_secrets_load(const struct config *cfg, char ***secrets_r, char **error_r)
{
	const char *path = cfg->srs.secrets_file;
	char **list = NULL, *line = NULL;
	size_t count = 0, cap = 0;
	FILE *f;

	*secrets_r = NULL;
	*error_r = NULL;
	if (path == NULL)
		return 0;
	f = fopen(path, "re");
	if (f == NULL) {
		*error_r = xasprintf("srs.secrets_file %s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t n = 0;
		ssize_t len = getline(&line, &n, f);
		if (len < 0)
			break;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
				   line[len - 1] == ' ' || line[len - 1] == '\t'))
			line[--len] = '\0';
		if (len > 0 && line[0] != '#') {
			if (count + 2 > cap) {
				cap = cap ? cap * 2 : 4;
				list = xrealloc(list, cap * sizeof(*list));
			}
			list[count++] = line;
			list[count] = NULL;
			line = NULL;
		}
		free(line);
		line = NULL;
	}
	free(line);
	fclose(f);
	if (count == 0) {
		*error_r = xasprintf("srs.secrets_file %s holds no secret", path);
		free(list);
		return -1;
	}
	*secrets_r = list;
	return (int)count;
}

void config_srs_secrets_free(char ***secrets)
{
	if (*secrets == NULL)
		return;
	for (char **s = *secrets; *s != NULL; s++) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
	}
	free(*secrets);
	*secrets = NULL;
}

int config_srs_secret_create(const char *path, char **error_r)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[32];
	char text[sizeof(raw) * 2 + 2];
	size_t got = 0;
	int fd, ret = 0;

	*error_r = NULL;
	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("getrandom: %s", strerror(errno));
			return -1;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		text[2 * i] = hex[raw[i] >> 4];
		text[2 * i + 1] = hex[raw[i] & 15];
	}
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	explicit_bzero(raw, sizeof(raw));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		explicit_bzero(text, sizeof(text));
		return -1;
	}
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text) || fsync(fd) < 0) {
		*error_r = xasprintf("write %s: %s", path, strerror(errno));
		ret = -1;
	}
	if (close(fd) < 0 && ret == 0) {
		*error_r = xasprintf("close %s: %s", path, strerror(errno));
		ret = -1;
	}
	if (ret < 0)
		unlink(path);
	explicit_bzero(text, sizeof(text));
	return ret;
}
