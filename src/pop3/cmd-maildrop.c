/* The maildrop: opening it at login (lock, EXPIRE, snapshot) and the
 * TRANSACTION-state commands STAT, LIST, UIDL, RETR, TOP, DELE, RSET and
 * QUIT with the UPDATE state (RFC 1939 5, 6, 7; RFC 2449 6.5 UIDL form,
 * 6.7 EXPIRE, 8.1 [IN-USE] and [SYS/TEMP]).
 *
 * Invariants:
 *  - The snapshot taken at login fixes the message numbers for the whole
 *    session; messages delivered later are not visible until the next
 *    login.  A message that another session (IMAP) expunged meanwhile
 *    answers -ERR at RETR/TOP because its file is gone; the other
 *    commands keep answering from the snapshot.
 *  - UIDL is Dovecot's default "%08Xu%08Xv": the IMAP UID and the
 *    mailbox's UIDVALIDITY, uppercase hex, so it is stable across sessions,
 *    equal whichever protocol is used, and clients moved from Dovecot do not
 *    download everything again.
 *  - RETR sends the stored file byte for byte (it already has CRLF line
 *    ends and the trace header), dot-stuffed, in chunks as the socket
 *    drains, so a large message never sits whole in memory.
 *  - Nothing changes in the store before QUIT; QUIT sends one store request
 *    (deletions, \Seen and the retrieval time for EXPIRE) and answers only
 *    once it is committed. */
#include "pop3/pop3-private.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "store/store.h"

#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POP3_RETR_FILL (256 * 1024)    /* output kept queued while streaming */

void pop3_maildrop_free(struct pop3_session *s)
{
	for (uint32_t i = 0; i < s->msg_count; i++)
		free(s->msgs[i].path);
	free(s->msgs);
	s->msgs = NULL;
	s->msg_count = s->live_count = 0;
	s->live_bytes = 0;
	if (s->locked) {
		pop3_lock_release(s->user_id);
		s->locked = false;
	}
	free(s->user);
	s->user = NULL;
}

/* ---- opening ---- */

struct snapshot_ctx {
	struct pop3_session *s;
	size_t alloc;
	bool too_many;
};

static int snapshot_add(void *ctx, const struct store_message *m)
{
	struct snapshot_ctx *c = ctx;
	struct pop3_session *s = c->s;

	if (s->msg_count >= POP3_MAX_MESSAGES) {
		c->too_many = true;
		return 1;
	}
	if (s->msg_count == c->alloc) {
		c->alloc = c->alloc ? c->alloc * 2 : 64;
		s->msgs = xrealloc(s->msgs, c->alloc * sizeof(*s->msgs));
	}
	s->msgs[s->msg_count++] = (struct pop3_msg){
		.uid = m->uid,
		.size = m->size,
		.path = xstrdup(m->path),
	};
	s->live_bytes += m->size;
	return 0;
}

/* The login is refused after authentication succeeded: back to
 * AUTHORIZATION with nothing held. */
static void maildrop_refuse(struct pop3_session *s, const char *reply)
{
	pop3_maildrop_free(s);
	s->user_id = 0;
	s->state = POP3_STATE_AUTHORIZATION;
	pop3_fail(s, "%s", reply);
}

static void maildrop_snapshot(struct pop3_session *s)
{
	struct store_mailbox mb = { 0 };
	struct snapshot_ctx c = { .s = s };
	const char *error = NULL;
	int rc;

	rc = store_mailbox_get(s->l->store, s->user_id, "INBOX", &mb, &error);
	if (rc < 0) {
		log_error("pop3", "sid=%s event=maildrop_error user=%s error=%s", s->c.id,
			  log_quote(s->user), log_quote(error));
		maildrop_refuse(s, "[SYS/TEMP] Cannot open the maildrop, try again later");
		return;
	}
	if (rc > 0) {
		s->mailbox_id = mb.id;
		s->uidvalidity = mb.uidvalidity;
		if (store_message_list(s->l->store, mb.id, 1, snapshot_add, &c, &error) < 0) {
			store_mailbox_clear(&mb);
			log_error("pop3", "sid=%s event=maildrop_error user=%s error=%s", s->c.id,
				  log_quote(s->user), log_quote(error));
			maildrop_refuse(s, "[SYS/TEMP] Cannot open the maildrop, try again later");
			return;
		}
		store_mailbox_clear(&mb);
		if (c.too_many) {
			log_warn("pop3", "sid=%s event=maildrop_too_large user=%s", s->c.id,
				 log_quote(s->user));
			maildrop_refuse(s, "[SYS/PERM] Maildrop too large for POP3, use IMAP");
			return;
		}
	}
	s->live_count = s->msg_count;
	s->state = POP3_STATE_TRANSACTION;
	log_info("pop3", "sid=%s event=login ip=%s user=%s messages=%u bytes=%lld", s->c.id, s->c.ip,
		 log_quote(s->user), s->msg_count, (long long)s->live_bytes);
	pop3_ok(s, "Logged in, %u messages (%lld octets)", s->msg_count, (long long)s->live_bytes);
}

