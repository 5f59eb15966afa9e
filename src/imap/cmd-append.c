/* APPEND (RFC 9051 6.3.12) with UIDPLUS's APPENDUID (RFC 4315),
 * APPENDLIMIT (RFC 7889), UTF8 (literal) (RFC 6855 4), MULTIAPPEND (RFC
 * 3502) and CATENATE (RFC 4469).
 *
 * Every message of the command is assembled and checked before the first
 * one is stored: CATENATE parts are joined (TEXT literals as sent, URLs
 * resolved to a message of the user's own mailboxes, or one of its
 * sections, read from the store), sizes are held to limits.message_size
 * ([TOOBIG]), the target must exist ([TRYCREATE]) and the whole batch must
 * fit the quota ([OVERQUOTA]).  The messages are then appended one by one
 * in order; should the store fail on one of them (a disk error, a quota
 * changed meanwhile) the ones already appended are expunged again, so the
 * command appends all of its messages or none (RFC 3502 3).  The reply is
 * OK [APPENDUID uidvalidity uid-set].
 *
 * A URL that does not parse, names another user or server, a missing
 * mailbox or message, a UIDVALIDITY that does not match, or a section the
 * message lacks answers NO [BADURL url] (RFC 4469 4). */
#include "imap/imap-private.h"
#include "imap/url.h"
#include "lib/config.h"
#include "lib/log.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct append_item {
	char *data;
	size_t len;
	char *flags;
	time_t date;
};

struct append_ctx {
	struct imap_session *s;
	char *mailbox;              /* store name */
	int64_t mailbox_id;
	struct append_item *items;
	size_t count, next;
	uint32_t uidvalidity;
	uint32_t *uids;             /* appended so far */
	char *fail_code, *fail_error;   /* the failure, answered after the rollback */
};

static void append_ctx_free(struct append_ctx *c)
{
	for (size_t i = 0; i < c->count; i++) {
		free(c->items[i].data);
		free(c->items[i].flags);
	}
	free(c->items);
	free(c->uids);
	free(c->mailbox);
	free(c->fail_code);
	free(c->fail_error);
	free(c);
}

static void reply_failure(struct imap_session *s, const char *code, const char *error)
{
	if (code != NULL && strcmp(code, "NONEXISTENT") == 0)
		imap_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist");
	else
		imap_store_failed(s, "APPEND", code, error);
}

/* ---- CATENATE URLs ---- */

struct uid_lookup {
	uint32_t uid;
	char *path;
	int64_t size;
};

static int uid_found(void *ctx, const struct store_message *m)
{
	struct uid_lookup *l = ctx;

	if (m->uid == l->uid) {
		l->path = xstrdup(m->path);
		l->size = m->size;
	}
	return 1;   /* the first row at or above the UID decides */
}

static int read_file(const char *path, int64_t size, struct buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char chunk[65536];
	int64_t got = 0;

	if (fd < 0)
		return -1;
	while (got < size) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if ((int64_t)n > size - got)
			n = (ssize_t)(size - got);
		buf_append(out, chunk, (size_t)n);
		got += n;
	}
	close(fd);
	return got == size ? 0 : -1;
}

/* Append the section (and partial) u names of msg[0..len) to out, the
 * section text parsed by the FETCH parser ("x FETCH 1 BODY.PEEK[section]
 * <o.l>"): one grammar for both.  The parsed item borrows from the reader,
 * so the extraction happens before the reader goes.  false: no such
 * section, or not a valid one. */
static bool section_extract(struct imap_session *s, const struct imap_url *u, const char *msg,
			    size_t len, struct buf *out)
{
	struct imap_reader_limits lim = { 0 };
	struct imap_reader *r;
	struct imap_read_result res;
	struct imap_fetch_request req;
	struct imap_parse_error err;
	struct buf line;
	bool ok = false;

	if (strpbrk(u->section != NULL ? u->section : "", "\r\n[]{}") != NULL)
		return false;
	buf_init(&line, BUF_UNLIMITED);
	buf_printf(&line, "x FETCH 1 BODY.PEEK[%s]", u->section != NULL ? u->section : "");
	if (u->has_partial)
		buf_printf(&line, "<%llu.%llu>", (unsigned long long)u->offset,
			   (unsigned long long)(u->length ? u->length : (uint64_t)INT64_MAX - 1));
	buf_append_str(&line, "\r\n");
	r = imap_reader_create(&lim);
	imap_reader_feed(r, line.data, line.len, &res);
	if (res.status == IMAP_READ_OK &&
	    imap_fetch_parse(res.cmd.args, res.cmd.nargs, false, &s->arena, &req, &err) == 0 &&
	    req.nitems == 1 && req.items[0].att == IMAP_FETCH_BODY_SECTION)
		ok = imap_fetch_section_bytes(msg, len, &req.items[0], out);
	imap_reader_destroy(&r);
	buf_free(&line);
	return ok;
}

