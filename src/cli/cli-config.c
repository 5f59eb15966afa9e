/* `tern config check`: load the config file and report the first error
 * with its file:line, then load the TLS certificate and key the way the
 * server will (so a missing or mismatched key is found before a restart),
 * or print "config OK: FILE". */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/config.h"
#include "lib/tls.h"

int cli_config(const char *config_path, int argc, char **argv)
{
	struct config *cfg;
	const char *tls_error = NULL;
	char *error;
	SSL_CTX *ctx;

	if (argc != 2 || strcmp(argv[1], "check") != 0)
		return cli_usage_error("usage: tern config check");
	cfg = config_load(config_path, &error);
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", error);
		free(error);
		return CLI_FAIL;
	}
	ctx = tls_server_ctx_create(cfg->tls_cert, cfg->tls_key, &tls_error);
	if (ctx == NULL) {
		fprintf(stderr, "%s: tls: %s\n", config_path, tls_error);
		config_free(&cfg);
		return CLI_FAIL;
	}
	SSL_CTX_free(ctx);
	printf("config OK: %s\n", config_path);
	config_free(&cfg);
	return CLI_OK;
}