static void maildrop_expired(void *ctx, int status, const char *error)
{
	struct pop3_session *s = ctx;

	if (s->c.closed) {
		pop3_session_unref(s);
		return;
	}
	s->c.waiting = false;
	if (status < 0) {
		/* expiry is housekeeping: log it and serve the maildrop anyway */
		log_warn("pop3", "sid=%s event=expire_failed user=%s error=%s", s->c.id,
			 log_quote(s->user), log_quote(error));
	}
	maildrop_snapshot(s);
	if (pop3_session_unref(s))
		pop3_resume(s);
}

void pop3_maildrop_open(struct pop3_session *s, int64_t user_id, const char *address,
			const char *mech)
{
	const struct config *cfg = s->l->cfg;

	log_info("auth", "event=auth_ok proto=pop3 sid=%s ip=%s user=%s mech=%s", s->c.id, s->c.ip,
		 log_quote(address), mech);
	if (!pop3_lock_acquire(user_id)) {
		log_info("pop3", "sid=%s event=maildrop_in_use ip=%s user=%s", s->c.id, s->c.ip,
			 log_quote(address));
		pop3_fail(s, "[IN-USE] Mailbox is locked by another POP3 session");
		return;
	}
	s->locked = true;
	s->user_id = user_id;
	s->user = xstrdup(address);

	if (cfg->pop3.expire_days > 0) {
		struct store_mailbox mb = { 0 };
		const char *error = NULL;

		if (store_mailbox_get(s->l->store, user_id, "INBOX", &mb, &error) > 0) {
			struct store_pop3_update u = {
				.user_id = user_id,
				.mailbox_id = mb.id,
				.expire_before = clock_now() - (time_t)cfg->pop3.expire_days * 86400,
			};
			store_mailbox_clear(&mb);
			if (store_pop3_update(s->l->store, s->c.base, &u, maildrop_expired, s) == 0) {
				s->c.waiting = true;
				pop3_session_ref(s);
				return;
			}
		}
	}
	maildrop_snapshot(s);
}

/* ---- message lookup ---- */

/* The message a number argument names, or NULL after an -ERR reply. */
static struct pop3_msg *msg_arg(struct pop3_session *s, struct slice arg, uint32_t *num_r)
{
	uint32_t n;

	if (pop3_number_parse(arg, UINT32_MAX, &n) < 0) {
		pop3_err(s, "Invalid message number");
		return NULL;
	}
	if (n == 0 || n > s->msg_count) {
		pop3_err(s, "There is no message %u", n);
		return NULL;
	}
	if (s->msgs[n - 1].deleted) {
		pop3_err(s, "Message %u is deleted", n);
		return NULL;
	}
	*num_r = n;
	return &s->msgs[n - 1];
}

/* ---- STAT, LIST, UIDL ---- */

void pop3_cmd_stat(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (cmd->argc > 0) {
		pop3_err(s, "STAT takes no arguments");
		return;
	}
	pop3_ok(s, "%u %lld", s->live_count, (long long)s->live_bytes);
}

/* LIST and UIDL: one message, or every live one as a multi-line reply. */
static void list_or_uidl(struct pop3_session *s, const struct pop3_command *cmd, bool uidl)
{
	struct pop3_msg *m;
	uint32_t n;

	if (cmd->argc > 1) {
		pop3_err(s, "Too many arguments");
		return;
	}
	if (cmd->argc == 1) {
		if ((m = msg_arg(s, cmd->args[0], &n)) == NULL)
			return;
		if (uidl)
			pop3_ok(s, "%u %08X%08X", n, m->uid, s->uidvalidity);
		else
			pop3_ok(s, "%u %lld", n, (long long)m->size);
		return;
	}
	struct evbuffer *out;
	if (s->c.bev == NULL)
		return;
	out = bufferevent_get_output(s->c.bev);
	if (uidl)
		evbuffer_add_printf(out, "+OK\r\n");
	else
		evbuffer_add_printf(out, "+OK %u messages (%lld octets)\r\n", s->live_count,
				    (long long)s->live_bytes);
	for (uint32_t i = 0; i < s->msg_count; i++) {
		m = &s->msgs[i];
		if (m->deleted)
			continue;
		if (uidl)
			evbuffer_add_printf(out, "%u %08X%08X\r\n", i + 1, m->uid, s->uidvalidity);
		else
			evbuffer_add_printf(out, "%u %lld\r\n", i + 1, (long long)m->size);
	}
	evbuffer_add(out, ".\r\n", 3);
}

