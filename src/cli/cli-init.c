/* `tern init DIR`: a new installation in one folder.
 *
 *   DIR/tern.conf      commented config (config_write_template_user)
 *   DIR/data/          the store's folder, owned by the service user
 *   DIR/srs.secret     random SRS secret for forwarding (0600, the service user's)
 *   DIR/tls/cert.pem   self-signed certificate for the hostname (0644)
 *   DIR/tls/key.pem    its private key (0600; root's when run as root,
 *                      since the master reads it before dropping privileges)
 *
 * Never overwrites: an existing tern.conf stops it, an existing
 * certificate or key is kept.  Run as root, it creates the service user
 * (default "tern") when missing; run as another user, the service user
 * defaults to that user, as the server then runs unprivileged anyway. */
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/privdrop.h"
#include "lib/tls-selfsigned.h"

/* gethostname(), made fully qualified through the resolver when it has no
 * dot (as `hostname -f` does).  malloc'd, or NULL. */
static char *default_hostname(void)
{
	char name[256];
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_flags = AI_CANONNAME }, *res;

	if (gethostname(name, sizeof(name)) < 0)
		return NULL;
	name[sizeof(name) - 1] = '\0';
	if (strchr(name, '.') == NULL && getaddrinfo(name, NULL, &hints, &res) == 0) {
		char *canon = NULL;
		if (res->ai_canonname != NULL && strchr(res->ai_canonname, '.') != NULL)
			canon = xstrdup(res->ai_canonname);
		freeaddrinfo(res);
		if (canon != NULL)
			return canon;
	}
	return xstrdup(name);
}

