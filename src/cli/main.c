/* main() of the `tern` command: global options, then one subcommand.
 *
 *   tern [-c FILE] COMMAND ...
 *
 * The config file is $TERN_CONF, else /etc/tern/tern.conf, unless -c
 * names another.  Every command but init and help loads it first, and a
 * config error stops the command with the file:line message (exit 1).
 * Usage errors exit 2. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/serve.h"
#include "lib/config.h"
#include "lib/log.h"

void cli_usage(FILE *f)
{
	fputs(
"usage: tern [-c FILE] COMMAND [ARGS]\n"
"\n"
"  -c FILE      config file (default: $TERN_CONF, else /etc/tern/tern.conf)\n"
"\n"
"Setup and server:\n"
"  tern init DIR [--hostname NAME] [--bind ADDR]... [--port-offset N] [--user NAME]\n"
"                               make DIR/tern.conf, DIR/data, a self-signed certificate\n"
"  tern config check            validate the config file\n"
"  tern serve                   run the server\n"
"\n"
"Domains:\n"
"  tern domain add NAME\n"
"  tern domain list\n"
"  tern domain remove NAME [--force]      --force also removes its users and mail\n"
"  tern domain policy NAME own|domain|any sender addresses its users may use\n"
"\n"
"Users (the password is read from stdin, or prompted for):\n"
"  tern user add ADDRESS [--quota SIZE]   SIZE like 500M, 2G; 0 = unlimited\n"
"  tern user passwd ADDRESS\n"
"  tern user list [DOMAIN]\n"
"  tern user quota ADDRESS SIZE [--messages N]\n"
"  tern user remove ADDRESS               also removes the user's mail\n"
"  tern user import-dovecot FILE [--domain DOMAIN] [--domain-create]\n"
"                                         DOMAIN completes names without @domain\n"
"\n"
"Aliases (\"@domain\" is the catch-all of domain):\n"
"  tern alias add ALIAS TARGET...\n"
"  tern alias list [ALIAS]\n"
"  tern alias remove ALIAS [TARGET...]\n"
"\n"
"Storage:\n"
"  tern store verify            check the index against the message files\n"
"\n"
"Outbound queue (AGE like 90s, 15m, 2h, 3d):\n"
"  tern queue list [--sender S] [--rcpt R] [--domain D] [--older-than AGE]\n"
"                  [--state queued|deferred|held] [--json]\n"
"  tern queue show ID [--json]  envelope, recipients and headers\n"
"  tern queue flush ID | --domain DOMAIN\n"
"  tern queue hold|release|delete|bounce ID\n"
"\n"
"Local submission (as the calling local user; also run as `sendmail` or `mailq`):\n"
"  tern sendmail [-t] [-i] [-f SENDER] [-F NAME] [-bm|-bp] [RECIPIENT...] < MESSAGE\n"
"  tern mailq                   the queue, as tern queue list\n"
"\n"
"DNS (through the configured resolver, with DNSSEC status):\n"
"  tern dns lookup MX|A|AAAA|ADDR|TLSA|TXT NAME [--port N]\n"
"                               TLSA looks up _N._tcp.NAME (N = 25)\n"
"  tern dns records DOMAIN [--json]   the records to publish, as zone-file lines\n"
"  tern dns check DOMAIN [--json]     what DNS says, per record OK or the fix\n"
"\n"
"TLS reporting (RFC 8460):\n"
"  tern tlsrpt list [--domain D] [--json]   outbound TLS results collected\n"
"  tern tlsrpt send [--now]     send the due reports now (--now: today's too)\n"
"\n"
"DMARC aggregate reports (docs/dmarc.md):\n"
"  tern dmarc send [--now]      send the due reports now (--now: today's too)\n"
"  tern dmarc import FILE|-     keep a received report (a mail, XML, gzip or zip)\n"
"  tern dmarc import --mailbox ADDRESS [--folder NAME]   every report in a folder\n"
"  tern dmarc summary DOMAIN [--days N] [--json]   per source, pass and fail counts\n"
"\n"
"DKIM signing keys (docs/dkim.md):\n"
"  tern dkim keygen DOMAIN [--selector S] [--algorithm rsa2048|ed25519]\n"
"                               new key(s) (default both); prints the DNS records\n"
"  tern dkim list [DOMAIN] [--json]\n"
"  tern dkim rotate DOMAIN      next selector(s), pending until visible in DNS\n"
"  tern dkim activate DOMAIN SELECTOR     switch to a pending key now\n", f);
}

static int run(const char *config_path, int argc, char **argv)
{
	const char *cmd = argv[0];
	struct config *cfg;
	char *error;
	int ret;

	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		cli_usage(stdout);
		return CLI_OK;
	}
	if (strcmp(cmd, "init") == 0)
		return cli_init(argc, argv);
	if (strcmp(cmd, "config") == 0)
		return cli_config(config_path, argc, argv);
	if (strcmp(cmd, "sendmail") == 0 || strcmp(cmd, "mailq") == 0)
		return cli_sendmail(config_path, argc, argv, strcmp(cmd, "mailq") == 0);

	int (*fn)(struct config *, int, char **);
	if (strcmp(cmd, "domain") == 0)
		fn = cli_domain;
	else if (strcmp(cmd, "user") == 0)
		fn = cli_user;
	else if (strcmp(cmd, "alias") == 0)
		fn = cli_alias;
	else if (strcmp(cmd, "store") == 0)
		fn = cli_store;
	else if (strcmp(cmd, "serve") == 0)
		fn = cli_serve;
	else if (strcmp(cmd, "dns") == 0)
		fn = cli_dns;
	else if (strcmp(cmd, "queue") == 0)
		fn = cli_queue;
	else if (strcmp(cmd, "tlsrpt") == 0)
		fn = cli_tlsrpt;
	else if (strcmp(cmd, "dkim") == 0)
		fn = cli_dkim;
	else if (strcmp(cmd, "dmarc") == 0)
		fn = cli_dmarc;
	else
		return cli_usage_error("unknown command '%s'", cmd);

	if (fn != cli_serve && argc < 2) {
		fprintf(stderr, "tern: '%s' needs an action\n\n", cmd);
		cli_usage(stderr);
		return CLI_USAGE;
	}
	cfg = config_load(config_path, &error);
	if (cfg == NULL) {
		cli_error("%s", error);
		free(error);
		return CLI_FAIL;
	}
	if (fn != cli_serve) {
		/* the CLI talks to the administrator, not to a log */
		log_set_level(LOG_LEVEL_WARN);
	}
	ret = fn(cfg, argc, argv);
	config_free(&cfg);
	return ret;
}

int main(int argc, char **argv)
{
	const char *config_path = NULL;
	const char *self = argc > 0 ? strrchr(argv[0], '/') : NULL;
	int i = 1;

	/* installed as /usr/sbin/sendmail or mailq: every argument is sendmail's */
	self = self != NULL ? self + 1 : argc > 0 ? argv[0] : "";
	if (strcmp(self, "sendmail") == 0 || strcmp(self, "mailq") == 0)
		return cli_sendmail(config_default_path(), argc, argv, strcmp(self, "mailq") == 0);

	while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
		const char *a = argv[i];
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc)
				return cli_usage_error("%s needs a file name", a);
			config_path = argv[i + 1];
			i += 2;
		} else if (strncmp(a, "--config=", 9) == 0) {
			config_path = a + 9;
			i++;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			cli_usage(stdout);
			return CLI_OK;
		} else {
			fprintf(stderr, "tern: unknown option '%s'\n\n", a);
			cli_usage(stderr);
			return CLI_USAGE;
		}
	}
	if (i >= argc) {
		cli_usage(stderr);
		return CLI_USAGE;
	}
	if (config_path == NULL)
		config_path = config_default_path();
	return run(config_path, argc - i, argv + i);
}
