/* `tern user add|passwd|list|quota|remove|import-dovecot`: mail accounts.
 *
 * A new password is stored twice: as a yescrypt hash (PLAIN and LOGIN) and
 * as SCRAM-SHA-256 keys (RFC 7677), both from auth/.  Users imported from a
 * Dovecot passwd-file keep their hash as is and have no SCRAM keys until
 * their password is next set.  Passwords never come from the command line. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "cli/cli.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "store/store.h"

#define IMPORT_MAX_LINE (64 * 1024)

/* Hash and SCRAM keys for a password read from stdin or the terminal. */
static int new_credentials(char **hash_r, char **scram_r)
{
	const char *error;
	char *pw = cli_read_password();

	*hash_r = *scram_r = NULL;
	if (pw == NULL)
		return -1;
	if (auth_password_hash(pw, hash_r, &error) < 0) {
		cli_password_free(&pw);
		return cli_error("hashing the password: %s", error), -1;
	}
	if (auth_scram_make(pw, AUTH_SCRAM_ITERATIONS, scram_r, &error) < 0) {
		cli_password_free(&pw);
		free(*hash_r);
		*hash_r = NULL;
		return cli_error("making SCRAM keys: %s", error), -1;
	}
	cli_password_free(&pw);
	return 0;
}

static int user_add(struct config *cfg, const char *address, int64_t quota)
{
	struct store *store;
	const char *error;
	char *hash, *scram;
	char size[32];
	int ret = CLI_OK;

	if (cli_store_open(cfg, false, &store) < 0)
		return CLI_FAIL;
	/* say "exists" before asking for a password that would be thrown away */
	struct store_user u = { 0 };
	int found = store_user_get(store, address, &u, &error);
	store_user_clear(&u);
	if (found != 0) {
		store_close(&store);
		return found < 0 ? cli_error("%s: %s", address, error)
			: cli_error("user %s already exists", address);
	}
	if (new_credentials(&hash, &scram) < 0) {
		store_close(&store);
		return CLI_FAIL;
	}
	if (store_user_add(store, address, hash, scram, quota, &error) < 0)
		ret = cli_error("user add %s: %s", address, error);
	else if (quota > 0)
		printf("added user %s (quota %s)\n", address, cli_format_size(quota, size, sizeof(size)));
	else
		printf("added user %s\n", address);
	free(hash);
	free(scram);
	store_close(&store);
	return ret;
}

static int user_passwd(struct config *cfg, const char *address)
{
	struct store *store;
	const char *error;
	char *hash, *scram;
	int ret = CLI_OK;

	if (cli_store_open(cfg, false, &store) < 0)
		return CLI_FAIL;
	struct store_user u = { 0 };
	int found = store_user_get(store, address, &u, &error);
	store_user_clear(&u);
	if (found <= 0) {
		store_close(&store);
		return found < 0 ? cli_error("%s: %s", address, error)
			: cli_error("no user %s", address);
	}
	if (new_credentials(&hash, &scram) < 0) {
		store_close(&store);
		return CLI_FAIL;
	}
	if (store_user_set_password(store, address, hash, scram, &error) < 0)
		ret = cli_error("user passwd %s: %s", address, error);
	else
		printf("password changed for %s\n", address);
	free(hash);
	free(scram);
	store_close(&store);
	return ret;
}

static int print_user(void *ctx, const struct store_user *u)
{
	unsigned *count = ctx;
	char used[32], quota[32];

	printf("%-40s used=%s messages=%lld quota=%s", u->address,
	       cli_format_size(u->used_bytes, used, sizeof(used)), (long long)u->used_messages,
	       u->quota_bytes > 0 ? cli_format_size(u->quota_bytes, quota, sizeof(quota))
	       : "unlimited");
	if (u->quota_messages > 0)
		printf(" max_messages=%lld", (long long)u->quota_messages);
	printf("%s\n", u->scram_sha256 == NULL ? " (no SCRAM keys)" : "");
	(*count)++;
	return 0;
}

static int user_list(struct config *cfg, const char *domain_arg)
{
	struct store *store;
	const char *error;
	char *domain = NULL;
	unsigned count = 0;

	if (domain_arg != NULL) {
		domain = cli_domain_normalize(domain_arg, &error);
		if (domain == NULL)
			return cli_error("%s: %s", domain_arg, error);
	}
	if (cli_store_open(cfg, false, &store) < 0) {
		free(domain);
		return CLI_FAIL;
	}
	int ret = store_user_list(store, domain, print_user, &count, &error);
	store_close(&store);
	free(domain);
	if (ret < 0)
		return cli_error("listing users: %s", error);
	if (count == 0)
		fprintf(stderr, "no users\n");
	return CLI_OK;
}