static int make_dir(const char *path, mode_t mode, bool *made_r)
{
	struct stat st;

	*made_r = false;
	if (mkdir(path, mode) == 0) {
		*made_r = true;
		return chmod(path, mode) < 0 ? cli_error("chmod %s: %s", path, strerror(errno)) : 0;
	}
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	return cli_error("mkdir %s: %s", path, strerror(errno));
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

int cli_init(int argc, char **argv)
{
	const char *dir_arg = NULL, *hostname_arg = NULL, *user_arg = NULL, *error;
	const char *bind[CONFIG_MAX_BIND];
	unsigned bind_count = 0;
	long offset = 0;
	char *hostname = NULL, *user = NULL, *dir = NULL;
	char *conf = NULL, *data = NULL, *tls = NULL, *cert = NULL, *key = NULL;
	bool made, root = privdrop_is_root();
	int ret = CLI_FAIL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_value = i + 1 < argc;
		if (strcmp(a, "--hostname") == 0 && has_value) {
			hostname_arg = argv[++i];
		} else if (strcmp(a, "--user") == 0 && has_value) {
			user_arg = argv[++i];
		} else if (strcmp(a, "--bind") == 0 && has_value) {
			if (bind_count >= CONFIG_MAX_BIND)
				return cli_usage_error("at most %d --bind addresses", CONFIG_MAX_BIND);
			bind[bind_count++] = argv[++i];
		} else if (strcmp(a, "--port-offset") == 0 && has_value) {
			char *end;
			errno = 0;
			offset = strtol(argv[++i], &end, 10);
			if (errno != 0 || *end != '\0' || end == argv[i] || offset < 0 ||
			    offset > 65535 - 995)
				return cli_usage_error("--port-offset must be 0 to %d", 65535 - 995);
		} else if (a[0] == '-') {
			return cli_usage_error("unknown or incomplete option '%s'", a);
		} else if (dir_arg == NULL) {
			dir_arg = a;
		} else {
			return cli_usage_error("unexpected argument '%s'", a);
		}
	}
	if (dir_arg == NULL)
		return cli_usage_error("usage: tern init DIR [--hostname NAME] [--bind ADDR]... "
				       "[--port-offset N] [--user NAME]");

	hostname = hostname_arg != NULL ? xstrdup(hostname_arg) : default_hostname();
	if (hostname == NULL) {
		cli_error("cannot find this machine's host name; give --hostname NAME");
		goto out;
	}
	if (user_arg != NULL)
		user = xstrdup(user_arg);
	else if (root)
		user = xstrdup("tern");
	else if ((user = privdrop_current_user()) == NULL) {
		cli_error("cannot find the name of the current user; give --user NAME");
		goto out;
	}

	/* check what goes into the file before anything is created */
	if (config_write_template_user(NULL, hostname, user, bind, bind_count, (int)offset,
				       &error) < 0) {
		cli_error("%s", error);
		goto out;
	}

	if (make_dir(dir_arg, 0755, &made) != 0)
		goto out;
	dir = realpath(dir_arg, NULL);
	if (dir == NULL) {
		cli_error("%s: %s", dir_arg, strerror(errno));
		goto out;
	}
	conf = xasprintf("%s/tern.conf", dir);
	data = xasprintf("%s/data", dir);
	tls = xasprintf("%s/tls", dir);
	cert = xasprintf("%s/cert.pem", tls);
	key = xasprintf("%s/key.pem", tls);
	if (exists(conf)) {
		cli_error("%s already exists; not overwriting it", conf);
		goto out;
	}

	/* the service user first: nothing is written if it cannot be made */
	if (root) {
		bool created;
		if (privdrop_ensure_user(user, &created, &error) < 0) {
			cli_error("%s", error);
			goto out;
		}
		if (created)
			printf("created system user %s\n", user);
	}

	if (config_write_template_user(conf, hostname, user, bind, bind_count, (int)offset,
				       &error) < 0) {
		cli_error("%s", error);
		goto out;
	}
	printf("created %s (hostname %s, user %s%s)\n", conf, hostname, user,
	       offset != 0 ? ", ports offset" : "");

	if (make_dir(data, 0750, &made) != 0)
		goto out;
	if (root && privdrop_chown_tree(data, user, &error) < 0) {
		cli_error("%s", error);
		goto out;
	}
	printf("%s %s/ (owned by %s)\n", made ? "created" : "kept", data, root ? user : "you");

	/* the SRS secret (srs.secrets_file of the template): read by the worker */
	char *srs = xasprintf("%s/srs.secret", dir);
	if (exists(srs)) {
		printf("kept the existing %s\n", srs);
	} else {
		char *serr = NULL;
		if (config_srs_secret_create(srs, &serr) < 0 ||
		    (root && privdrop_chown_tree(srs, user, &error) < 0)) {
			cli_error("%s", serr != NULL ? serr : error);
			free(serr);
			free(srs);
			goto out;
		}
		printf("created %s (random SRS secret, mode 0600)\n", srs);
	}
	free(srs);

	if (make_dir(tls, 0755, &made) != 0)
		goto out;
	if (exists(cert) || exists(key)) {
		printf("kept the existing %s and %s\n", cert, key);
	} else {
		if (tls_selfsigned_create(hostname, cert, key, &error) < 0) {
			cli_error("%s", error);
			goto out;
		}
		printf("created %s (self-signed for %s, valid 10 years) and %s (mode 0600%s)\n",
		       cert, hostname, key, root ? ", root only" : "");
	}

	printf("\nNext steps:\n"
	       "  export TERN_CONF=%s     (or give -c %s to every command)\n"
	       "  tern config check\n"
	       "  tern domain add example.com\n"
	       "  tern user add you@example.com        (asks for the password)\n"
	       "  tern serve\n"
	       "Publish an MX record for your domains pointing at %s, and replace\n"
	       "the self-signed certificate with one from a CA (docs/tls.md) naming\n"
	       "%s and mta-sts.DOMAIN for each domain.\n"
	       "Web endpoints (docs/http.md), once the server runs:\n"
	       "  https://mta-sts.DOMAIN/.well-known/mta-sts.txt   MTA-STS policy (listen.https)\n"
	       "  /health on http and https                        200 ok while the store answers\n",
	       conf, conf, hostname, hostname);
	ret = CLI_OK;
out:
	free(hostname);
	free(user);
	free(dir);
	free(conf);
	free(data);
	free(tls);
	free(cert);
	free(key);
	return ret;
}
