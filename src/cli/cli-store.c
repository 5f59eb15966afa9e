/* `tern store verify`: check the message index against the files
 * (store_verify) and print each problem; exit 1 when there is any. */
#include <string.h>

#include "cli/cli.h"
#include "lib/config.h"
#include "store/store.h"

static void print_problem(void *ctx, const char *problem)
{
	(void)ctx;
	printf("%s\n", problem);
}

int cli_store(struct config *cfg, int argc, char **argv)
{
	struct store *store;
	const char *error;
	int n;

	if (argc != 2 || strcmp(argv[1], "verify") != 0)
		return cli_usage_error("usage: tern store verify");
	if (cli_store_open(cfg, false, &store) < 0)
		return CLI_FAIL;
	n = store_verify(store, print_problem, NULL, &error);
	store_close(&store);
	if (n < 0)
		return cli_error("store verify: %s", error);
	if (n > 0) {
		printf("store verify: %d problem%s in %s\n", n, n == 1 ? "" : "s", cfg->data_dir);
		return CLI_FAIL;
	}
	printf("store OK: %s\n", cfg->data_dir);
	return CLI_OK;
}
