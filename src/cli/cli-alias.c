/* `tern alias add|list|remove`: aliases map an address (or "@domain", the
 * catch-all of a domain) to one or more targets, local or remote.  The
 * store resolves them at RCPT time (store_rcpt_resolve). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "store/store.h"

static int print_alias(void *ctx, const struct store_alias *a)
{
	unsigned *count = ctx;
	printf("%s -> %s\n", a->alias, a->target);
	(*count)++;
	return 0;
}

static int alias_list(struct config *cfg, int argc, char **argv)
{
	struct store *store;
	const char *error;
	char *alias = NULL;
	unsigned count = 0;

	if (argc > 3)
		return cli_usage_error("usage: tern alias list [ALIAS]");
	if (argc == 3) {
		alias = cli_alias_normalize(argv[2], &error);
		if (alias == NULL)
			return cli_error("%s: %s", argv[2], error);
	}
	if (cli_store_open(cfg, false, &store) < 0) {
		free(alias);
		return CLI_FAIL;
	}
	int ret = store_alias_list(store, alias, print_alias, &count, &error);
	store_close(&store);
	if (ret < 0) {
		free(alias);
		return cli_error("listing aliases: %s", error);
	}
	if (count == 0 && alias != NULL) {
		cli_error("no alias %s", alias);
		free(alias);
		return CLI_FAIL;
	}
	free(alias);
	return CLI_OK;
}

int cli_alias(struct config *cfg, int argc, char **argv)
{
	const char *action = argv[1], *error;
	struct store *store;
	char **targets = NULL;
	char *alias;
	int ntargets = 0, ret = 0;
	bool add;

	if (strcmp(action, "list") == 0)
		return alias_list(cfg, argc, argv);
	if (strcmp(action, "add") == 0)
		add = true;
	else if (strcmp(action, "remove") == 0)
		add = false;
	else
		return cli_usage_error("unknown action 'alias %s'", action);
	if (argc < 3 || (add && argc < 4))
		return cli_usage_error("usage: tern alias %s ALIAS %s", action,
				       add ? "TARGET..." : "[TARGET...]");
	for (int i = 2; i < argc; i++) {
		if (argv[i][0] == '-')
			return cli_usage_error("unknown option '%s'", argv[i]);
	}

	alias = cli_alias_normalize(argv[2], &error);
	if (alias == NULL)
		return cli_error("%s: %s", argv[2], error);
	targets = xcalloc((size_t)argc, sizeof(*targets));
	for (int i = 3; i < argc; i++) {
		targets[ntargets] = cli_address_normalize(argv[i], &error);
		if (targets[ntargets] == NULL) {
			ret = cli_error("%s: %s", argv[i], error);
			goto out;
		}
		ntargets++;
	}
	if (cli_store_open(cfg, false, &store) < 0) {
		ret = CLI_FAIL;
		goto out;
	}
	if (!add && ntargets == 0) {
		if (store_alias_remove(store, alias, NULL, &error) < 0)
			ret = cli_error("alias remove %s: %s", alias, error);
		else
			printf("removed alias %s\n", alias);
	}
	for (int i = 0; i < ntargets && ret == 0; i++) {
		if (add && store_alias_add(store, alias, targets[i], &error) < 0)
			ret = cli_error("alias add %s %s: %s", alias, targets[i], error);
		else if (!add && store_alias_remove(store, alias, targets[i], &error) < 0)
			ret = cli_error("alias remove %s %s: %s", alias, targets[i], error);
		else
			printf("%s alias %s -> %s\n", add ? "added" : "removed", alias, targets[i]);
	}
	store_close(&store);
out:
	for (int i = 0; i < ntargets; i++)
		free(targets[i]);
	free(targets);
	free(alias);
	return ret;
}
