/* Unit tests for lib/config: defaults, every group, every kind of error
 * with its file:line, template round trip, relative path resolution. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "unit.h"

static struct config *parse(const char *text, char **error_r)
{
	return config_parse_string(text, "/tmp/t.conf", error_r);
}

/* Parse text that must fail; check the message starts with want. */
static void expect_error(const char *text, const char *want)
{
	char *error = NULL;
	struct config *cfg = parse(text, &error);
	CHECK(cfg == NULL);
	CHECK(error != NULL);
	if (cfg != NULL)
		fprintf(stderr, "  accepted: %s\n", text);
	if (error != NULL && strncmp(error, want, strlen(want)) != 0) {
		fprintf(stderr, "  got error: %s\n  expected:  %s...\n", error, want);
		CHECK(!"error message");
	}
	free(error);
	config_free(&cfg);
}

static void test_defaults(void)
{
	char *error = NULL;
	struct config *cfg = parse("hostname = \"Mail.Example.COM.\";\n", &error);
	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	CHECK_STR(cfg->hostname, "mail.example.com");
	CHECK_STR(cfg->user, "tern");
	CHECK_STR(cfg->dir, "/tmp");
	CHECK_STR(cfg->data_dir, "/tmp/data");
	CHECK_STR(cfg->tls_cert, "/tmp/tls/cert.pem");
	CHECK_STR(cfg->tls_key, "/tmp/tls/key.pem");
	CHECK(cfg->bind_count == 2);
	CHECK_STR(cfg->bind[0], "0.0.0.0");
	CHECK_STR(cfg->bind[1], "::");
	for (int i = 0; i < LISTENER_KIND_COUNT; i++)
		CHECK(cfg->port[i] == listener_kind_default_port(i));
	CHECK(cfg->port[LISTENER_SMTP] == 25);
	CHECK(cfg->port[LISTENER_SUBMISSION] == 587);
	CHECK(cfg->port[LISTENER_SUBMISSIONS] == 465);
	CHECK(cfg->port[LISTENER_IMAP] == 143);
	CHECK(cfg->port[LISTENER_IMAPS] == 993);
	CHECK(cfg->port[LISTENER_POP3] == 110);
	CHECK(cfg->port[LISTENER_POP3S] == 995);
	CHECK(cfg->port[LISTENER_HTTP] == 80);
	CHECK(cfg->port[LISTENER_HTTPS] == 443);
	CHECK(cfg->worker_threads == 0);
	CHECK(cfg->limits.smtp_line == 2048);
	CHECK(cfg->limits.header_size == 102400);
	CHECK(cfg->limits.message_size == 52428800);
	CHECK(cfg->limits.recipients == 1000);
	CHECK(cfg->limits.timeout == 300);
	CHECK(cfg->limits.errors == 20);
	CHECK(cfg->limits.connections_per_ip == 50);
	CHECK(cfg->limits.connections == 2000);
	CHECK(cfg->limits.auth_failures == 3);
	CHECK(!cfg->plaintext_auth_loopback);
	CHECK_STR(cfg->subaddress_separator, "+");
	CHECK(cfg->proxy_trusted_count == 0);
	CHECK_STR(cfg->store_fsync, "syncfs");
	CHECK(cfg->commit_batch == 256);
	CHECK_STR(cfg->log_level, "info");
	CHECK(!cfg->log_syslog);
	config_free(&cfg);
	CHECK(cfg == NULL);
	config_free(&cfg);
}

static void test_names(void)
{
	CHECK_STR(listener_kind_name(LISTENER_SMTP), "smtp");
	CHECK_STR(listener_kind_name(LISTENER_SUBMISSIONS), "submissions");
	CHECK_STR(listener_kind_name(LISTENER_HTTPS), "https");
	CHECK_STR(listener_kind_name(LISTENER_KIND_COUNT), "unknown");
	CHECK(listener_kind_default_port(LISTENER_POP3S) == 995);
	CHECK(listener_kind_default_port(LISTENER_KIND_COUNT) == 0);

	setenv("TERN_CONF", "/x/y.conf", 1);
	CHECK_STR(config_default_path(), "/x/y.conf");
	unsetenv("TERN_CONF");
	CHECK_STR(config_default_path(), "/etc/tern/tern.conf");
}