/* Append the bytes url names to out; false when it names nothing this
 * user may read. */
static bool url_resolve(struct imap_session *s, struct slice url, struct buf *out)
{
	struct imap_url u;
	struct store_mailbox mb = { 0 };
	struct uid_lookup l = { 0 };
	const char *error = NULL;
	struct buf msg;
	bool ok = false;

	if (imap_url_parse(url, &s->arena, &u, &error) < 0)
		return false;
	if (u.host != NULL && strcasecmp(u.host, s->l->cfg->hostname) != 0)
		return false;
	if (u.user != NULL && strcasecmp(u.user, s->user) != 0)
		return false;
	if (store_mailbox_get(s->l->store, s->user_id, u.mailbox, &mb, &error) <= 0)
		goto out;
	if (u.uidvalidity != 0 && u.uidvalidity != mb.uidvalidity)
		goto out;
	l.uid = u.uid;
	if (store_message_list(s->l->store, mb.id, u.uid, uid_found, &l, &error) < 0 ||
	    l.path == NULL)
		goto out;
	buf_init(&msg, BUF_UNLIMITED);
	if (read_file(l.path, l.size, &msg) == 0) {
		if (u.section == NULL && !u.has_partial) {
			buf_append(out, msg.data, msg.len);
			ok = true;
		} else {
			ok = section_extract(s, &u, msg.data, msg.len, out);
		}
	}
	buf_free(&msg);
out:
	free(l.path);
	store_mailbox_clear(&mb);
	return ok;
}

/* Join a CATENATE message; false after replying NO. */
static bool catenate(struct imap_session *s, const struct imap_append_message *m,
		     struct buf *out)
{
	size_t max = s->l->cfg->limits.message_size;

	for (size_t i = 0; i < m->nparts; i++) {
		const struct imap_catenate_part *p = &m->parts[i];

		if (!p->url) {
			buf_append(out, p->data.p, p->data.len);
		} else if (!url_resolve(s, p->data, out)) {
			struct buf b;
			buf_init(&b, BUF_UNLIMITED);
			buf_append_str(&b, "[BADURL ");
			/* resp-text-code: an atom-ish URL; keep it printable */
			for (size_t k = 0; k < p->data.len && k < 512; k++) {
				char c = p->data.p[k];
				buf_append(&b, c > 0x20 && c < 0x7f && c != ']' ? &c : "?", 1);
			}
			buf_append_str(&b, "] URL does not name a readable message");
			imap_tagged(s, "NO", "%s", buf_cstr(&b));
			buf_free(&b);
			return false;
		}
		if (out->len > max) {
			imap_tagged(s, "NO", "[TOOBIG] Message too large");
			return false;
		}
	}
	return true;
}

/* ---- storing ---- */

static bool append_next(struct append_ctx *c);

static void rollback_done(void *ctx, const struct store_write_result *r)
{
	struct append_ctx *c = ctx;
	struct imap_session *s = c->s;

	if (r->status < 0)
		log_warn("imap", "sid=%s event=multiappend_rollback_failed error=%s", s->c.id,
			 log_quote(r->error ? r->error : ""));
	if (s->c.closed) {
		append_ctx_free(c);
		imap_session_unref(s);
		return;
	}
	reply_failure(s, c->fail_code, c->fail_error);
	append_ctx_free(c);
	if (imap_session_unref(s))
		imap_resume(s);
}

