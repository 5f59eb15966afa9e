/* The commit thread: the one writer of this process, with group commit.
 *
 * Requests (deliveries, synchronous directory operations, and asynchronous
 * operations such as POP3's expunge via store_op_submit) are queued by any
 * thread.  The commit thread takes up to commit_batch of them at once
 * and, for the whole batch:
 *   1. writes one new file per delivered copy, "Return-Path: <...>\r\n"
 *      "Delivered-To: ...\r\n" + body, created O_EXCL under a random 64-bit
 *      name in messages/<first 2 hex>/ (fsync'd here only in FILE mode);
 *   2. makes the files durable: one syncfs() of the messages filesystem
 *      (SYNCFS mode, which covers the new directory entries too), or an
 *      fsync() of each file and of each messages/<xx> directory that got a
 *      new entry (FILE mode);
 *   3. runs ONE index transaction (BEGIN IMMEDIATE ... COMMIT, durable by
 *      SQLite's synchronous=FULL WAL commit) with each request inside its
 *      own savepoint, so a request that fails is rolled back alone;
 *   4. for committed removals, unlinks the message files they released
 *      (unless another row still names the file: COPY shares files),
 *      publishes a lib/notify.h event for every mailbox the batch changed
 *      (deliveries: one NOTIFY_MESSAGE_NEW per mailbox with its newest
 *      modseq; operations: the events they recorded), and only then
 *      completes each request (callbacks, waiting callers).
 * Operations may carry a message file of their own (IMAP APPEND): it is
 * written in step 1 with the deliveries and shares their flush.
 * Invariants: the index never points at a file that is not durable; a
 * request reported as failed has no row in the index and no file left; a
 * fault in one request's file writes fails that request only, while a
 * failed syncfs/directory fsync/commit fails every request of the batch.
 * Why group commit: one durable commit costs a few disk flushes whatever
 * its size, so batching turns the disk's flush rate into a rate of batches,
 * not of messages.
 * Spare files: a queue file whose message has left (store_op_add_recycle)
 * is moved to dir/spare/ after the commit instead of being unlinked (up to
 * STORE_SPARE_MAX files of at most STORE_SPARE_FILE_MAX), and write_file() takes one from there before creating
 * a new file: renamed to its new name first (RENAME_NOREPLACE, so two
 * processes can never take the same spare), then overwritten and cut to
 * size, and made durable with the batch like a new file.  Why: the queue
 * creates and deletes one file per message, and each new inode costs the
 * filesystem a search of its inode bitmap (on ext4 without a journal it
 * also skips every inode freed in the last half-minute, which at hundreds
 * of messages a second dominated the whole outbound path).  A spare's old
 * content is never visible: the index names a file only after it was
 * rewritten and flushed.
 * The fault hook (store_fault_inject, TERN_STORE_FAULT) counts every
 * write, fsync, syncfs and rename done here (the spare moves excepted). */
#include "store/store-private.h"
#include "store/search-private.h"
#include "store/unlink.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/notify.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

enum req_kind { REQ_DELIVER, REQ_OP };

/* Deliveries up to this size (body x copies) are written by the caller of
 * store_deliver() rather than by the commit thread (see store_deliver). */
#define STORE_PREWRITE_MAX (1024 * 1024)
/* Spare files kept for reuse (see the top comment): how many, and the
 * largest kept, so the spares never hold more than 64 MiB of disk. */
#define STORE_SPARE_MAX 256
#define STORE_SPARE_FILE_MAX (256 * 1024)

struct store_copy {
	int64_t user_id;
	char *delivered_to;
	char *mailbox;
	char file[17];          /* 16 hex digits */
	unsigned subdir;        /* first byte of the id */
	int64_t size;
	bool written;
	int64_t mailbox_id;     /* set by the index update, for the notify event */
	int64_t modseq;
};

struct store_req {
	struct store_req *next;
	enum req_kind kind;
	int status;
	char *error;
	bool done;

	/* REQ_DELIVER */
	struct store *store;
	struct event_base *base;
	store_done_cb *cb;
	void *ctx;
	char *return_path;
	char *queue_sender;     /* the queue row's sender (return_path unless set) */
	char *body;
	size_t body_len;
	char *dsn;
	time_t internal_date;
	struct store_copy *copies;
	size_t copy_count;
	struct store_summary_data *summary;     /* computed by store_deliver's caller */
	/* the outbound queue's copy (queue.c): the body as received, no
	 * Return-Path / Delivered-To */
	bool queued;
	struct store_copy queue_copy;
	struct store_queue_in queue;

	/* REQ_OP */
	struct store_op *op;
	bool async;             /* store_op_submit: complete through cb on base, free op */
	bool prewritten;        /* delivery files written by store_deliver's caller */
	void (*op_free)(struct store_op *op);
};

static const char SQL_MB_BUMP[] =
	"UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1,"
	" messages = messages + 1, bytes = bytes + ?1 WHERE id = ?2"
	" RETURNING uidnext - 1, highestmodseq";
static const char SQL_MSG_INSERT[] =
	"INSERT INTO messages(mailbox_id, uid, modseq, internal_date, size, flags, file, dsn,"
	" savedate) VALUES (?1, ?2, ?3, ?4, ?5, '', ?6, ?7, ?8)";