static void test_every_group(void)
{
	const char *text =
		"hostname = \"mx.example.org\";\n"
		"user = \"mail_svc\";\n"
		"data_dir = \"/var/lib/tern\";\n"
		"tls = { cert = \"/etc/ssl/c.pem\"; key = \"k.pem\"; };\n"
		"listen = { bind = [ \"127.0.0.1\", \"::1\", \"192.0.2.7\" ];\n"
		"  smtp = 2525; submission = false; submissions = 0; imap = true;\n"
		"  imaps = 10993; pop3 = 0; pop3s = 0; http = 8080; https = 8443; };\n"
		"worker_threads = 4;\n"
		"limits = { smtp_line = 4096; header_size = \"1M\"; message_size = 10485760L;\n"
		"  recipients = 50; timeout = 60; errors = 5; connections_per_ip = 3;\n"
		"  connections = 100; auth_failures = 1; };\n"
		"smtp = { plaintext_auth_loopback = true; subaddress_separator = \"+-\";\n"
		"  proxy_trusted = [ \"10.0.0.0/8\", \"fd00::/8\", \"192.0.2.1\" ]; };\n"
		"store = { fsync = \"fsync\"; commit_batch = 16; };\n"
		"log = { level = \"debug\"; syslog = true; };\n";
	char *error = NULL;
	struct config *cfg = parse(text, &error);
	CHECK(cfg != NULL);
	if (cfg == NULL) {
		fprintf(stderr, "  error: %s\n", error);
		free(error);
		return;
	}
	CHECK_STR(cfg->hostname, "mx.example.org");
	CHECK_STR(cfg->user, "mail_svc");
	CHECK_STR(cfg->data_dir, "/var/lib/tern");
	CHECK_STR(cfg->tls_cert, "/etc/ssl/c.pem");
	CHECK_STR(cfg->tls_key, "/tmp/k.pem");
	CHECK(cfg->bind_count == 3);
	CHECK_STR(cfg->bind[2], "192.0.2.7");
	CHECK(cfg->port[LISTENER_SMTP] == 2525);
	CHECK(cfg->port[LISTENER_SUBMISSION] == 0);
	CHECK(cfg->port[LISTENER_SUBMISSIONS] == 0);
	CHECK(cfg->port[LISTENER_IMAP] == 143);
	CHECK(cfg->port[LISTENER_IMAPS] == 10993);
	CHECK(cfg->port[LISTENER_HTTP] == 8080);
	CHECK(cfg->port[LISTENER_HTTPS] == 8443);
	CHECK(cfg->worker_threads == 4);
	CHECK(cfg->limits.smtp_line == 4096);
	CHECK(cfg->limits.header_size == 1048576);
	CHECK(cfg->limits.message_size == 10485760);
	CHECK(cfg->limits.recipients == 50);
	CHECK(cfg->limits.timeout == 60);
	CHECK(cfg->limits.errors == 5);
	CHECK(cfg->limits.connections_per_ip == 3);
	CHECK(cfg->limits.connections == 100);
	CHECK(cfg->limits.auth_failures == 1);
	CHECK(cfg->plaintext_auth_loopback);
	CHECK_STR(cfg->subaddress_separator, "+-");
	CHECK(cfg->proxy_trusted_count == 3);
	CHECK_STR(cfg->proxy_trusted[1], "fd00::/8");
	CHECK_STR(cfg->store_fsync, "fsync");
	CHECK(cfg->commit_batch == 16);
	CHECK_STR(cfg->log_level, "debug");
	CHECK(cfg->log_syslog);
	config_free(&cfg);

	/* empty separator disables; a single bind string is accepted */
	cfg = parse("hostname = \"h\"; smtp = { subaddress_separator = \"\"; };\n"
		    "listen = { bind = \"::\"; };", &error);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_STR(cfg->subaddress_separator, "");
		CHECK(cfg->bind_count == 1);
		CHECK_STR(cfg->bind[0], "::");
	}
	config_free(&cfg);
}

