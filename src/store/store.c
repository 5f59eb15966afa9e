/* Opening and closing the store: the data folder layout (index.db,
 * messages/00..ff, tmp/), the writer connection and its migrations, the
 * commit thread, and the TERN_STORE_FAULT test hook.
 *
 * Invariants: after store_open() succeeds, the schema is at
 * STORE_SCHEMA_VERSION_CURRENT, the 256 message folders exist and are
 * durable, and (unless read-only) the commit thread is running.  Folders are
 * created with mode 0750, files 0640 (before the umask). */
#include "store/store-private.h"
#include "store/search-private.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int make_dir(const char *path, const char **error_r)
{
	if (mkdir(path, STORE_DIR_MODE) < 0 && errno != EEXIST) {
		*error_r = store_errf("cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int fsync_path(const char *path, const char **error_r)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0) {
		*error_r = store_errf("cannot sync %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Create the folder layout; idempotent. */
static int make_layout(struct store *store, const char **error_r)
{
	char *tmp = xasprintf("%s/tmp", store->dir);
	int rc = make_dir(store->msg_dir, error_r);

	if (rc == 0)
		rc = make_dir(tmp, error_r);
	free(tmp);
	for (unsigned i = 0; i < 256 && rc == 0; i++) {
		char *sub = xasprintf("%s/%02x", store->msg_dir, i);
		rc = make_dir(sub, error_r);
		free(sub);
	}
	if (rc == 0) {
		/* SQLite would create index.db 0644; its -wal and -shm copy the
		 * database's mode, so creating it first makes all three 0640.
		 * O_EXCL: never open (and close) an existing database behind
		 * SQLite's back, as closing any descriptor of a file drops the
		 * process's POSIX locks on it. */
		char *db = xasprintf("%s/index.db", store->dir);
		int fd = open(db, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, STORE_FILE_MODE);
		if (fd < 0 && errno != EEXIST) {
			*error_r = store_errf("cannot create %s: %s", db, strerror(errno));
			rc = -1;
		} else if (fd >= 0) {
			close(fd);
		}
		free(db);
	}
	if (rc == 0)
		rc = fsync_path(store->msg_dir, error_r);
	if (rc == 0)
		rc = fsync_path(store->dir, error_r);
	return rc;
}

static void fault_from_env(struct store *store)
{
	const char *env = getenv("TERN_STORE_FAULT");
	char *end;
	unsigned long n;
	int err;

	if (env == NULL || *env == '\0')
		return;
	n = strtoul(env, &end, 10);
	if (*end != ':' || n == 0 || n > UINT_MAX)
		goto bad;
	if (strcmp(end + 1, "ENOSPC") == 0)
		err = ENOSPC;
	else if (strcmp(end + 1, "EIO") == 0)
		err = EIO;
	else
		goto bad;
	store_fault_inject(store, (unsigned)n, err);
	log_warn("store", "event=fault_injection nth=%lu errno=%s", n, end + 1);
	return;
bad:
	log_warn("store", "event=bad_fault_spec value=%s", log_quote(env));
}

static int check_readonly_version(struct store *store, const char **error_r)
{
	struct store_conn c;
	int version;

	if (store_conn_open(store, &c, true, error_r) < 0)
		return -1;
	if (store_schema_read(&c, &version, error_r) < 0) {
		*error_r = store_errf("no store in %s (never opened read-write)", store->dir);
		store_conn_close(&c);
		return -1;
	}
	store_conn_close(&c);
	if (version != STORE_SCHEMA_VERSION_CURRENT) {
		*error_r = store_errf("store schema version %d, this tern needs %d (open it "
				      "read-write once to migrate)", version,
				      STORE_SCHEMA_VERSION_CURRENT);
		return -1;
	}
	store->schema_version = version;
	return 0;
}

int store_open(const char *data_dir, const struct store_options *opts,
	       struct store **store_r, const char **error_r)
{
	struct store *store;
	char *real;

	if (opts == NULL || !opts->readonly) {
		if (mkdir(data_dir, STORE_DIR_MODE) < 0 && errno != EEXIST) {
			*error_r = store_errf("cannot create %s: %s", data_dir, strerror(errno));
			return -1;
		}
	}
	if ((real = realpath(data_dir, NULL)) == NULL) {
		*error_r = store_errf("data folder %s: %s", data_dir, strerror(errno));
		return -1;
	}
	store = xcalloc(1, sizeof(*store));
	store->dir = real;
	store->msg_dir = xasprintf("%s/messages", real);
	if (opts != NULL)
		store->opts = *opts;
	store->msgdir_fd = -1;
	for (unsigned i = 0; i < 256; i++)
		store->subdir_fd[i] = -1;
	pthread_mutex_init(&store->rlock, NULL);
	pthread_mutex_init(&store->lock, NULL);
	pthread_cond_init(&store->cond, NULL);
	pthread_cond_init(&store->done_cond, NULL);
	store->tail = &store->head;
	fault_from_env(store);

	if (store->opts.readonly) {
		if (check_readonly_version(store, error_r) < 0)
			goto fail;
	} else {
		if (make_layout(store, error_r) < 0)
			goto fail;
		if (store_conn_open(store, &store->wconn, false, error_r) < 0)
			goto fail;
		/* the commit thread owns the writer from now on */
		if (store_migrate(store, error_r) < 0)
			goto fail;
		/* index.db and its WAL may have just been created */
		if (fsync_path(store->dir, error_r) < 0)
			goto fail;
		if (store_commit_start(store, error_r) < 0)
			goto fail;
	}
	store_search_open(store);
	log_info("store", "event=opened dir=%s schema_version=%d readonly=%d",
		 log_quote(store->dir), store->schema_version, store->opts.readonly);
	*store_r = store;
	return 0;
fail:
	store_close(&store);
	return -1;
}

void store_close(struct store **storep)
{
	struct store *store = *storep;

	if (store == NULL)
		return;
	*storep = NULL;
	store_commit_stop(store);
	store_search_close(store);      /* after the commit thread: it notifies */
	store_conn_close(&store->wconn);
	store_rconns_close(store);
	pthread_mutex_destroy(&store->rlock);
	pthread_mutex_destroy(&store->lock);
	pthread_cond_destroy(&store->cond);
	pthread_cond_destroy(&store->done_cond);
	free(store->msg_dir);
	free(store->dir);
	free(store);
}

int store_schema_version(struct store *store)
{
	return store->schema_version;
}