static const char SQL_FILE_REFERENCED[] =
	"SELECT 1 FROM messages WHERE file = ?1 LIMIT 1";
static const char SQL_USER_USAGE[] =
	"UPDATE users SET used_bytes = used_bytes + ?1, used_messages = used_messages + 1"
	" WHERE id = ?2";

char *store_message_path(struct store *store, const char *file)
{
	return xasprintf("%s/%.2s/%s", store->msg_dir, file, file);
}

static void op_add_path(struct store_op *op, char *path, bool recycle)
{
	op->unlink_paths = xrealloc(op->unlink_paths,
				    (op->unlink_count + 1) * sizeof(*op->unlink_paths));
	op->unlink_recycle = xrealloc(op->unlink_recycle,
				      (op->unlink_count + 1) * sizeof(*op->unlink_recycle));
	op->unlink_recycle[op->unlink_count] = recycle;
	op->unlink_paths[op->unlink_count++] = path;
}

void store_op_add_unlink(struct store_op *op, char *path)
{
	op_add_path(op, path, false);
}

void store_op_add_recycle(struct store_op *op, char *path)
{
	op_add_path(op, path, true);
}

void store_op_add_event(struct store_op *op, int64_t user_id, int64_t mailbox_id,
			unsigned kinds, uint64_t modseq)
{
	for (size_t i = 0; i < op->event_count; i++) {
		struct notify_event *ev = &op->events[i];
		if (ev->user_id == user_id && ev->mailbox_id == mailbox_id) {
			ev->kinds |= kinds;
			if (modseq > ev->modseq)
				ev->modseq = modseq;
			return;
		}
	}
	op->events = xrealloc(op->events, (op->event_count + 1) * sizeof(*op->events));
	op->events[op->event_count++] = (struct notify_event){
		.user_id = user_id, .mailbox_id = mailbox_id, .kinds = kinds, .modseq = modseq,
	};
}

/* Free what the commit thread attached to op (unlink list, events). */
static void op_release(struct store_op *op)
{
	for (size_t i = 0; i < op->unlink_count; i++)
		free(op->unlink_paths[i]);
	free(op->unlink_paths);
	op->unlink_paths = NULL;
	free(op->unlink_recycle);
	op->unlink_recycle = NULL;
	op->unlink_count = 0;
	free(op->events);
	op->events = NULL;
	op->event_count = 0;
}

/* ------------------------------------------------------------ fault hook */

void store_fault_inject(struct store *store, unsigned nth, int err)
{
	atomic_store(&store->fault_err, err);
	atomic_store(&store->fault_nth, nth);
}

/* Count one I/O operation; -1 with errno set when it is the injected one. */
static int io_fault(struct store *store)
{
	unsigned n = atomic_load(&store->fault_nth);

	while (n > 0) {
		if (atomic_compare_exchange_weak(&store->fault_nth, &n, n - 1)) {
			if (n == 1) {
				errno = atomic_load(&store->fault_err);
				return -1;
			}
			return 0;
		}
	}
	return 0;
}

/* ----------------------------------------------------------- file writes */

static int subdir_fd_open(struct store *store, unsigned sub);

/* The 256 folder fds are opened by store_commit_start(); this lazy path
 * only runs if one was removed since, and is serialised because callers of
 * store_deliver() write files from their own threads. */
static int subdir_fd(struct store *store, unsigned sub)
{
	static pthread_mutex_t lazy_lock = PTHREAD_MUTEX_INITIALIZER;
	int ret;

	if (store->subdir_fd[sub] >= 0)
		return store->subdir_fd[sub];
	pthread_mutex_lock(&lazy_lock);
	ret = subdir_fd_open(store, sub);
	pthread_mutex_unlock(&lazy_lock);
	return ret;
}

static int subdir_fd_open(struct store *store, unsigned sub)
{
	char name[3];

	if (store->subdir_fd[sub] >= 0)
		return store->subdir_fd[sub];
	snprintf(name, sizeof(name), "%02x", sub);
	int fd = openat(store->msgdir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		/* created at open; recreated here if someone removed it */
		if (mkdirat(store->msgdir_fd, name, STORE_DIR_MODE) < 0 && errno != EEXIST)
			return -1;
		if (io_fault(store) < 0 || fsync(store->msgdir_fd) < 0)
			return -1;
		fd = openat(store->msgdir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	store->subdir_fd[sub] = fd;
	return fd;
}

static void unlink_copy(struct store *store, struct store_copy *cp)
{
	if (!cp->written)
		return;
	if (store->subdir_fd[cp->subdir] < 0 ||
	    unlinkat(store->subdir_fd[cp->subdir], cp->file, 0) < 0)
		log_warn("store", "event=unlink_failed file=%s error=%s", cp->file,
			 log_quote(strerror(errno)));
	cp->written = false;
}

static void req_unlink_files(struct store *store, struct store_req *req)
{
	for (size_t i = 0; i < req->copy_count; i++)
		unlink_copy(store, &req->copies[i]);
	if (req->queued)
		unlink_copy(store, &req->queue_copy);
}

static void req_fail(struct store_req *req, char *error)
{
	if (req->status == 0) {
		req->status = -1;
		req->error = error;
	} else {
		free(error);
	}
}

/* ------------------------------------------------------------ spare files */

static bool spare_name_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == 16;
}

/* Open dir/spare (created when missing) and list what it holds. */
static void spare_open(struct store *store)
{
	char *path = xasprintf("%s/spare", store->dir);
	DIR *d;
	struct dirent *de;
	int fd;

	store->spare = xcalloc(STORE_SPARE_MAX, sizeof(*store->spare));
	store->spare_count = 0;
	pthread_mutex_init(&store->spare_lock, NULL);
	if (mkdir(path, STORE_DIR_MODE) < 0 && errno != EEXIST)
		log_warn("store", "event=spare_unavailable path=%s error=%s", log_quote(path),
			 log_quote(strerror(errno)));
	store->spare_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(path);
	if (store->spare_fd < 0 || (fd = dup(store->spare_fd)) < 0)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL && store->spare_count < STORE_SPARE_MAX) {
		if (spare_name_ok(de->d_name))
			memcpy(store->spare[store->spare_count++], de->d_name, 17);
	}
	closedir(d);
}