static void test_errors(void)
{
	/* syntax error from libconfig, with its line */
	expect_error("hostname = \"a\";\n\nlimits = { timeout = ; };\n", "/tmp/t.conf:3: ");
	expect_error("hostname = \"a\";\nuser = = \"x\";\n", "/tmp/t.conf:2: syntax error");
	/* missing hostname */
	expect_error("user = \"x\";\n", "/tmp/t.conf: hostname is required");
	expect_error("", "/tmp/t.conf: hostname is required");
	/* unknown settings */
	expect_error("hostname = \"a\";\nfoo = 1;\n", "/tmp/t.conf:2: unknown setting 'foo'");
	expect_error("hostname = \"a\";\nlimits = {\n  timeout = 5;\n  foo = 1;\n};\n",
		     "/tmp/t.conf:4: unknown setting 'foo' in group 'limits'");
	expect_error("hostname = \"a\";\nlisten = { smtpd = 25; };\n",
		     "/tmp/t.conf:2: unknown setting 'smtpd' in group 'listen'");
	/* wrong types */
	expect_error("hostname = 5;\n", "/tmp/t.conf:1: hostname must be a string, not an integer");
	expect_error("hostname = \"a\";\n\nlimits = { timeout = \"5\"; };\n",
		     "/tmp/t.conf:3: limits.timeout must be an integer, not a string");
	expect_error("hostname = \"a\";\nlimits = 5;\n",
		     "/tmp/t.conf:2: limits must be a group { ... }, not an integer");
	expect_error("hostname = \"a\";\nsmtp = { plaintext_auth_loopback = 1; };\n",
		     "/tmp/t.conf:2: smtp.plaintext_auth_loopback must be true or false");
	expect_error("hostname = \"a\";\nlisten = { imap = \"143\"; };\n",
		     "/tmp/t.conf:2: listen.imap must be a port number or false");
	expect_error("hostname = \"a\";\nlisten = { bind = 1; };\n",
		     "/tmp/t.conf:2: listen.bind must be a list of strings");
	expect_error("hostname = \"a\";\nlisten = { bind = [ 1 ]; };\n",
		     "/tmp/t.conf:2: listen.bind entries must be strings");
	expect_error("hostname = \"a\";\nworker_threads = 1.5;\n",
		     "/tmp/t.conf:2: worker_threads must be an integer, not a number with a fraction");
	/* out of range */
	expect_error("hostname = \"a\";\nlisten = {\n smtp = 65536; };\n",
		     "/tmp/t.conf:3: listen.smtp = 65536 is not a port");
	expect_error("hostname = \"a\";\nlisten = { smtp = -1; };\n",
		     "/tmp/t.conf:2: listen.smtp = -1 is not a port");
	expect_error("hostname = \"a\";\nlimits = { message_size = 1023; };\n",
		     "/tmp/t.conf:2: limits.message_size = 1023 is out of range");
	expect_error("hostname = \"a\";\nlimits = { timeout = 0; };\n",
		     "/tmp/t.conf:2: limits.timeout = 0 is out of range");
	expect_error("hostname = \"a\";\nlimits = { smtp_line = 100; };\n",
		     "/tmp/t.conf:2: limits.smtp_line = 100 is out of range");
	expect_error("hostname = \"a\";\nlimits = { recipients = 99999999999L; };\n",
		     "/tmp/t.conf:2: limits.recipients = 99999999999 is out of range");
	expect_error("hostname = \"a\";\nlimits = { header_size = \"12Q\"; };\n",
		     "/tmp/t.conf:2: limits.header_size = \"12Q\" is not a size");
	expect_error("hostname = \"a\";\nstore = { commit_batch = 0; };\n",
		     "/tmp/t.conf:2: store.commit_batch = 0 is out of range");
	/* bad choices and strings */
	expect_error("hostname = \"a\";\nstore = { fsync = \"never\"; };\n",
		     "/tmp/t.conf:2: store.fsync = \"never\" is not known (expected \"syncfs\" or \"fsync\")");
	expect_error("hostname = \"a\";\nlog = { level = \"loud\"; };\n",
		     "/tmp/t.conf:2: log.level = \"loud\" is not known");
	expect_error("hostname = \"bad_host!\";\n", "/tmp/t.conf:1: hostname \"bad_host!\" is not a valid");
	expect_error("hostname = \"-a.b\";\n", "/tmp/t.conf:1: hostname");
	expect_error("hostname = \"a..b\";\n", "/tmp/t.conf:1: hostname");
	expect_error("hostname = \"\";\n", "/tmp/t.conf:1: hostname must not be empty");
	expect_error("hostname = \"a\";\nuser = \"a b\";\n", "/tmp/t.conf:2: user \"a b\" is not");
	expect_error("hostname = \"a\";\ndata_dir = \"\";\n", "/tmp/t.conf:2: data_dir must not be empty");
	expect_error("hostname = \"a\";\nsmtp = { subaddress_separator = \"a\"; };\n",
		     "/tmp/t.conf:2: smtp.subaddress_separator = \"a\" is not allowed");
	expect_error("hostname = \"a\";\nsmtp = { subaddress_separator = \"@\"; };\n",
		     "/tmp/t.conf:2: smtp.subaddress_separator");
	/* addresses */
	expect_error("hostname = \"a\";\nlisten = {\n  bind = [ \"0.0.0.0\",\n  \"1.2.3\" ]; };\n",
		     "/tmp/t.conf:4: listen.bind: \"1.2.3\" is not an IPv4 or IPv6 address");
	expect_error("hostname = \"a\";\nlisten = { bind = [ ]; };\n",
		     "/tmp/t.conf:2: listen.bind is empty");
	expect_error("hostname = \"a\";\nlisten = { bind = [ \"10.0.0.0/8\" ]; };\n",
		     "/tmp/t.conf:2: listen.bind: \"10.0.0.0/8\" is not");
	expect_error("hostname = \"a\";\nsmtp = { proxy_trusted = [ \"10.0.0.0/33\" ]; };\n",
		     "/tmp/t.conf:2: smtp.proxy_trusted: \"10.0.0.0/33\" is not");
	expect_error("hostname = \"a\";\nsmtp = { proxy_trusted = [ \"::/129\" ]; };\n",
		     "/tmp/t.conf:2: smtp.proxy_trusted");
	expect_error("hostname = \"a\";\nsmtp = { proxy_trusted = [ \"1.2.3.4/\" ]; };\n",
		     "/tmp/t.conf:2: smtp.proxy_trusted");
	expect_error("hostname = \"a\";\nsmtp = { proxy_trusted = [ \"1.2.3.4/8x\" ]; };\n",
		     "/tmp/t.conf:2: smtp.proxy_trusted");
	expect_error("hostname = \"a\";\nsmtp = { proxy_trusted = [ \"host/8\" ]; };\n",
		     "/tmp/t.conf:2: smtp.proxy_trusted");
	expect_error("hostname = \"a\";\nlisten = { bind = [ \"1\", \"2\", \"3\", \"4\", \"5\", "
		     "\"6\", \"7\", \"8\", \"9\", \"10\", \"11\", \"12\", \"13\", \"14\", \"15\", "
		     "\"16\", \"17\" ]; };\n",
		     "/tmp/t.conf:2: listen.bind has 17 entries");
	/* includes are refused in strings */
	expect_error("@include \"/etc/passwd\"\n", "/tmp/t.conf: @include");
}