void pop3_cmd_list(struct pop3_session *s, const struct pop3_command *cmd)
{
	list_or_uidl(s, cmd, false);
}

void pop3_cmd_uidl(struct pop3_session *s, const struct pop3_command *cmd)
{
	list_or_uidl(s, cmd, true);
}

/* ---- RETR, TOP ---- */

static void emit_out(void *ctx, const char *p, size_t len)
{
	evbuffer_add(ctx, p, len);
}

static void retr_end(struct pop3_session *s)
{
	close(s->retr_fd);
	s->retr_fd = -1;
}

/* One read buffer per loop thread, allocated at its first RETR and kept for
 * the thread's life: a malloc/free of 64 KiB per RETR made glibc return and
 * re-fault the pages every time (page faults were the loop's largest cost
 * in bench/pop3). */
static __thread char *retr_chunk;

bool pop3_retr_pump(struct pop3_session *s)
{
	struct evbuffer *out;
	char *chunk;

	if (s->retr_fd < 0 || s->c.bev == NULL || s->c.closed)
		return false;
	out = bufferevent_get_output(s->c.bev);
	if (retr_chunk == NULL)
		retr_chunk = xmalloc(POP3_RETR_CHUNK);
	chunk = retr_chunk;
	while (evbuffer_get_length(out) < POP3_RETR_FILL) {
		ssize_t n = read(s->retr_fd, chunk, POP3_RETR_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* mid-response: the client cannot be told; hang up so it
			 * does not take a truncated message for a whole one */
			log_error("pop3", "sid=%s event=retr_read_failed user=%s error=%s", s->c.id,
				  log_quote(s->user), log_quote(strerror(errno)));
			retr_end(s);
			pop3_close(s, "message read failed");
			return false;
		}
		if (n > 0) {
			pop3_stuff_feed(&s->stuff, chunk, (size_t)n, emit_out, out);
			s->retr_bytes += (uint64_t)n;
		}
		if (n == 0 || s->stuff.done) {
			pop3_stuff_finish(&s->stuff, emit_out, out);
			retr_end(s);
			return false;
		}
	}
	return true;
}

static void retr_start(struct pop3_session *s, uint32_t n, struct pop3_msg *m, bool top,
		       uint32_t lines)
{
	int fd = open(m->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT) {
			log_info("pop3", "sid=%s event=message_gone user=%s uid=%u", s->c.id,
				 log_quote(s->user), m->uid);
			pop3_fail(s, "Message %u was deleted by another session", n);
		} else {
			log_error("pop3", "sid=%s event=retr_open_failed user=%s path=%s error=%s",
				  s->c.id, log_quote(s->user), log_quote(m->path),
				  log_quote(strerror(errno)));
			pop3_fail(s, "[SYS/TEMP] Cannot read message %u", n);
		}
		return;
	}
	if (top)
		pop3_ok(s, "Top of message %u follows", n);
	else
		pop3_ok(s, "%lld octets", (long long)m->size);
	if (!top)
		m->retrieved = true;
	s->retr_fd = fd;
	s->retr_index = n;
	s->retr_bytes = 0;
	pop3_stuff_init(&s->stuff, top, lines);
	s->c.waiting = true;
	if (!pop3_retr_pump(s))
		s->c.waiting = false;
	/* else the write callback pumps the rest and resumes */
}

void pop3_cmd_retr(struct pop3_session *s, const struct pop3_command *cmd)
{
	struct pop3_msg *m;
	uint32_t n;

	if (cmd->argc != 1) {
		pop3_err(s, "Syntax: RETR msg");
		return;
	}
	if ((m = msg_arg(s, cmd->args[0], &n)) != NULL)
		retr_start(s, n, m, false, 0);
}