static void spare_close(struct store *store)
{
	if (store->spare == NULL)
		return;
	if (store->spare_fd >= 0)
		close(store->spare_fd);
	store->spare_fd = -1;
	free(store->spare);
	store->spare = NULL;
	store->spare_count = 0;
	pthread_mutex_destroy(&store->spare_lock);
}

/* Move a spare to messages/<sub>/name: 1 done, 0 no spare left, -1 with
 * errno EEXIST when name is taken (the spare stays available). */
static int spare_take(struct store *store, int dfd, const char *name)
{
	char s[17];

	if (store->spare == NULL || store->spare_fd < 0)
		return 0;
	for (;;) {
		pthread_mutex_lock(&store->spare_lock);
		if (store->spare_count == 0) {
			pthread_mutex_unlock(&store->spare_lock);
			return 0;
		}
		memcpy(s, store->spare[--store->spare_count], sizeof(s));
		pthread_mutex_unlock(&store->spare_lock);
		if (renameat2(store->spare_fd, s, dfd, name, RENAME_NOREPLACE) == 0)
			return 1;
		if (errno == EEXIST) {
			pthread_mutex_lock(&store->spare_lock);
			if (store->spare_count < STORE_SPARE_MAX)
				memcpy(store->spare[store->spare_count++], s, sizeof(s));
			pthread_mutex_unlock(&store->spare_lock);
			errno = EEXIST;
			return -1;
		}
		/* ENOENT: another process took it; try the next */
	}
}

/* Keep the file at path (a message file no row names any more) as a
 * spare: 0 kept, -1 not (the caller unlinks it). */
static int spare_put(struct store *store, const char *path)
{
	const char *name = strrchr(path, '/');
	struct stat sb;
	unsigned sub;
	bool room;

	if (store->spare == NULL || store->spare_fd < 0 || name == NULL ||
	    !spare_name_ok(++name) || sscanf(name, "%2x", &sub) != 1 || store->subdir_fd[sub] < 0)
		return -1;
	pthread_mutex_lock(&store->spare_lock);
	room = store->spare_count < STORE_SPARE_MAX;
	pthread_mutex_unlock(&store->spare_lock);
	if (!room || fstatat(store->subdir_fd[sub], name, &sb, 0) < 0 ||
	    sb.st_size > STORE_SPARE_FILE_MAX || renameat2(store->subdir_fd[sub], name, store->spare_fd, name,
			       RENAME_NOREPLACE) < 0)
		return -1;
	pthread_mutex_lock(&store->spare_lock);
	if (store->spare_count < STORE_SPARE_MAX) {
		memcpy(store->spare[store->spare_count++], name, 17);
		pthread_mutex_unlock(&store->spare_lock);
		return 0;
	}
	pthread_mutex_unlock(&store->spare_lock);
	unlinkat(store->spare_fd, name, 0);
	return 0;
}

/* Create one new message file holding iov[0..iovcnt) (at most 2 parts)
 * under a fresh random name in messages/<xx>/, created O_EXCL (fsync'd here
 * only in FILE mode).  0 with name and *subdir_r set; -1 with errno and
 * nothing left behind. */