static void test_sizes(void)
{
	uint64_t v = 1;
	CHECK(config_parse_size("0", &v) == 0 && v == 0);
	CHECK(config_parse_size("500M", &v) == 0 && v == 500ULL << 20);
	CHECK(config_parse_size("2G", &v) == 0 && v == 2ULL << 30);
	CHECK(config_parse_size("2gb", &v) == 0 && v == 2ULL << 30);
	CHECK(config_parse_size("10k", &v) == 0 && v == 10240);
	CHECK(config_parse_size("1T", &v) == 0 && v == 1ULL << 40);
	CHECK(config_parse_size("123", &v) == 0 && v == 123);
	CHECK(config_parse_size("9223372036854775807", &v) == 0 && v == INT64_MAX);
	CHECK(config_parse_size("9223372036854775808", &v) < 0);
	CHECK(config_parse_size("99999999999T", &v) < 0);
	CHECK(config_parse_size("", &v) < 0);
	CHECK(config_parse_size("M", &v) < 0);
	CHECK(config_parse_size("-1", &v) < 0);
	CHECK(config_parse_size("1MM", &v) < 0);
	CHECK(config_parse_size("1 M", &v) < 0);
	CHECK(config_parse_size(NULL, &v) < 0);
}

static char *make_tmpdir(void)
{
	char tmpl[] = "/tmp/tern-test-config.XXXXXX";
	char *dir = mkdtemp(tmpl);
	return dir != NULL ? xstrdup(dir) : NULL;
}