/* messages < 0: leave the message-count limit as it is. */
static int user_quota(struct config *cfg, const char *address, int64_t quota, int64_t messages)
{
	struct store *store;
	const char *error;
	char size[32];
	int ret = CLI_OK;

	if (cli_store_open(cfg, false, &store) < 0)
		return CLI_FAIL;
	if (store_user_set_quota(store, address, quota, &error) < 0)
		ret = cli_error("user quota %s: %s", address, error);
	else if (messages >= 0 && store_user_set_quota_messages(store, address, messages, &error) < 0)
		ret = cli_error("user quota %s: %s", address, error);
	else if (quota > 0)
		printf("quota of %s set to %s\n", address, cli_format_size(quota, size, sizeof(size)));
	else
		printf("quota of %s set to unlimited\n", address);
	if (ret == CLI_OK && messages > 0)
		printf("message limit of %s set to %lld\n", address, (long long)messages);
	else if (ret == CLI_OK && messages == 0)
		printf("message limit of %s set to unlimited\n", address);
	store_close(&store);
	return ret;
}

static int user_remove(struct config *cfg, const char *address)
{
	struct store *store;
	const char *error;
	int ret = CLI_OK;

	if (cli_store_open(cfg, false, &store) < 0)
		return CLI_FAIL;
	if (store_user_remove(store, address, &error) < 0)
		ret = cli_error("user remove %s: %s", address, error);
	else
		printf("removed user %s and their mail\n", address);
	store_close(&store);
	return ret;
}

/* One line of a Dovecot passwd-file: 1 imported, 0 skipped (reason
 * printed), -1 on a store error that stops the import. */
static int import_line(struct store *store, const char *file, unsigned lineno,
		       const char *line, const char *default_domain, bool domain_create)
{
	char *user = NULL, *hash = NULL, *address = NULL;
	int64_t quota = 0;
	const char *error;
	int ret = 0;

	int r = auth_dovecot_passwd_line(line, &user, &hash, &quota, &error);
	if (r == 0)
		return 2;   /* blank or comment */
	if (r < 0) {
		fprintf(stderr, "%s:%u: skipped: %s\n", file, lineno, error);
		return 0;
	}
	if (strchr(user, '@') == NULL && default_domain != NULL) {
		char *full = xasprintf("%s@%s", user, default_domain);
		free(user);
		user = full;
	}
	address = cli_address_normalize(user, &error);
	if (address == NULL) {
		fprintf(stderr, "%s:%u: skipped %s: %s%s\n", file, lineno, user, error,
			strchr(user, '@') == NULL ? " (user names need @domain, or give --domain)" : "");
		goto out;
	}
	const char *domain = strrchr(address, '@') + 1;
	struct store_domain d = { 0 };
	r = store_domain_get(store, domain, &d, &error);
	store_domain_clear(&d);
	if (r < 0) {
		fprintf(stderr, "%s:%u: %s: %s\n", file, lineno, address, error);
		ret = -1;
		goto out;
	}
	if (r == 0 && !domain_create) {
		fprintf(stderr, "%s:%u: skipped %s: domain %s does not exist "
			"(add it, or use --domain-create)\n", file, lineno, address, domain);
		goto out;
	}
	if (r == 0) {
		if (store_domain_add(store, domain, &error) < 0) {
			fprintf(stderr, "%s:%u: adding domain %s: %s\n", file, lineno, domain, error);
			ret = -1;
			goto out;
		}
		printf("added domain %s\n", domain);
	}
	struct store_user u = { 0 };
	r = store_user_get(store, address, &u, &error);
	store_user_clear(&u);
	if (r != 0) {
		fprintf(stderr, "%s:%u: skipped %s: %s\n", file, lineno, address,
			r > 0 ? "user already exists" : error);
		goto out;
	}
	if (store_user_add(store, address, hash, NULL, quota, &error) < 0) {
		fprintf(stderr, "%s:%u: skipped %s: %s\n", file, lineno, address, error);
		goto out;
	}
	ret = 1;
out:
	free(user);
	if (hash != NULL) {
		explicit_bzero(hash, strlen(hash));
		free(hash);
	}
	free(address);
	return ret;
}