void pop3_cmd_top(struct pop3_session *s, const struct pop3_command *cmd)
{
	struct pop3_msg *m;
	uint32_t n, lines;

	if (cmd->argc != 2) {
		pop3_err(s, "Syntax: TOP msg lines");
		return;
	}
	if (pop3_number_parse(cmd->args[1], UINT32_MAX, &lines) < 0) {
		pop3_err(s, "Invalid number of lines");
		return;
	}
	if ((m = msg_arg(s, cmd->args[0], &n)) != NULL)
		retr_start(s, n, m, true, lines);
}

/* ---- DELE, RSET ---- */

void pop3_cmd_dele(struct pop3_session *s, const struct pop3_command *cmd)
{
	struct pop3_msg *m;
	uint32_t n;

	if (cmd->argc != 1) {
		pop3_err(s, "Syntax: DELE msg");
		return;
	}
	if ((m = msg_arg(s, cmd->args[0], &n)) == NULL)
		return;
	m->deleted = true;
	s->live_count--;
	s->live_bytes -= m->size;
	pop3_ok(s, "Message %u deleted", n);
}

void pop3_cmd_rset(struct pop3_session *s, const struct pop3_command *cmd)
{
	if (cmd->argc > 0) {
		pop3_err(s, "RSET takes no arguments");
		return;
	}
	for (uint32_t i = 0; i < s->msg_count; i++) {
		if (s->msgs[i].deleted) {
			s->msgs[i].deleted = false;
			s->live_count++;
			s->live_bytes += s->msgs[i].size;
		}
	}
	pop3_ok(s, "%u messages (%lld octets)", s->live_count, (long long)s->live_bytes);
}

/* ---- QUIT and the UPDATE state ---- */

static void update_done(void *ctx, int status, const char *error)
{
	struct pop3_session *s = ctx;
	uint32_t deleted = s->msg_count - s->live_count;

	/* let the next login in before this session answers */
	if (s->locked) {
		pop3_lock_release(s->user_id);
		s->locked = false;
	}
	if (status < 0)
		log_error("pop3", "sid=%s event=update_failed user=%s error=%s", s->c.id,
			  log_quote(s->user), log_quote(error));
	else
		log_info("pop3", "sid=%s event=update user=%s deleted=%u", s->c.id,
			 log_quote(s->user), deleted);
	if (!s->c.closed) {
		s->c.waiting = false;
		if (status < 0)
			pop3_fail(s, "[SYS/TEMP] Deleting messages failed, they are kept");
		else
			pop3_ok(s, "Logging out, %u messages deleted", deleted);
		pop3_close(s, "QUIT");
	}
	pop3_session_unref(s);
}

void pop3_cmd_quit(struct pop3_session *s, const struct pop3_command *cmd)
{
	(void)cmd;
	uint32_t *dele = NULL, *retr = NULL;
	size_t ndele = 0, nretr = 0;

	if (s->state != POP3_STATE_TRANSACTION) {
		pop3_ok(s, "Logging out");
		pop3_close(s, "QUIT");
		return;
	}
	s->state = POP3_STATE_UPDATE;
	for (uint32_t i = 0; i < s->msg_count; i++) {
		if (s->msgs[i].deleted) {
			if (dele == NULL)
				dele = xmalloc(s->msg_count * sizeof(*dele));
			dele[ndele++] = s->msgs[i].uid;
		}
		if (s->msgs[i].retrieved) {
			if (retr == NULL)
				retr = xmalloc(s->msg_count * sizeof(*retr));
			retr[nretr++] = s->msgs[i].uid;
		}
	}
	if (s->mailbox_id > 0 && (ndele > 0 || nretr > 0)) {
		struct store_pop3_update u = {
			.user_id = s->user_id,
			.mailbox_id = s->mailbox_id,
			.expunge_uids = dele,
			.expunge_count = ndele,
			.retrieved_uids = retr,
			.retrieved_count = nretr,
			.to_trash = s->l->cfg->pop3.delete_to_trash,
		};
		int rc = store_pop3_update(s->l->store, s->c.base, &u, update_done, s);
		free(dele);
		free(retr);
		if (rc == 0) {
			s->c.waiting = true;
			pop3_session_ref(s);
			return;
		}
		pop3_session_ref(s);
		update_done(s, -1, "store refused the update");
		return;
	}
	free(dele);
	free(retr);
	pop3_session_ref(s);
	update_done(s, 0, NULL);
}