static void test_template_roundtrip(void)
{
	char *dir = make_tmpdir();
	CHECK(dir != NULL);
	if (dir == NULL)
		return;
	char *path = xasprintf("%s/tern.conf", dir);
	const char *bind[] = { "127.0.0.1", "::1" };
	const char *error = NULL;

	CHECK(config_write_template_user(path, "mail.test", "svc", bind, 2, 10000, &error) == 0);
	/* never overwrites */
	CHECK(config_write_template(path, "mail.test", bind, 2, 0, &error) < 0);
	CHECK(error != NULL && strstr(error, "exists") != NULL);

	char *err = NULL;
	struct config *cfg = config_load(path, &err);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_STR(cfg->hostname, "mail.test");
		CHECK_STR(cfg->user, "svc");
		CHECK_STR(cfg->path, path);
		CHECK(cfg->bind_count == 2);
		CHECK_STR(cfg->bind[0], "127.0.0.1");
		CHECK_STR(cfg->bind[1], "::1");
		for (int i = 0; i < LISTENER_KIND_COUNT; i++)
			CHECK(cfg->port[i] == listener_kind_default_port(i) + 10000);
		/* relative paths against the realpath of the file's directory */
		char *real = realpath(dir, NULL);
		char *want = xasprintf("%s/data", real);
		CHECK_STR(cfg->data_dir, want);
		free(want);
		want = xasprintf("%s/tls/key.pem", real);
		CHECK_STR(cfg->tls_key, want);
		free(want);
		CHECK_STR(cfg->dir, real);
		free(real);
		/* the template states every default */
		CHECK(cfg->limits.message_size == 52428800);
		CHECK(cfg->commit_batch == 256);
		CHECK_STR(cfg->store_fsync, "syncfs");
	} else {
		fprintf(stderr, "  error: %s\n", err);
	}
	free(err);
	config_free(&cfg);
	unlink(path);

	/* no binds: the default pair; offset 0 */
	CHECK(config_write_template(path, "mail.test", NULL, 0, 0, &error) == 0);
	cfg = config_load(path, &err);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_STR(cfg->user, "tern");
		CHECK(cfg->bind_count == 2);
		CHECK_STR(cfg->bind[0], "0.0.0.0");
		CHECK_STR(cfg->bind[1], "::");
		CHECK(cfg->port[LISTENER_SMTP] == 25);
		CHECK(cfg->port[LISTENER_HTTPS] == 443);
	}
	config_free(&cfg);
	unlink(path);

	/* bad arguments */
	CHECK(config_write_template(path, "bad host", NULL, 0, 0, &error) < 0);
	const char *badbind[] = { "not-an-ip" };
	CHECK(config_write_template(path, "h", badbind, 1, 0, &error) < 0);
	CHECK(config_write_template(path, "h", NULL, 0, 70000, &error) < 0);
	CHECK(config_write_template_user(path, "h", "bad user", NULL, 0, 0, &error) < 0);
	/* path NULL only checks the arguments */
	CHECK(config_write_template_user(NULL, "mail.test", "svc", bind, 2, 5, &error) == 0);
	CHECK(config_write_template_user(NULL, "mail.test", "a;b", NULL, 0, 0, &error) < 0);
	CHECK(access(path, F_OK) < 0);

	/* a file in a subdirectory given by a relative path with a symlink */
	char *sub = xasprintf("%s/sub", dir);
	char *link = xasprintf("%s/link", dir);
	CHECK(mkdir(sub, 0755) == 0);
	CHECK(symlink(sub, link) == 0);
	char *conf = xasprintf("%s/link/t.conf", dir);
	FILE *f = fopen(conf, "w");
	CHECK(f != NULL);
	if (f != NULL) {
		fputs("hostname = \"h\";\ndata_dir = \"./d\";\ntls = { cert = \"../c.pem\"; };\n", f);
		fclose(f);
	}
	cfg = config_load(conf, &err);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		char *real = realpath(sub, NULL);
		char *want = xasprintf("%s/d", real);
		CHECK_STR(cfg->data_dir, want);
		free(want);
		want = xasprintf("%s/../c.pem", real);
		CHECK_STR(cfg->tls_cert, want);
		free(want);
		free(real);
	}
	config_free(&cfg);

	/* errors in a file name the file as given */
	f = fopen(conf, "w");
	if (f != NULL) {
		fputs("hostname = \"h\";\nlimits = { nope = 1; };\n", f);
		fclose(f);
	}
	cfg = config_load(conf, &err);
	CHECK(cfg == NULL);
	char *want = xasprintf("%s:2: unknown setting 'nope' in group 'limits'", conf);
	CHECK_STR(err, want);
	free(want);
	free(err);
	err = NULL;

	/* an error in an @include'd file names that file, with its full path */
	char *inc = xasprintf("%s/link/limits.conf", dir);
	f = fopen(inc, "w");
	if (f != NULL) {
		fputs("limits = {\n  timeout = 5;\n  bogus = 1;\n};\n", f);
		fclose(f);
	}
	f = fopen(conf, "w");
	if (f != NULL) {
		fputs("hostname = \"h\";\n@include \"limits.conf\"\n", f);
		fclose(f);
	}
	cfg = config_load(conf, &err);
	CHECK(cfg == NULL);
	char *real = realpath(sub, NULL);
	want = xasprintf("%s/limits.conf:3: unknown setting 'bogus' in group 'limits'", real);
	CHECK_STR(err, want);
	free(want);
	free(real);
	free(err);
	err = NULL;
	unlink(inc);
	free(inc);

	/* a missing file */
	unlink(conf);
	cfg = config_load(conf, &err);
	CHECK(cfg == NULL);
	CHECK(err != NULL && strstr(err, "cannot open") != NULL);
	free(err);

	unlink(link);
	rmdir(sub);
	rmdir(dir);
	free(conf);
	free(link);
	free(sub);
	free(path);
	free(dir);
}