static int write_file(struct store *store, const struct iovec *parts, int iovcnt,
		      char name[17], unsigned *subdir_r, bool touched[256])
{
	struct iovec iov[2];
	struct iovec *v = iov;
	int fd = -1, dfd = -1, saved;
	bool reused = false;
	off_t total = 0;
	uint64_t id;

	for (int tries = 0; fd < 0 && tries < 8; tries++) {
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			return -1;
		*subdir_r = (unsigned)(id >> 56);
		snprintf(name, 17, "%016llx", (unsigned long long)id);
		if ((dfd = subdir_fd(store, *subdir_r)) < 0)
			return -1;
		int rc = spare_take(store, dfd, name);
		if (rc < 0)
			continue;       /* the name exists: another one */
		reused = rc == 1;
		fd = openat(dfd, name, reused ? O_WRONLY | O_CLOEXEC :
			    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, STORE_FILE_MODE);
		if (fd < 0 && reused) {
			saved = errno;
			unlinkat(dfd, name, 0);
			errno = saved;
			return -1;
		}
		if (fd < 0 && errno != EEXIST)
			return -1;
	}
	if (fd < 0)
		return -1;
	touched[*subdir_r] = true;
	for (int i = 0; i < iovcnt; i++)
		total += (off_t)parts[i].iov_len;
	memcpy(iov, parts, (size_t)iovcnt * sizeof(*iov));
	while (iovcnt > 0) {
		ssize_t n;
		if (v->iov_len == 0) {
			v++;
			iovcnt--;
			continue;
		}
		if (io_fault(store) < 0 || (n = writev(fd, v, iovcnt)) < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		while (iovcnt > 0 && (size_t)n >= v->iov_len) {
			n -= (ssize_t)v->iov_len;
			v++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= (size_t)n;
		}
	}
	/* a spare keeps its old length until cut to the new content's */
	if (reused && ftruncate(fd, total) < 0)
		goto fail;
	if (store->opts.fsync_mode == STORE_FSYNC_FILE && (io_fault(store) < 0 || fsync(fd) < 0))
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(dfd, name, 0);
	errno = saved;
	return -1;
}

/* Write every copy of one delivery; on failure unlink what was written. */
static int write_copies(struct store *store, struct store_req *req, bool touched[256])
{
	struct buf hdr;

	buf_init(&hdr, BUF_UNLIMITED);
	for (size_t i = 0; i < req->copy_count; i++) {
		struct store_copy *cp = &req->copies[i];

		buf_reset(&hdr);
		buf_printf(&hdr, "Return-Path: <%s>\r\nDelivered-To: %s\r\n", req->return_path,
			   cp->delivered_to);
		cp->size = (int64_t)(hdr.len + req->body_len);
		struct iovec iov[2] = {
			{ hdr.data, hdr.len },
			{ req->body, req->body_len },
		};
		if (write_file(store, iov, 2, cp->file, &cp->subdir, touched) < 0)
			goto fail;
		cp->written = true;
	}
	if (req->queued) {
		struct iovec iov[1] = { { req->body, req->body_len } };
		req->queue_copy.size = (int64_t)req->body_len;
		if (write_file(store, iov, 1, req->queue_copy.file, &req->queue_copy.subdir,
			       touched) < 0)
			goto fail;
		req->queue_copy.written = true;
	}
	buf_free(&hdr);
	return 0;
fail:
	req_fail(req, xasprintf("writing message file: %s", strerror(errno)));
	buf_free(&hdr);
	req_unlink_files(store, req);
	return -1;
}

/* Write an operation's own message file (APPEND). */
static int write_op_file(struct store *store, struct store_req *req, bool touched[256])
{
	struct store_op *op = req->op;
	struct iovec iov[1] = { { op->file_data, op->file_len } };

	if (write_file(store, iov, 1, op->file, &op->file_subdir, touched) < 0) {
		req_fail(req, xasprintf("writing message file: %s", strerror(errno)));
		return -1;
	}
	op->file_written = true;
	return 0;
}

static void unlink_op_file(struct store *store, struct store_op *op)
{
	if (!op->file_written)
		return;
	if (store->subdir_fd[op->file_subdir] < 0 ||
	    unlinkat(store->subdir_fd[op->file_subdir], op->file, 0) < 0)
		log_warn("store", "event=unlink_failed file=%s error=%s", op->file,
			 log_quote(strerror(errno)));
	op->file_written = false;
}

/* Make the batch's files and directory entries durable. */
static int sync_batch(struct store *store, const bool touched[256], char **error_r)
{
	if (store->opts.fsync_mode == STORE_FSYNC_SYNCFS &&
	    (io_fault(store) < 0 || syncfs(store->msgdir_fd) < 0)) {
		*error_r = xasprintf("syncfs of %s: %s", store->msg_dir, strerror(errno));
		return -1;
	}
	/* syncfs() writes back every dirty inode of the filesystem, directories
	 * included, and commits the journal: the new directory entries are
	 * durable with it.  A clean directory fsync still costs a disk flush
	 * (about 2 ms on our test machines), so one per touched directory would
	 * dominate the batch. */
	if (store->opts.fsync_mode == STORE_FSYNC_SYNCFS)
		return 0;
	for (unsigned i = 0; i < 256; i++) {
		if (!touched[i])
			continue;
		if (io_fault(store) < 0 || fsync(store->subdir_fd[i]) < 0) {
			*error_r = xasprintf("fsync of %s/%02x: %s", store->msg_dir, i,
					     strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* --------------------------------------------------------- index updates */

static int apply_delivery(struct store *store, struct store_req *req, char **error_r)
{
	struct store_conn *c = &store->wconn;
	const char *err;
	sqlite3_stmt *st;

	for (size_t i = 0; i < req->copy_count; i++) {
		struct store_copy *cp = &req->copies[i];
		int64_t mailbox_id, uid, modseq;
		int rc = store_mailbox_for_delivery(store, cp->user_id, cp->mailbox, &mailbox_id,
						    error_r);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			*error_r = xasprintf("user id %lld does not exist", (long long)cp->user_id);
			return -1;
		}
		if ((st = store_stmt(c, SQL_MB_BUMP, &err)) == NULL)
			goto sqlfail_msg;
		sqlite3_bind_int64(st, 1, cp->size);
		sqlite3_bind_int64(st, 2, mailbox_id);
		if (sqlite3_step(st) != SQLITE_ROW)
			goto sqlfail;
		uid = sqlite3_column_int64(st, 0);
		modseq = sqlite3_column_int64(st, 1);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			;
		if (rc != SQLITE_DONE)
			goto sqlfail;
		sqlite3_reset(st);
		cp->mailbox_id = mailbox_id;
		cp->modseq = modseq;
		if (uid > UINT32_MAX - 1) {
			*error_r = xasprintf("mailbox %lld has no UIDs left", (long long)mailbox_id);
			return -1;
		}

		if ((st = store_stmt(c, SQL_MSG_INSERT, &err)) == NULL)
			goto sqlfail_msg;
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, uid);
		sqlite3_bind_int64(st, 3, modseq);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)req->internal_date);
		sqlite3_bind_int64(st, 5, cp->size);
		sqlite3_bind_text(st, 6, cp->file, -1, SQLITE_STATIC);
		store_bind_text(st, 7, req->dsn);
		sqlite3_bind_int64(st, 8, (sqlite3_int64)clock_now());
		if (sqlite3_step(st) != SQLITE_DONE)
			goto sqlfail;
		sqlite3_reset(st);
		if (req->summary != NULL &&
		    store_summary_insert(store, sqlite3_last_insert_rowid(c->db), cp->user_id,
					 cp->file, req->summary, error_r) < 0)
			return -1;

		if ((st = store_stmt(c, SQL_USER_USAGE, &err)) == NULL)
			goto sqlfail_msg;
		sqlite3_bind_int64(st, 1, cp->size);
		sqlite3_bind_int64(st, 2, cp->user_id);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto sqlfail;
		sqlite3_reset(st);
	}
	if (req->queued &&
	    store_queue_insert(store, req->queue_copy.file, req->queue_copy.size, req->queue_sender,
			       req->dsn, &req->queue, error_r) < 0)
		return -1;
	return 0;
sqlfail:
	*error_r = store_sqlerr_dup(c, "index update");
	sqlite3_reset(st);
	return -1;
sqlfail_msg:
	*error_r = xstrdup(err);
	return -1;
}

static int apply_req(struct store *store, struct store_req *req, char **error_r)
{
	if (req->kind == REQ_DELIVER)
		return apply_delivery(store, req, error_r);
	/* A retried transaction runs fn again from scratch: drop what an
	 * earlier, rolled-back attempt recorded. */
	op_release(req->op);
	return req->op->fn(store, req->op, error_r);
}

/* One transaction for every request still alive in the batch.  A request
 * whose statements fail is rolled back to its savepoint and dropped; if
 * SQLite had to abandon the whole transaction (I/O error, disk full) the
 * transaction is redone without that request. */
static void commit_batch(struct store *store, struct store_req **reqs, size_t n)
{
	struct store_conn *c = &store->wconn;
	char *err = NULL;
	size_t alive;

retry:
	alive = 0;
	for (size_t i = 0; i < n; i++)
		if (reqs[i]->status == 0)
			alive++;
	if (alive == 0)
		return;
	if (store_exec(c, "BEGIN IMMEDIATE", &err) < 0)
		goto fail_all;
	for (size_t i = 0; i < n; i++) {
		struct store_req *req = reqs[i];
		char *rerr = NULL;

		if (req->status != 0)
			continue;
		if (store_exec(c, "SAVEPOINT req", &err) < 0)
			goto fail_txn;
		if (apply_req(store, req, &rerr) == 0) {
			if (store_exec(c, "RELEASE req", &err) < 0)
				goto fail_txn;
			continue;
		}
		req_fail(req, rerr ? rerr : xstrdup("index update failed"));
		if (sqlite3_get_autocommit(c->db))
			goto retry;     /* the transaction is gone: redo without req */
		if (store_exec(c, "ROLLBACK TO req", NULL) < 0 ||
		    store_exec(c, "RELEASE req", NULL) < 0) {
			store_exec(c, "ROLLBACK", NULL);
			goto retry;
		}
	}
	/* ops that complete before their files are unlinked: list the files
	 * in the crash journal before the commit makes them unreferenced */
	for (size_t i = 0; i < n; i++) {
		if (reqs[i]->status == 0 && reqs[i]->kind == REQ_OP && reqs[i]->op->unlink_later)
			store_unlinker_journal(store, reqs[i]->op);
	}
	if (store_exec(c, "COMMIT", &err) < 0)
		goto fail_txn;
	return;
fail_txn:
	store_exec(c, "ROLLBACK", NULL);
fail_all:
	for (size_t i = 0; i < n; i++)
		req_fail(reqs[i], xstrdup(err));
	free(err);
}

/* ------------------------------------------------------------ completion */

static void req_free(struct store_req *req)
{
	store_queue_in_clear(&req->queue);
	for (size_t i = 0; i < req->copy_count; i++) {
		free(req->copies[i].delivered_to);
		free(req->copies[i].mailbox);
	}
	free(req->copies);
	free(req->return_path);
	free(req->queue_sender);
	free(req->body);
	free(req->dsn);
	free(req->error);
	store_summary_data_free(&req->summary);
	free(req);
}

static void deliver_done(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what;
	struct store_req *req = arg;

	req->cb(req->ctx, req->status, req->error);
	req_free(req);
}

static void op_async_done(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what;
	struct store_req *req = arg;
	struct store_op *op = req->op;

	req->cb(req->ctx, req->status, req->error);
	op_release(op);
	if (req->op_free != NULL)
		req->op_free(op);
	free(req->error);
	free(req);
}

static void complete(struct store *store, struct store_req *req)
{
	if (req->kind == REQ_OP && req->async) {
		if (req->base != NULL &&
		    event_base_once(req->base, -1, EV_TIMEOUT, op_async_done, req,
				    &(struct timeval){ 0, 0 }) == 0)
			return;
		op_async_done(-1, 0, req);
		return;
	}
	if (req->kind == REQ_OP) {
		pthread_mutex_lock(&store->lock);
		req->done = true;
		pthread_cond_broadcast(&store->done_cond);
		pthread_mutex_unlock(&store->lock);
		return;
	}
	if (req->status < 0)
		log_warn("store", "event=delivery_failed copies=%zu error=%s", req->copy_count,
			 log_quote(req->error));
	if (req->base != NULL &&
	    event_base_once(req->base, -1, EV_TIMEOUT, deliver_done, req,
			    &(struct timeval){ 0, 0 }) == 0)
		return;
	if (req->base != NULL)
		log_error("store", "event=callback_schedule_failed");
	deliver_done(-1, 0, req);
}

/* Is a message file still named by a row (COPY shares files)?  On error
 * the answer is yes: keeping a file is harmless (verify reports it),
 * losing one is not. */
static bool file_referenced(struct store *store, const char *path)
{
	const char *name = strrchr(path, '/');
	const char *err;
	sqlite3_stmt *st = store_stmt(&store->wconn, SQL_FILE_REFERENCED, &err);
	int rc;

	if (st == NULL)
		return true;
	sqlite3_bind_text(st, 1, name ? name + 1 : path, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc != SQLITE_DONE;
}

static int cmp_event(const void *a, const void *b)
{
	const struct notify_event *x = a, *y = b;

	if (x->user_id != y->user_id)
		return x->user_id < y->user_id ? -1 : 1;
	if (x->mailbox_id != y->mailbox_id)
		return x->mailbox_id < y->mailbox_id ? -1 : 1;
	return x->modseq < y->modseq ? -1 : x->modseq > y->modseq;
}

/* One NOTIFY_MESSAGE_NEW per mailbox the batch's deliveries reached, with
 * the newest modseq (sorted, so the cost stays O(n log n) per batch). */
static void publish_deliveries(struct store_req **reqs, size_t n)
{
	struct notify_event *evs = NULL;
	size_t count = 0, alloc = 0;

	for (size_t i = 0; i < n; i++) {
		struct store_req *req = reqs[i];
		if (req->kind != REQ_DELIVER || req->status < 0)
			continue;
		for (size_t j = 0; j < req->copy_count; j++) {
			if (count == alloc) {
				alloc = alloc ? alloc * 2 : 64;
				evs = xrealloc(evs, alloc * sizeof(*evs));
			}
			evs[count++] = (struct notify_event){
				.user_id = req->copies[j].user_id,
				.mailbox_id = req->copies[j].mailbox_id,
				.kinds = NOTIFY_MESSAGE_NEW,
				.modseq = (uint64_t)req->copies[j].modseq,
			};
		}
	}
	if (count > 1)
		qsort(evs, count, sizeof(*evs), cmp_event);
	for (size_t i = 0; i < count; i++) {
		if (i + 1 < count && evs[i + 1].user_id == evs[i].user_id &&
		    evs[i + 1].mailbox_id == evs[i].mailbox_id)
			continue;       /* the last of a run has the highest modseq */
		notify_publish(&evs[i]);
	}
	free(evs);
}

static void process_batch(struct store *store, struct store_req **reqs, size_t n)
{
	bool touched[256] = { false };
	bool any_files = false;
	char *err = NULL;

	for (size_t i = 0; i < n; i++) {
		if (reqs[i]->kind == REQ_DELIVER && reqs[i]->prewritten)
			any_files = true;
		else if (reqs[i]->kind == REQ_DELIVER && reqs[i]->status == 0 &&
			 write_copies(store, reqs[i], touched) == 0)
			any_files = true;
		if (reqs[i]->kind == REQ_OP && reqs[i]->op->file_data != NULL &&
		    write_op_file(store, reqs[i], touched) == 0)
			any_files = true;
	}
	if (any_files && sync_batch(store, touched, &err) < 0) {
		for (size_t i = 0; i < n; i++) {
			if (reqs[i]->kind == REQ_DELIVER ||
			    (reqs[i]->kind == REQ_OP && reqs[i]->op->file_data != NULL))
				req_fail(reqs[i], xstrdup(err));
		}
		free(err);
	}
	commit_batch(store, reqs, n);
	/* one read transaction for the file_referenced() lookups below,
	 * rather than one each (a QUIT may release hundreds of files) */
	bool reading = false;
	for (size_t i = 0; i < n && !reading; i++) {
		if (reqs[i]->kind == REQ_OP && reqs[i]->status == 0 && reqs[i]->op->unlink_count > 0)
			reading = store_exec(&store->wconn, "BEGIN", NULL) == 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct store_req *req = reqs[i];

		if (req->kind == REQ_DELIVER && req->status < 0)
			req_unlink_files(store, req);
		if (req->kind == REQ_OP && req->status < 0)
			unlink_op_file(store, req->op);
		if (req->kind == REQ_OP && req->status == 0) {
			for (size_t j = 0; j < req->op->unlink_count; j++) {
				const char *path = req->op->unlink_paths[j];
				bool recycle = req->op->unlink_recycle != NULL &&
					req->op->unlink_recycle[j];
				if (file_referenced(store, path))
					continue;
				if (recycle && spare_put(store, path) == 0)
					continue;
				if (req->op->unlink_journaled && !recycle) {
					/* after the reply, on the unlink thread */
					store_unlinker_push(store, req->op->unlink_paths[j]);
					req->op->unlink_paths[j] = NULL;
					continue;
				}
				if (unlink(path) < 0 && errno != ENOENT)
					log_warn("store", "event=unlink_failed path=%s error=%s",
						 log_quote(path), log_quote(strerror(errno)));
			}
			for (size_t j = 0; j < req->op->event_count; j++)
				notify_publish(&req->op->events[j]);
		}
		if (req->kind == REQ_OP && req->op->unlink_journaled) {
			store_unlinker_release(store);
			req->op->unlink_journaled = false;
		}
	}
	if (reading)
		store_exec(&store->wconn, "COMMIT", NULL);
	publish_deliveries(reqs, n);
	store_search_notify(store);     /* index the new text, off this thread */
	for (size_t i = 0; i < n; i++)
		complete(store, reqs[i]);
}

static void *commit_thread(void *arg)
{
	struct store *store = arg;
	unsigned max = store->opts.commit_batch ? store->opts.commit_batch : 256;
	struct store_req **reqs = xcalloc(max, sizeof(*reqs));

	for (;;) {
		size_t n = 0;

		pthread_mutex_lock(&store->lock);
		while (store->head == NULL && !store->stopping)
			pthread_cond_wait(&store->cond, &store->lock);
		if (store->head == NULL) {
			pthread_mutex_unlock(&store->lock);
			break;
		}
		while (store->head != NULL && n < max) {
			reqs[n++] = store->head;
			store->head = store->head->next;
		}
		if (store->head == NULL)
			store->tail = &store->head;
		pthread_mutex_unlock(&store->lock);

		process_batch(store, reqs, n);
	}
	free(reqs);
	return NULL;
}

int store_commit_start(struct store *store, const char **error_r)
{
	for (unsigned i = 0; i < 256; i++)
		store->subdir_fd[i] = -1;
	store->head = NULL;
	store->tail = &store->head;
	store->msgdir_fd = open(store->msg_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (store->msgdir_fd < 0) {
		*error_r = store_errf("cannot open %s: %s", store->msg_dir, strerror(errno));
		return -1;
	}
	/* before any thread writes files (see subdir_fd) */
	for (unsigned i = 0; i < 256; i++)
		(void)subdir_fd_open(store, i);
	spare_open(store);
	store_unlinker_start(store);    /* uses wconn: before the commit thread */
	int rc = pthread_create(&store->thread, NULL, commit_thread, store);
	if (rc != 0) {
		*error_r = store_errf("cannot start the commit thread: %s", strerror(rc));
		store_unlinker_stop(store);
		spare_close(store);
		close(store->msgdir_fd);
		store->msgdir_fd = -1;
		return -1;
	}
	store->thread_started = true;
	return 0;
}

void store_commit_stop(struct store *store)
{
	if (!store->thread_started)
		return;
	pthread_mutex_lock(&store->lock);
	store->stopping = true;
	pthread_cond_signal(&store->cond);
	pthread_mutex_unlock(&store->lock);
	pthread_join(store->thread, NULL);
	store->thread_started = false;
	store_unlinker_stop(store);     /* unlinks what is still queued */
	for (unsigned i = 0; i < 256; i++) {
		if (store->subdir_fd[i] >= 0)
			close(store->subdir_fd[i]);
		store->subdir_fd[i] = -1;
	}
	spare_close(store);
	close(store->msgdir_fd);
	store->msgdir_fd = -1;
}

static void enqueue(struct store *store, struct store_req *req)
{
	pthread_mutex_lock(&store->lock);
	req->next = NULL;
	*store->tail = req;
	store->tail = &req->next;
	pthread_cond_signal(&store->cond);
	pthread_mutex_unlock(&store->lock);
}

/* ------------------------------------------------------------ public API */

int store_run_op(struct store *store, struct store_op *op, const char **error_r)
{
	struct store_req *req;
	int status;

	if (!store->thread_started) {
		*error_r = "store opened read-only";
		return -1;
	}
	if (pthread_equal(pthread_self(), store->thread)) {
		/* it would wait for itself forever */
		*error_r = "synchronous store write from a completion on the commit thread";
		return -1;
	}
	req = xcalloc(1, sizeof(*req));
	req->kind = REQ_OP;
	req->op = op;
	enqueue(store, req);
	pthread_mutex_lock(&store->lock);
	while (!req->done)
		pthread_cond_wait(&store->done_cond, &store->lock);
	pthread_mutex_unlock(&store->lock);
	status = req->status;
	if (status < 0)
		*error_r = store_err_take(req->error);
	else
		free(req->error);
	op_release(op);
	free(req);
	return status;
}

int store_op_submit(struct store *store, struct store_op *op, void (*op_free)(struct store_op *op),
		    struct event_base *base, store_done_cb *cb, void *ctx)
{
	struct store_req *req;

	if (!store->thread_started || cb == NULL)
		return -1;
	req = xcalloc(1, sizeof(*req));
	req->kind = REQ_OP;
	req->op = op;
	req->async = true;
	req->op_free = op_free;
	req->base = base;
	req->cb = cb;
	req->ctx = ctx;
	enqueue(store, req);
	return 0;
}

static bool header_value_ok(const char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			return false;
	return true;
}

int store_deliver(struct store *store, struct event_base *base, const struct store_delivery *d,
		  store_done_cb *cb, void *ctx)
{
	struct store_req *req;

	if (!store->thread_started || d->rcpt_count + d->remote_count == 0 || cb == NULL ||
	    (d->body == NULL && d->body_len > 0))
		return -1;
	if (d->return_path && !header_value_ok(d->return_path))
		return -1;
	if (d->queue_sender && !header_value_ok(d->queue_sender))
		return -1;
	for (size_t i = 0; i < d->rcpt_count; i++) {
		if (d->rcpts[i].delivered_to == NULL || !header_value_ok(d->rcpts[i].delivered_to))
			return -1;
	}
	req = xcalloc(1, sizeof(*req));
	req->kind = REQ_DELIVER;
	req->store = store;
	req->base = base;
	req->cb = cb;
	req->ctx = ctx;
	req->return_path = xstrdup(d->return_path ? d->return_path : "");
	req->body = xmalloc(d->body_len + 1);
	if (d->body_len > 0)
		memcpy(req->body, d->body, d->body_len);
	req->body[d->body_len] = '\0';
	req->body_len = d->body_len;
	req->dsn = d->dsn ? xstrdup(d->dsn) : NULL;
	req->internal_date = d->internal_date ? d->internal_date : clock_now();
	req->copies = xcalloc(d->rcpt_count, sizeof(*req->copies));
	req->copy_count = d->rcpt_count;
	for (size_t i = 0; i < d->rcpt_count; i++) {
		req->copies[i].user_id = d->rcpts[i].user_id;
		req->copies[i].delivered_to = xstrdup(d->rcpts[i].delivered_to);
		req->copies[i].mailbox = d->rcpts[i].mailbox ? xstrdup(d->rcpts[i].mailbox) : NULL;
	}
	if (d->remote_count > 0) {
		req->queued = true;
		req->queue_sender = xstrdup(d->queue_sender ? d->queue_sender : req->return_path);
		if (store_queue_in_copy(&req->queue, d) < 0) {
			req_free(req);
			return -1;
		}
	}
	/* Summarised once, here on the caller's thread, over the header lines
	 * every copy's file starts with (only their values differ, and no
	 * summary field reads them).  Only mailbox copies have a summary row:
	 * a message that only enters the queue skips the header parse. */
	if (req->copy_count > 0) {
		char *prefix = xasprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n",
					 req->return_path, req->copies[0].delivered_to);
		req->summary = store_summary_compute(prefix, strlen(prefix), req->body,
						     req->body_len);
		free(prefix);
	}
	/* In SYNCFS mode nothing per file needs the commit thread, so a small
	 * message's files are written here, on the caller's thread: the commit
	 * thread's batch is then only the flush and the index transaction, and
	 * its latency is what every waiting session pays.  Large messages stay
	 * on the commit thread so an event loop never writes megabytes. */
	if (store->opts.fsync_mode == STORE_FSYNC_SYNCFS &&
	    d->body_len * (d->rcpt_count + (d->remote_count > 0)) <= STORE_PREWRITE_MAX) {
		bool touched[256] = { false };
		req->prewritten = write_copies(store, req, touched) == 0;
	}
	enqueue(store, req);
	return 0;
}

struct sync_wait {
	struct store *store;
	bool done;
	int status;
	char *error;
};

static void sync_done(void *ctx, int status, const char *error)
{
	struct sync_wait *w = ctx;

	pthread_mutex_lock(&w->store->lock);
	w->status = status;
	w->error = error ? xstrdup(error) : NULL;
	w->done = true;
	pthread_cond_broadcast(&w->store->done_cond);
	pthread_mutex_unlock(&w->store->lock);
}

int store_deliver_sync(struct store *store, const struct store_delivery *d, const char **error_r)
{
	struct sync_wait w = { .store = store };

	if (store->thread_started && pthread_equal(pthread_self(), store->thread)) {
		*error_r = "synchronous store write from a completion on the commit thread";
		return -1;
	}
	if (store_deliver(store, NULL, d, sync_done, &w) < 0) {
		*error_r = store->thread_started ? "invalid delivery request" :
			"store opened read-only";
		return -1;
	}
	pthread_mutex_lock(&store->lock);
	while (!w.done)
		pthread_cond_wait(&store->done_cond, &store->lock);
	pthread_mutex_unlock(&store->lock);
	if (w.status < 0) {
		*error_r = store_err_take(w.error ? w.error : xstrdup("delivery failed"));
		return -1;
	}
	free(w.error);
	return 0;
}
