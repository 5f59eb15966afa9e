/* Dropping root privileges to the service user, and the small amount of
 * user management `tern init` needs.
 *
 * Policy: when the process is not root, every function here is a no-op
 * that succeeds (the server and the CLI run as the invoking user).  When
 * root, privdrop_to() drops for good: supplementary groups, gid, uid, and
 * checks that root cannot be regained. */
#ifndef TERN_LIB_PRIVDROP_H
#define TERN_LIB_PRIVDROP_H

#include <stdbool.h>
#include <sys/types.h>

/* Look up user (getpwnam_r).  Returns 1 with uid/gid filled, 0 when there
 * is no such user, -1 with *error_r on a lookup error. */
int privdrop_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, const char **error_r);

/* Is the process running as root (effective uid 0)? */
bool privdrop_is_root(void);

/* When root: setgroups(1, &gid), setgid(gid), setuid(uid) of user, then
 * verify that setuid(0) fails.  When not root: nothing.  Returns 0, or -1
 * with *error_r (the process must then stop: it may be half-dropped). */
int privdrop_to(const char *user, const char **error_r);

/* When root: create user as a system account if it does not exist
 * (fork + execv of /usr/sbin/useradd --system --no-create-home --home-dir
 * /nonexistent --shell /usr/sbin/nologin NAME; never a shell).  *created_r
 * tells whether it was made.  When not root: checks nothing, returns 0. */
int privdrop_ensure_user(const char *user, bool *created_r, const char **error_r);

/* When root: chown path and everything below it (without following
 * symbolic links) to user and its primary group.  When not root: nothing. */
int privdrop_chown_tree(const char *path, const char *user, const char **error_r);

/* Name of the user the process runs as (malloc'd), or NULL. */
char *privdrop_current_user(void);

#endif