/* The pop3 group: defaults, values, range and unknown keys. */
static void test_pop3_group(void)
{
	char *error = NULL;
	struct config *cfg = parse("hostname = \"mx.example.org\";\n", &error);

	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK(cfg->pop3.expire_days == 0);
		CHECK(!cfg->pop3.delete_to_trash);
		CHECK(!cfg->pop3.plaintext_auth_loopback);
		config_free(&cfg);
	}
	cfg = parse("hostname = \"mx.example.org\";\n"
		    "pop3 = { expire_days = 30; delete_to_trash = true;\n"
		    "  plaintext_auth_loopback = true; };\n", &error);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK(cfg->pop3.expire_days == 30);
		CHECK(cfg->pop3.delete_to_trash);
		CHECK(cfg->pop3.plaintext_auth_loopback);
		CHECK(!cfg->plaintext_auth_loopback);   /* the SMTP setting is separate */
		config_free(&cfg);
	}
	cfg = parse("hostname = \"mx.example.org\";\npop3 = { expire_days = -1; };\n", &error);
	CHECK(cfg == NULL && error != NULL && strstr(error, ":2:") != NULL);
	free(error);
	error = NULL;
	cfg = parse("hostname = \"mx.example.org\";\npop3 = { expire = 3; };\n", &error);
	CHECK(cfg == NULL && error != NULL && strstr(error, "expire") != NULL);
	free(error);
}

/* The imap group: default off, settable, unknown keys refused. */
static void test_imap_group(void)
{
	char *error = NULL;
	struct config *cfg = parse("hostname = \"mx.example.org\";\n", &error);

	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK(!cfg->imap.plaintext_auth_loopback);
		CHECK(cfg->imap.connections_per_user == 10);   /* Dovecot's default */
		config_free(&cfg);
	}
	cfg = parse("hostname = \"mx.example.org\";\n"
		    "imap = { plaintext_auth_loopback = true; connections_per_user = 0; };\n",
		    &error);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK(cfg->imap.plaintext_auth_loopback);
		CHECK(!cfg->pop3.plaintext_auth_loopback);
		CHECK(cfg->imap.connections_per_user == 0);
		config_free(&cfg);
	}
	cfg = parse("hostname = \"mx.example.org\";\nimap = { connections_per_user = 50; };\n",
		    &error);
	CHECK(cfg != NULL && cfg->imap.connections_per_user == 50);
	if (cfg != NULL)
		config_free(&cfg);
	cfg = parse("hostname = \"mx.example.org\";\nimap = { connections_per_user = -1; };\n",
		    &error);
	CHECK(cfg == NULL && error != NULL && strstr(error, ":2:") != NULL);
	free(error);
	error = NULL;
	cfg = parse("hostname = \"mx.example.org\";\n"
		    "imap = { connections_per_user = \"10\"; };\n", &error);
	CHECK(cfg == NULL && error != NULL && strstr(error, "connections_per_user") != NULL);
	free(error);
	error = NULL;
	cfg = parse("hostname = \"mx.example.org\";\nimap = { loopback = true; };\n", &error);
	CHECK(cfg == NULL && error != NULL && strstr(error, "loopback") != NULL);
	free(error);
}

