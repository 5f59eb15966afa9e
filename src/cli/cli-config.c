/* `tern config check`: load the config file and report the first error
 * with its file:line, or "config OK: FILE". */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/config.h"

int cli_config(const char *config_path, int argc, char **argv)
{
	struct config *cfg;
	char *error;

	if (argc != 2 || strcmp(argv[1], "check") != 0)
		return cli_usage_error("usage: tern config check");
	cfg = config_load(config_path, &error);
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", error);
		free(error);
		return CLI_FAIL;
	}
	printf("config OK: %s\n", config_path);
	config_free(&cfg);
	return CLI_OK;
}
