/* Dropping root privileges to the service user (see privdrop.h).
 *
 * Order matters when dropping: supplementary groups and the gid must be
 * changed while still root, the uid last; afterwards setuid(0) must fail,
 * or the drop did not happen and the caller must stop.  User creation runs
 * /usr/sbin/useradd with execve() and a fixed environment: no shell, no
 * system(), nothing from the command line interpreted. */
#include "lib/privdrop.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/buf.h"

#define USERADD "/usr/sbin/useradd"

static __thread char privdrop_error[512];

static int privdrop_fail(const char **error_r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int privdrop_fail(const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(privdrop_error, sizeof(privdrop_error), fmt, ap);
	va_end(ap);
	*error_r = privdrop_error;
	return -1;
}

bool privdrop_is_root(void)
{
	return geteuid() == 0;
}

int privdrop_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, const char **error_r)
{
	struct passwd pw, *result = NULL;
	size_t size = 1024;
	int err;

	for (;;) {
		char *mem = xmalloc(size);
		err = getpwnam_r(user, &pw, mem, size, &result);
		if (err == 0 && result != NULL) {
			*uid_r = pw.pw_uid;
			*gid_r = pw.pw_gid;
		}
		free(mem);
		if (err != ERANGE || size >= 1 << 20)
			break;
		size *= 4;
	}
	if (err == 0 || err == ENOENT || err == ESRCH)
		return result != NULL ? 1 : 0;
	return privdrop_fail(error_r, "looking up user %s: %s", user, strerror(err));
}

int privdrop_to(const char *user, const char **error_r)
{
	uid_t uid;
	gid_t gid;
	int ret;

	if (!privdrop_is_root())
		return 0;
	ret = privdrop_lookup(user, &uid, &gid, error_r);
	if (ret < 0)
		return -1;
	if (ret == 0)
		return privdrop_fail(error_r, "user %s does not exist (create it, or run "
				     "`tern init` as root)", user);
	if (uid == 0)
		return privdrop_fail(error_r, "refusing to run as %s: it is root (uid 0)", user);
	if (setgroups(1, &gid) < 0)
		return privdrop_fail(error_r, "setgroups(%u): %s", (unsigned)gid, strerror(errno));
	if (setgid(gid) < 0)
		return privdrop_fail(error_r, "setgid(%u): %s", (unsigned)gid, strerror(errno));
	if (setuid(uid) < 0)
		return privdrop_fail(error_r, "setuid(%u): %s", (unsigned)uid, strerror(errno));
	/* the proof: a dropped process can no longer become root */
	if (setuid(0) == 0 || geteuid() == 0 || getegid() == 0)
		return privdrop_fail(error_r, "privileges were not dropped to %s", user);
	return 0;
}

/* A portable system user name: [a-z_][a-z0-9_-]*, at most 32 bytes (what
 * useradd's default NAME_REGEX allows, minus the trailing '$'). */
static bool user_name_portable(const char *user)
{
	size_t len = strlen(user);

	if (len == 0 || len > 32 || !((user[0] >= 'a' && user[0] <= 'z') || user[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++) {
		char c = user[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int privdrop_ensure_user(const char *user, bool *created_r, const char **error_r)
{
	uid_t uid;
	gid_t gid;
	int ret, status;
	pid_t pid;

	*created_r = false;
	if (!privdrop_is_root())
		return 0;
	ret = privdrop_lookup(user, &uid, &gid, error_r);
	if (ret != 0)
		return ret < 0 ? -1 : 0;
	if (!user_name_portable(user))
		return privdrop_fail(error_r, "will not create user \"%s\": use lowercase letters, "
				     "digits, '_' and '-' (starting with a letter)", user);

	char *const argv[] = {
		(char *)USERADD, (char *)"--system", (char *)"--no-create-home",
		(char *)"--home-dir", (char *)"/nonexistent",
		(char *)"--shell", (char *)"/usr/sbin/nologin", (char *)user, NULL
	};
	char *const envp[] = { (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };

	pid = fork();
	if (pid < 0)
		return privdrop_fail(error_r, "fork: %s", strerror(errno));
	if (pid == 0) {
		execve(USERADD, argv, envp);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return privdrop_fail(error_r, "waitpid: %s", strerror(errno));
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			return privdrop_fail(error_r, "cannot run %s to create user %s", USERADD, user);
		return privdrop_fail(error_r, "%s %s failed (status %d)", USERADD, user,
				     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	ret = privdrop_lookup(user, &uid, &gid, error_r);
	if (ret <= 0)
		return ret < 0 ? -1 : privdrop_fail(error_r, "user %s still missing after useradd",
						    user);
	*created_r = true;
	return 0;
}

/* nftw() passes no context: the owner for the walk in progress */
static __thread uid_t chown_uid;
static __thread gid_t chown_gid;
static __thread const char *chown_failed;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	if (lchown(path, chown_uid, chown_gid) < 0) {
		chown_failed = path;
		snprintf(privdrop_error, sizeof(privdrop_error), "chown %s: %s", path,
			 strerror(errno));
		return 1;
	}
	return 0;
}

int privdrop_chown_tree(const char *path, const char *user, const char **error_r)
{
	int ret;

	if (!privdrop_is_root())
		return 0;
	ret = privdrop_lookup(user, &chown_uid, &chown_gid, error_r);
	if (ret < 0)
		return -1;
	if (ret == 0)
		return privdrop_fail(error_r, "user %s does not exist", user);
	chown_failed = NULL;
	ret = nftw(path, chown_one, 32, FTW_PHYS);
	if (ret != 0) {
		if (chown_failed != NULL) {
			*error_r = privdrop_error;
			return -1;
		}
		return privdrop_fail(error_r, "walking %s: %s", path, strerror(errno));
	}
	return 0;
}

char *privdrop_current_user(void)
{
	struct passwd pw, *result = NULL;
	size_t size = 1024;
	char *name = NULL;

	for (;;) {
		char *mem = xmalloc(size);
		int err = getpwuid_r(geteuid(), &pw, mem, size, &result);
		if (err == 0 && result != NULL)
			name = xstrdup(pw.pw_name);
		free(mem);
		if (err != ERANGE || size >= 1 << 20)
			break;
		size *= 4;
	}
	return name;
}