static void append_done(void *ctx, const struct store_write_result *r)
{
	struct append_ctx *c = ctx;
	struct imap_session *s = c->s;

	if (r->status == 0) {
		c->uidvalidity = r->uidvalidity;
		c->uids[c->next++] = r->count > 0 ? r->dst_uids[0] : 0;
		if (s->view != NULL)
			s->view->dirty = true;
		if (c->next < c->count && !s->c.closed) {
			if (append_next(c))
				return;
			struct store_write_result fail = { .status = -1,
							   .error = "store unavailable" };
			append_done(c, &fail);
			return;
		}
	}
	if (s->c.closed) {
		/* the client left halfway: the part already stored goes too */
		if (c->next > 0 && (r->status < 0 || c->next < c->count) &&
		    store_expunge(s->l->store, s->c.base, c->mailbox_id, c->uids, c->next,
				  rollback_done, c) == 0)
			return;
		append_ctx_free(c);
		imap_session_unref(s);
		return;
	}
	if (r->status == 0) {
		struct buf b;
		buf_init(&b, BUF_UNLIMITED);
		imap_append_numset(&b, c->uids, c->next);
		imap_tagged(s, "OK", "[APPENDUID %u %s] APPEND completed", c->uidvalidity,
			    buf_cstr(&b));
		buf_free(&b);
	} else if (c->next > 0) {
		/* all or none: take back what was stored, then answer */
		c->fail_code = r->code != NULL ? xstrdup(r->code) : NULL;
		c->fail_error = xstrdup(r->error != NULL ? r->error : "");
		if (store_expunge(s->l->store, s->c.base, c->mailbox_id, c->uids, c->next,
				  rollback_done, c) == 0)
			return;
		log_warn("imap", "sid=%s event=multiappend_rollback_failed error=%s", s->c.id,
			 "store refused the expunge");
		reply_failure(s, r->code, r->error);
	} else {
		reply_failure(s, r->code, r->error);
	}
	append_ctx_free(c);
	if (imap_session_unref(s))
		imap_resume(s);
}

/* Queue the next message; false when the store refused to. */
static bool append_next(struct append_ctx *c)
{
	struct imap_session *s = c->s;
	struct append_item *it = &c->items[c->next];

	return store_append(s->l->store, s->c.base, s->user_id, c->mailbox, it->data, it->len,
			    it->flags, it->date, append_done, c) == 0;
}

void imap_cmd_append(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_append_request req;
	struct imap_parse_error err;
	struct store_mailbox mb = { 0 };
	const char *error = NULL;
	size_t max = s->l->cfg->limits.message_size;
	int64_t total = 0;
	struct append_ctx *c;
	int rc;

	if (imap_append_parse(cmd->args, cmd->nargs, &s->arena, &req, &err) < 0) {
		imap_parse_failed(s, &err);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->s = s;
	c->mailbox = imap_mailbox_from_wire(s, req.mailbox);
	if (c->mailbox == NULL) {
		append_ctx_free(c);
		imap_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist");
		return;
	}
	rc = store_mailbox_get(s->l->store, s->user_id, c->mailbox, &mb, &error);
	c->mailbox_id = mb.id;
	store_mailbox_clear(&mb);
	if (rc <= 0) {
		append_ctx_free(c);
		if (rc == 0)
			imap_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist");
		else
			imap_tagged(s, "NO", "[SERVERBUG] APPEND failed, try again later");
		return;
	}
	c->items = xcalloc(req.count, sizeof(*c->items));
	c->uids = xcalloc(req.count, sizeof(*c->uids));
	for (size_t i = 0; i < req.count; i++) {
		const struct imap_append_message *m = &req.msgs[i];
		struct append_item *it = &c->items[c->count++];
		struct buf data;

		if (m->utf8 && !s->utf8) {
			append_ctx_free(c);
			imap_bad(s, "APPEND UTF8 needs ENABLE UTF8=ACCEPT");
			return;
		}
		buf_init(&data, BUF_UNLIMITED);
		if (m->nparts > 0) {
			if (!catenate(s, m, &data)) {
				buf_free(&data);
				append_ctx_free(c);
				return;
			}
		} else {
			buf_append(&data, m->message.p, m->message.len);
		}
		it->len = data.len;
		it->data = buf_steal(&data);
		it->flags = m->has_flags ? imap_flags_string(&m->flags) : xstrdup("");
		it->date = m->has_date ? m->date : 0;
		if (it->len == 0) {
			append_ctx_free(c);
			imap_tagged(s, "NO", "Cannot append an empty message");
			return;
		}
		if (it->len > max) {
			append_ctx_free(c);
			imap_tagged(s, "NO", "[TOOBIG] Message too large");
			return;
		}
		total += (int64_t)it->len;
	}
	rc = store_quota_exceeded(s->l->store, s->user_id, total, &error);
	if (rc != 0) {
		append_ctx_free(c);
		if (rc > 0)
			imap_tagged(s, "NO", "[OVERQUOTA] Quota exceeded");
		else
			imap_tagged(s, "NO", "[SERVERBUG] APPEND failed, try again later");
		return;
	}
	s->c.waiting = true;
	imap_session_ref(s);
	if (!append_next(c)) {
		s->c.waiting = false;
		imap_session_unref(s);
		append_ctx_free(c);
		imap_tagged(s, "NO", "[SERVERBUG] Cannot change the store now, try again later");
	}
}