/* srs group: defaults, domain check, secrets file load/create */
static void test_srs_group(void)
{
	char *error = NULL, **secrets = NULL;
	char dir[] = "/tmp/tern-srs-XXXXXX";
	struct config *cfg = parse("hostname = \"mx.example.com\";", &error);

	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	CHECK(cfg->srs.secrets_file == NULL && cfg->srs.domain == NULL);
	CHECK(cfg->srs.max_age == 21);
	CHECK(config_srs_secrets_load(cfg, &secrets, &error) == 0 && secrets == NULL);
	config_free(&cfg);
	expect_error("hostname = \"h.example\"; srs = { domain = \"bad domain\"; };",
		     "/tmp/t.conf:1: srs.domain");
	expect_error("hostname = \"h.example\"; srs = { max_age = 0; };", "/tmp/t.conf:1:");
	expect_error("hostname = \"h.example\"; srs = { secret = \"x\"; };", "/tmp/t.conf:1:");

	CHECK(mkdtemp(dir) != NULL);
	char *conf = xasprintf("%s/tern.conf", dir), *file = xasprintf("%s/srs.secret", dir);
	FILE *f = fopen(conf, "w");
	CHECK(f != NULL);
	if (f == NULL)
		goto out;
	fputs("hostname = \"h.example\";\nsrs = { secrets_file = \"srs.secret\"; "
	      "domain = \"Fwd.Example\"; max_age = 5; };\n", f);
	fclose(f);
	cfg = config_load(conf, &error);
	CHECK(cfg != NULL);
	if (cfg == NULL)
		goto out;
	CHECK_STR(cfg->srs.secrets_file, file);
	CHECK_STR(cfg->srs.domain, "fwd.example");
	CHECK(cfg->srs.max_age == 5);
	/* missing file: an error naming it */
	CHECK(config_srs_secrets_load(cfg, &secrets, &error) == -1);
	CHECK(error != NULL && strstr(error, "srs.secret") != NULL);
	free(error);
	error = NULL;
	/* created: 64 hex digits, 0600, never overwritten */
	CHECK(config_srs_secret_create(file, &error) == 0);
	CHECK(config_srs_secret_create(file, &error) == -1);
	free(error);
	error = NULL;
	struct stat st;
	CHECK(stat(file, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(config_srs_secrets_load(cfg, &secrets, &error) == 1);
	CHECK(secrets != NULL && strlen(secrets[0]) == 64 && secrets[1] == NULL);
	config_srs_secrets_free(&secrets);
	CHECK(secrets == NULL);
	/* comments and blank lines skipped, order kept, CRLF trimmed */
	f = fopen(file, "w");
	if (f != NULL) {
		fputs("# rotated\n\nnew-one\r\nold-one  \n", f);
		fclose(f);
	}
	CHECK(config_srs_secrets_load(cfg, &secrets, &error) == 2);
	if (secrets != NULL) {
		CHECK_STR(secrets[0], "new-one");
		CHECK_STR(secrets[1], "old-one");
	}
	config_srs_secrets_free(&secrets);
	/* only comments: no secret */
	f = fopen(file, "w");
	if (f != NULL) {
		fputs("# nothing\n", f);
		fclose(f);
	}
	CHECK(config_srs_secrets_load(cfg, &secrets, &error) == -1 && secrets == NULL);
	free(error);
	error = NULL;
	config_free(&cfg);
out:
	unlink(file);
	unlink(conf);
	rmdir(dir);
	free(file);
	free(conf);
}

/* mailauth.dmarc, dmarc_enforce and dmarc_overrides (docs/dmarc.md) */
static void test_dmarc_settings(void)
{
	char *error = NULL;
	struct config *cfg = parse("hostname = \"a\";\n", &error);

	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK(cfg->mailauth.dmarc && cfg->mailauth.dmarc_enforce);
		CHECK(cfg->mailauth.dmarc_override_count == 0);
	}
	config_free(&cfg);
	cfg = parse("hostname = \"a\";\nmailauth = {\n dmarc = false;\n dmarc_enforce = false;\n"
		    " dmarc_overrides = (\n  { domain = \"Example.ORG.\"; action = \"none\"; },\n"
		    "  { action = \"reject\"; domain = \"b.example\"; },\n"
		    "  { domain = \"c.example\"; action = \"quarantine\"; }\n );\n};\n", &error);
	CHECK(cfg != NULL);
	if (cfg == NULL) {
		fprintf(stderr, "  error: %s\n", error);
		free(error);
		return;
	}
	CHECK(!cfg->mailauth.dmarc && !cfg->mailauth.dmarc_enforce);
	CHECK(cfg->mailauth.dmarc_override_count == 3);
	CHECK_STR(cfg->mailauth.dmarc_override[0].domain, "example.org");
	CHECK(cfg->mailauth.dmarc_override[0].action == CONFIG_DMARC_NONE);
	CHECK_STR(cfg->mailauth.dmarc_override[1].domain, "b.example");
	CHECK(cfg->mailauth.dmarc_override[1].action == CONFIG_DMARC_REJECT);
	CHECK(cfg->mailauth.dmarc_override[2].action == CONFIG_DMARC_QUARANTINE);
	config_free(&cfg);
	cfg = parse("hostname = \"a\";\nmailauth = { dmarc_overrides = (); };\n", &error);
	CHECK(cfg != NULL && cfg->mailauth.dmarc_override_count == 0);
	config_free(&cfg);

	expect_error("hostname = \"a\";\nmailauth = {\n dmarc_overrides = \"x\";\n};\n",
		     "/tmp/t.conf:3: mailauth.dmarc_overrides must be a list of groups");
	expect_error("hostname = \"a\";\nmailauth = {\n dmarc_overrides = ( \"x\" );\n};\n",
		     "/tmp/t.conf:3: mailauth.dmarc_overrides entries must be groups");
	expect_error("hostname = \"a\";\nmailauth = { dmarc_overrides = (\n"
		     " { domain = \"a.example\"; action = \"drop\"; } ); };\n",
		     "/tmp/t.conf:3: mailauth.dmarc_overrides action \"drop\" is not one of");
	expect_error("hostname = \"a\";\nmailauth = { dmarc_overrides = (\n"
		     " { domain = \"a b\"; action = \"none\"; } ); };\n",
		     "/tmp/t.conf:3: mailauth.dmarc_overrides domain \"a b\" is not a domain");
	expect_error("hostname = \"a\";\nmailauth = { dmarc_overrides = (\n"
		     " { domain = \"com\"; action = \"none\"; } ); };\n",
		     "/tmp/t.conf:3: mailauth.dmarc_overrides domain \"com\" is not a domain");
	expect_error("hostname = \"a\";\nmailauth = { dmarc_overrides = (\n"
		     " { domain = \"a.example\"; } ); };\n",
		     "/tmp/t.conf:3: a mailauth.dmarc_overrides entry needs domain");
	expect_error("hostname = \"a\";\nmailauth = { dmarc_overrides = (\n"
		     " { domain = \"a.example\"; action = \"none\"; mode = 1; } ); };\n",
		     "/tmp/t.conf:3: unknown setting 'mode' in a mailauth.dmarc_overrides entry");
	expect_error("hostname = \"a\";\nmailauth = { dmarc_overrides = (\n"
		     " { domain = 5; action = \"none\"; } ); };\n",
		     "/tmp/t.conf:3: domain must be a string");
	expect_error("hostname = \"a\";\nmailauth = { dmarc_overrides = (\n"
		     " { domain = \"a.example\"; action = \"none\"; },\n"
		     " { domain = \"A.example.\"; action = \"reject\"; } ); };\n",
		     "/tmp/t.conf:4: mailauth.dmarc_overrides lists \"a.example\" twice");
	expect_error("hostname = \"a\";\nmailauth = { dmarc_enforce = 1; };\n",
		     "/tmp/t.conf:2: mailauth.dmarc_enforce must be true or false");
}

/* mailauth.arc and arc_trusted_sealers (docs/arc.md) */
static void test_arc_settings(void)
{
	char *error = NULL;
	struct config *cfg = parse("hostname = \"a\";\n", &error);

	CHECK(cfg != NULL);
	if (cfg != NULL)
		CHECK(cfg->mailauth.arc && cfg->mailauth.arc_trusted_sealer_count == 0);
	config_free(&cfg);
	cfg = parse("hostname = \"a\";\nmailauth = {\n arc = false;\n"
		    " arc_trusted_sealers = [ \"Lists.Example.ORG.\", \"fwd.example.net\" ];\n};\n",
		    &error);
	CHECK(cfg != NULL);
	if (cfg == NULL) {
		fprintf(stderr, "  error: %s\n", error);
		free(error);
		return;
	}
	CHECK(!cfg->mailauth.arc);
	CHECK(cfg->mailauth.arc_trusted_sealer_count == 2);
	CHECK_STR(cfg->mailauth.arc_trusted_sealer[0], "lists.example.org");
	CHECK_STR(cfg->mailauth.arc_trusted_sealer[1], "fwd.example.net");
	config_free(&cfg);
	expect_error("hostname = \"a\";\nmailauth = {\n arc_trusted_sealers = [ \"a b\" ];\n};\n",
		     "/tmp/t.conf:3: mailauth.arc_trusted_sealers: \"a b\" is not a domain name");
	expect_error("hostname = \"a\";\nmailauth = {\n arc_trusted_sealers = [ \"com\" ];\n};\n",
		     "/tmp/t.conf:3: mailauth.arc_trusted_sealers: \"com\" is not a domain name");
	expect_error("hostname = \"a\";\nmailauth = {\n arc_trusted_sealers = 5;\n};\n",
		     "/tmp/t.conf:3: mailauth.arc_trusted_sealers must be a list of strings");
}

int main(void)
{
	RUN(test_defaults);
	RUN(test_names);
	RUN(test_every_group);
	RUN(test_errors);
	RUN(test_sizes);
	RUN(test_template_roundtrip);
	RUN(test_imap_group);
	RUN(test_pop3_group);
	RUN(test_srs_group);
	RUN(test_dmarc_settings);
	RUN(test_arc_settings);
	return unit_summary("config");
}
