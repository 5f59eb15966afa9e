/* `tern domain add|list|remove|policy`: the local domains and their
 * sender policy (which From/MAIL FROM addresses their users may use). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/config.h"
#include "store/store.h"

static const char *const policy_names[] = {
	[STORE_SENDER_OWN] = "own",
	[STORE_SENDER_DOMAIN] = "domain",
	[STORE_SENDER_ANY] = "any",
};

static const char *policy_name(enum store_sender_policy p)
{
	return (unsigned)p < sizeof(policy_names) / sizeof(policy_names[0]) ? policy_names[p] : "?";
}

static int print_domain(void *ctx, const struct store_domain *d)
{
	unsigned *count = ctx;
	printf("%-40s sender-policy=%s\n", d->name, policy_name(d->sender_policy));
	(*count)++;
	return 0;
}

static int domain_list(struct config *cfg, int argc, char **argv)
{
	(void)argv;
	struct store *store;
	const char *error;
	unsigned count = 0;

	if (argc != 2)
		return cli_usage_error("usage: tern domain list");
	if (cli_store_open(cfg, false, &store) < 0)
		return CLI_FAIL;
	int ret = store_domain_list(store, print_domain, &count, &error);
	store_close(&store);
	if (ret < 0)
		return cli_error("listing domains: %s", error);
	if (count == 0)
		fprintf(stderr, "no domains yet (add one with `tern domain add NAME`)\n");
	return CLI_OK;
}

int cli_domain(struct config *cfg, int argc, char **argv)
{
	const char *action = argv[1], *error;
	struct store *store;
	bool force = false;
	const char *name = NULL, *policy = NULL;
	enum store_sender_policy pol = STORE_SENDER_OWN;
	int ret;

	if (strcmp(action, "list") == 0)
		return domain_list(cfg, argc, argv);
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0 && strcmp(action, "remove") == 0)
			force = true;
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
			return cli_usage_error("unknown option '%s'", argv[i]);
		else if (name == NULL)
			name = argv[i];
		else if (policy == NULL && strcmp(action, "policy") == 0)
			policy = argv[i];
		else
			return cli_usage_error("unexpected argument '%s'", argv[i]);
	}
	if (strcmp(action, "add") != 0 && strcmp(action, "remove") != 0 &&
	    strcmp(action, "policy") != 0)
		return cli_usage_error("unknown action 'domain %s'", action);
	if (name == NULL)
		return cli_usage_error("usage: tern domain %s NAME%s", action,
				       strcmp(action, "policy") == 0 ? " own|domain|any" : "");
	if (strcmp(action, "policy") == 0) {
		if (policy == NULL)
			return cli_usage_error("usage: tern domain policy NAME own|domain|any");
		if (strcmp(policy, "own") == 0)
			pol = STORE_SENDER_OWN;
		else if (strcmp(policy, "domain") == 0)
			pol = STORE_SENDER_DOMAIN;
		else if (strcmp(policy, "any") == 0)
			pol = STORE_SENDER_ANY;
		else
			return cli_usage_error("sender policy must be own, domain or any, not '%s'",
					       policy);
	}

	char *domain = cli_domain_normalize(name, &error);
	if (domain == NULL)
		return cli_error("%s: %s", name, error);
	if (cli_store_open(cfg, false, &store) < 0) {
		free(domain);
		return CLI_FAIL;
	}
	if (strcmp(action, "add") == 0) {
		ret = store_domain_add(store, domain, &error);
		if (ret == 0)
			printf("added domain %s\n", domain);
	} else if (strcmp(action, "remove") == 0) {
		ret = store_domain_remove(store, domain, force, &error);
		if (ret == 0)
			printf("removed domain %s%s\n", domain,
			       force ? " with its users, aliases and mail" : "");
	} else {
		ret = store_domain_set_sender_policy(store, domain, pol, &error);
		if (ret == 0)
			printf("domain %s: sender policy %s\n", domain, policy_name(pol));
	}
	if (ret < 0)
		cli_error("domain %s %s: %s", action, domain, error);
	store_close(&store);
	free(domain);
	return ret < 0 ? CLI_FAIL : CLI_OK;
}