static int user_import_dovecot(struct config *cfg, const char *file,
			       const char *default_domain, bool domain_create)
{
	struct store *store;
	unsigned imported = 0, skipped = 0, lineno = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int ret = CLI_OK;
	FILE *f;

	/* open the file before dropping privileges: root may read it */
	f = fopen(file, "r");
	if (f == NULL)
		return cli_error("%s: %s", file, strerror(errno));
	if (cli_store_open(cfg, false, &store) < 0) {
		fclose(f);
		return CLI_FAIL;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if ((size_t)len != strlen(line) || len > IMPORT_MAX_LINE) {
			fprintf(stderr, "%s:%u: skipped: %s\n", file, lineno,
				len > IMPORT_MAX_LINE ? "line too long" : "NUL byte in line");
			skipped++;
			continue;
		}
		int r = import_line(store, file, lineno, line, default_domain, domain_create);
		if (r < 0) {
			ret = CLI_FAIL;
			break;
		}
		if (r == 1)
			imported++;
		else if (r == 0)
			skipped++;
	}
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	if (ferror(f))
		ret = cli_error("reading %s: %s", file, strerror(errno));
	fclose(f);
	store_close(&store);
	printf("imported %u user%s, skipped %u\n", imported, imported == 1 ? "" : "s", skipped);
	return ret != CLI_OK || skipped > 0 ? CLI_FAIL : CLI_OK;
}

int cli_user(struct config *cfg, int argc, char **argv)
{
	const char *action = argv[1], *error;
	const char *args[2] = { NULL, NULL };
	const char *quota_arg = NULL, *domain_arg = NULL;
	bool domain_create = false;
	unsigned nargs = 0;
	int64_t quota = 0, messages = -1;
	int ret;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--messages") == 0 && strcmp(action, "quota") == 0) {
			char *end;
			if (++i >= argc)
				return cli_usage_error("--messages needs a count (0 = unlimited)");
			errno = 0;
			messages = strtoll(argv[i], &end, 10);
			if (errno != 0 || end == argv[i] || *end != '\0' || messages < 0)
				return cli_usage_error("bad message count '%s'", argv[i]);
			continue;
		}
		if (strcmp(argv[i], "--quota") == 0 && strcmp(action, "add") == 0) {
			if (++i >= argc)
				return cli_usage_error("--quota needs a size (500M, 2G, 0 = unlimited)");
			quota_arg = argv[i];
		} else if (strncmp(argv[i], "--quota=", 8) == 0 && strcmp(action, "add") == 0) {
			quota_arg = argv[i] + 8;
		} else if (strcmp(argv[i], "--domain-create") == 0 &&
			   strcmp(action, "import-dovecot") == 0) {
			domain_create = true;
		} else if (strcmp(argv[i], "--domain") == 0 &&
			   strcmp(action, "import-dovecot") == 0) {
			if (++i >= argc)
				return cli_usage_error("--domain needs a domain name");
			domain_arg = argv[i];
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return cli_usage_error("unknown option '%s'", argv[i]);
		} else if (nargs < 2) {
			args[nargs++] = argv[i];
		} else {
			return cli_usage_error("unexpected argument '%s'", argv[i]);
		}
	}

	if (strcmp(action, "list") == 0) {
		if (nargs > 1)
			return cli_usage_error("usage: tern user list [DOMAIN]");
		return user_list(cfg, args[0]);
	}
	if (strcmp(action, "import-dovecot") == 0) {
		if (nargs != 1)
			return cli_usage_error("usage: tern user import-dovecot FILE [--domain DOMAIN] "
					       "[--domain-create]");
		char *domain = NULL;
		if (domain_arg != NULL && (domain = cli_domain_normalize(domain_arg, &error)) == NULL)
			return cli_error("%s: %s", domain_arg, error);
		ret = user_import_dovecot(cfg, args[0], domain, domain_create);
		free(domain);
		return ret;
	}
	bool is_quota = strcmp(action, "quota") == 0;
	if (strcmp(action, "add") != 0 && strcmp(action, "passwd") != 0 && !is_quota &&
	    strcmp(action, "remove") != 0)
		return cli_usage_error("unknown action 'user %s'", action);
	if (nargs != (is_quota ? 2u : 1u))
		return cli_usage_error("usage: tern user %s ADDRESS%s", action,
				       is_quota ? " SIZE [--messages N]" : strcmp(action, "add") == 0 ?
				       " [--quota SIZE]" : "");
	if (is_quota)
		quota_arg = args[1];
	if (quota_arg != NULL && cli_parse_size(quota_arg, &quota) < 0)
		return cli_usage_error("bad size '%s' (expected bytes, or a number with K, M, G or T "
				       "like 500M; 0 = unlimited)", quota_arg);

	char *address = cli_address_normalize(args[0], &error);
	if (address == NULL)
		return cli_error("%s: %s", args[0], error);
	if (strcmp(action, "add") == 0)
		ret = user_add(cfg, address, quota);
	else if (strcmp(action, "passwd") == 0)
		ret = user_passwd(cfg, address);
	else if (is_quota)
		ret = user_quota(cfg, address, quota, messages);
	else
		ret = user_remove(cfg, address);
	free(address);
	return ret;
}
