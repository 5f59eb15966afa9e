/* The server side of local submission: the Unix socket `tern sendmail`
 * talks SMTP over, and who is at the other end.
 *
 * The master creates the socket before the worker drops privileges (it
 * lives beside the data folder, in a folder any local user may enter) and
 * passes it like the TCP listeners.  There is no password: the kernel says
 * which uid connected (SO_PEERCRED, unforgeable by the peer), and the
 * administrator's sendmail.users table (else LOGIN@default_domain) names
 * the Tern user that uid submits as.  From then on the session is an
 * ordinary authenticated submission (src/smtp/receive.c): the user may
 * send only as their own addresses, remote recipients go to the queue.
 * A uid without a Tern user gets a 554 greeting saying so (RFC 5321 3.1).
 *
 * Invariant: the session's user is only ever set from the kernel's
 * credentials, never from anything the peer sends. */
#include "cli/sendmail.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "smtp/server.h"
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

const char *sendmail_default_domain(const struct config *cfg)
{
	return cfg->sendmail.default_domain != NULL ? cfg->sendmail.default_domain
						    : cfg->hostname;
}

/* Login name of uid (malloc'd), or NULL without a passwd entry. */
static char *login_of(uid_t uid)
{
	struct passwd pw, *res = NULL;
	long n = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t size = n > 0 ? (size_t)n : 4096;
	char *mem = xmalloc(size), *name = NULL;

	while (getpwuid_r(uid, &pw, mem, size, &res) == ERANGE && size < (1 << 20)) {
		size *= 2;
		mem = xrealloc(mem, size);
	}
	if (res != NULL && pw.pw_name != NULL && pw.pw_name[0] != '\0')
		name = xstrdup(pw.pw_name);
	free(mem);
	return name;
}

char *sendmail_address_for_uid(const struct config *cfg, uid_t uid, char **login_r,
			       bool *configured_r)
{
	char num[32];
	char *login = login_of(uid);

	snprintf(num, sizeof(num), "%lu", (unsigned long)uid);
	*configured_r = false;
	*login_r = login != NULL ? login : xstrdup(num);
	for (unsigned i = 0; i < cfg->sendmail.user_count; i++) {
		const struct config_sendmail_user *u = &cfg->sendmail.users[i];
		if (strcmp(u->uid, num) == 0 || (login != NULL && strcmp(u->uid, login) == 0)) {
			*configured_r = true;
			return xstrdup(u->address);
		}
	}
	if (login == NULL)
		return NULL;   /* no name to make an address of */
	char *addr = xasprintf("%s@%s", login, sendmail_default_domain(cfg));
	for (char *p = addr; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return addr;
}

int serve_sendmail_listen(const char *path, const char **error_r)
{
	static __thread char err[512];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	char *dir, *slash;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, sizeof(err), "sendmail.socket %s: path longer than %zu bytes", path,
			 sizeof(sun.sun_path) - 1);
		*error_r = err;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			snprintf(err, sizeof(err), "sendmail.socket: mkdir %s: %s", dir, strerror(errno));
			free(dir);
			*error_r = err;
			return -1;
		}
	}
	free(dir);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, sizeof(err), "sendmail.socket %s exists and is not a socket", path);
			close(fd);
			*error_r = err;
			return -1;
		}
		/* a server still answering there: refuse, as a TCP port in use */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(probe);
			close(fd);
			errno = EADDRINUSE;
			snprintf(err, sizeof(err), "sendmail.socket %s: another server listens there",
				 path);
			*error_r = err;
			return -1;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);   /* stale: left by a server that died */
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		goto fail;
	/* anyone may connect: the peer's uid decides what it may do */
	if (chmod(path, 0666) < 0 || listen(fd, 128) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, sizeof(err), "sendmail.socket %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	*error_r = err;
	return -1;
}

/* Keep a login name printable for logs and the Received field. */
static void sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("._-$", *s) == NULL)
			*s = '_';
}

void serve_sendmail_accept(const struct smtp_listener *l, struct event_base *base, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct store_user u = { 0 };
	const char *error = NULL;
	char *login = NULL, *addr, *peer, *refusal = NULL;
	bool configured;
	int found = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred)) {
		log_error("smtp", "event=peercred_failed error=%s", log_quote(strerror(errno)));
		close(fd);
		return;
	}
	addr = sendmail_address_for_uid(l->cfg, cred.uid, &login, &configured);
	sanitize(login);
	peer = xasprintf("uid %lu %s", (unsigned long)cred.uid, login);
	if (addr == NULL) {
		refusal = xasprintf("Local user with uid %lu has no login name and no entry in "
				    "sendmail.users; it may not submit mail", (unsigned long)cred.uid);
	} else if ((found = store_user_get(l->store, addr, &u, &error)) < 0) {
		log_error("smtp", "event=lookup_failed peer=%s error=%s", log_quote(peer),
			  log_quote(error));
		refusal = xasprintf("Temporary lookup failure, try again later");
	} else if (found == 0) {
		if (configured)
			refusal = xasprintf("sendmail.users maps local user %s to %s, which is not "
					    "a Tern user", login, addr);
		else
			refusal = xasprintf("Local user %s may not submit mail: %s is not a Tern "
					    "user (map the user to an address in sendmail.users)",
					    login, addr);
	}
	if (refusal != NULL)
		log_info("smtp", "event=local_refused peer=%s reason=%s", log_quote(peer),
			 log_quote(refusal));
	smtp_session_accept_local(l, base, fd, peer, refusal == NULL ? u.id : 0,
				  refusal == NULL ? u.address : NULL, refusal);
	if (found > 0)
		store_user_clear(&u);
	free(refusal);
	free(peer);
	free(login);
	free(addr);
}
