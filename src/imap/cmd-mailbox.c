/* Mailbox management in the authenticated state: CREATE, DELETE, RENAME
 * (RFC 9051 6.3.4-6.3.6, RENAME of INBOX moves its messages), SUBSCRIBE,
 * UNSUBSCRIBE (6.3.7, 6.3.8), LIST (6.3.9, with the RFC 5258 selection and
 * return options the parser gives, RFC 3348 CHILDREN, RFC 6154
 * SPECIAL-USE), LSUB (RFC 3501 6.3.9), STATUS (6.3.11, RFC 8438 SIZE) and
 * APPEND (6.3.12, RFC 4315 APPENDUID, RFC 7889 APPENDLIMIT).
 *
 * Names cross the wire in modified UTF-7 (rev1) or UTF-8 (rev2) and are
 * UTF-8 with '/' as the hierarchy delimiter in the store.  Every write is
 * answered only once it is committed. */
#include "imap/imap-private.h"
#include "lib/config.h"
#include "lib/log.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- shared completion for the simple writes ---- */

static void mailbox_write_done(struct imap_session *s, const struct store_write_result *r,
			       const char *what)
{
	if (r->status < 0)
		imap_store_failed(s, what, r->code, r->error);
	else
		imap_tagged(s, "OK", "%s completed", what);
}

#define WRITE_CB(fn, what)                                                    \
	static void fn(void *ctx, const struct store_write_result *r)       \
	{                                                                     \
		struct imap_session *s = ctx;                                 \
		if (s->closed) {                                              \
			imap_session_unref(s);                                \
			return;                                               \
		}                                                             \
		mailbox_write_done(s, r, what);                               \
		if (imap_session_unref(s))                                    \
			imap_resume(s);                                       \
	}

WRITE_CB(create_done, "CREATE")
WRITE_CB(subscribe_done, "SUBSCRIBE")
WRITE_CB(unsubscribe_done, "UNSUBSCRIBE")

static void delete_done(void *ctx, const struct store_write_result *r)
{
	struct imap_session *s = ctx;

	if (s->closed) {
		imap_session_unref(s);
		return;
	}
	if (r->status == 0 && s->view != NULL) {
		struct store_mailbox mb = { 0 };
		const char *err = NULL;
		int rc = store_mailbox_get_by_id(s->l->store, s->view->mailbox_id, &mb, &err);
		store_mailbox_clear(&mb);
		if (rc == 0) {
			/* we deleted our own selected mailbox: leave it (RFC 9051 6.3.5) */
			imap_view_close(s);
			if (s->rev2)
				imap_untagged(s, "OK [CLOSED] Mailbox deleted");
		}
	}
	mailbox_write_done(s, r, "DELETE");
	if (imap_session_unref(s))
		imap_resume(s);
}

static void rename_done(void *ctx, const struct store_write_result *r)
{
	struct imap_session *s = ctx;

	if (s->closed) {
		imap_session_unref(s);
		return;
	}
	if (r->status == 0 && s->view != NULL) {
		struct store_mailbox mb = { 0 };
		const char *err = NULL;
		if (store_mailbox_get_by_id(s->l->store, s->view->mailbox_id, &mb, &err) > 0) {
			free(s->view->name);
			s->view->name = xstrdup(mb.name);
			store_mailbox_clear(&mb);
		}
		s->view->dirty = true;
	}
	mailbox_write_done(s, r, "RENAME");
	if (imap_session_unref(s))
		imap_resume(s);
}

/* Start an async store write: ref, waiting; undo when it was not queued. */
static bool write_started(struct imap_session *s, int rc)
{
	if (rc < 0) {
		s->waiting = false;
		imap_session_unref(s);
		imap_tagged(s, "NO", "[SERVERBUG] Cannot change the store now, try again later");
		return false;
	}
	return true;
}

static void write_begin(struct imap_session *s)
{
	s->waiting = true;
	imap_session_ref(s);
}

static char *mailbox_arg(struct imap_session *s, const struct imap_arg *arg, bool create)
{
	struct slice name;
	char *out;

	if (!imap_arg_astring(arg, &name))
		return NULL;
	/* CREATE "a/b/" declares a hierarchy: the trailing delimiter goes
	 * (RFC 9051 6.3.4) */
	if (create && name.len > 1 && name.p[name.len - 1] == '/')
		name.len--;
	out = imap_mailbox_from_wire(s, name);
	return out;
}

void imap_cmd_create(struct imap_session *s, const struct imap_command *cmd)
{
	char *name;

	if (cmd->nargs != 1) {
		imap_bad(s, "Syntax: CREATE mailbox");
		return;
	}
	name = mailbox_arg(s, &cmd->args[0], true);
	if (name == NULL) {
		imap_tagged(s, "NO", "[CANNOT] Invalid mailbox name");
		return;
	}
	if (strcmp(name, "INBOX") == 0) {
		free(name);
		imap_tagged(s, "NO", "[ALREADYEXISTS] Mailbox already exists");
		return;
	}
	write_begin(s);
	write_started(s, store_mailbox_create(s->l->store, s->base, s->user_id, name, NULL,
					      create_done, s));
	free(name);
}

void imap_cmd_delete(struct imap_session *s, const struct imap_command *cmd)
{
	char *name;

	if (cmd->nargs != 1) {
		imap_bad(s, "Syntax: DELETE mailbox");
		return;
	}
	name = mailbox_arg(s, &cmd->args[0], false);
	if (name == NULL) {
		imap_tagged(s, "NO", "[NONEXISTENT] Mailbox doesn't exist");
		return;
	}
	if (strcmp(name, "INBOX") == 0) {
		free(name);
		imap_tagged(s, "NO", "[CANNOT] INBOX cannot be deleted");
		return;
	}
	write_begin(s);
	write_started(s, store_mailbox_delete(s->l->store, s->base, s->user_id, name,
					      delete_done, s));
	free(name);
}

void imap_cmd_rename(struct imap_session *s, const struct imap_command *cmd)
{
	char *from, *to;

	if (cmd->nargs != 2) {
		imap_bad(s, "Syntax: RENAME from to");
		return;
	}
	from = mailbox_arg(s, &cmd->args[0], false);
	to = mailbox_arg(s, &cmd->args[1], true);
	if (from == NULL || to == NULL) {
		free(from);
		free(to);
		imap_tagged(s, "NO", "[CANNOT] Invalid mailbox name");
		return;
	}
	if (strcmp(to, "INBOX") == 0) {
		free(from);
		free(to);
		imap_tagged(s, "NO", "[ALREADYEXISTS] INBOX already exists");
		return;
	}
	write_begin(s);
	write_started(s, store_mailbox_rename(s->l->store, s->base, s->user_id, from, to,
					      rename_done, s));
	free(from);
	free(to);
}

void imap_cmd_subscribe(struct imap_session *s, const struct imap_command *cmd)
{
	bool sub = cmd->cmd == IMAP_CMD_SUBSCRIBE;
	char *name;

	if (cmd->nargs != 1) {
		imap_bad(s, "Syntax: %s mailbox", imap_cmd_name(cmd->cmd));
		return;
	}
	name = mailbox_arg(s, &cmd->args[0], false);
	if (name == NULL) {
		imap_tagged(s, "NO", "[CANNOT] Invalid mailbox name");
		return;
	}
	write_begin(s);
	write_started(s, store_subscribe(s->l->store, s->base, s->user_id, name, sub,
					 sub ? subscribe_done : unsubscribe_done, s));
	free(name);
}

/* ---- LIST / LSUB ---- */

struct mbox_entry {
	char *name;
	char *special_use;
	bool subscribed;
	bool exists;
};

struct mbox_list {
	struct mbox_entry *e;
	size_t count, alloc;
};

static struct mbox_entry *mbox_add(struct mbox_list *l, const char *name)
{
	if (l->count == l->alloc) {
		l->alloc = l->alloc ? l->alloc * 2 : 16;
		l->e = xrealloc(l->e, l->alloc * sizeof(*l->e));
	}
	l->e[l->count] = (struct mbox_entry){ .name = xstrdup(name) };
	return &l->e[l->count++];
}

static struct mbox_entry *mbox_find(struct mbox_list *l, const char *name)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->e[i].name, name) == 0)
			return &l->e[i];
	return NULL;
}

static void mbox_list_free(struct mbox_list *l)
{
	for (size_t i = 0; i < l->count; i++) {
		free(l->e[i].name);
		free(l->e[i].special_use);
	}
	free(l->e);
}

static int collect_mailbox(void *ctx, const struct store_mailbox *m)
{
	struct mbox_entry *e = mbox_add(ctx, m->name);
	e->exists = true;
	e->special_use = m->special_use != NULL ? xstrdup(m->special_use) : NULL;
	return 0;
}

static int collect_subscription(void *ctx, const char *name)
{
	struct mbox_list *l = ctx;
	struct mbox_entry *e = mbox_find(l, name);
	if (e == NULL)
		e = mbox_add(l, name);
	e->subscribed = true;
	return 0;
}

/* Glob match: '*' matches anything, '%' anything but the delimiter. */
static bool list_match(const char *pat, const char *name)
{
	while (*pat != '\0') {
		if (*pat == '*' || *pat == '%') {
			bool any = *pat == '*';
			pat++;
			for (const char *n = name;; n++) {
				if (list_match(pat, n))
					return true;
				if (*n == '\0' || (!any && *n == '/'))
					return false;
			}
		}
		if (*name != *pat)
			return false;
		pat++;
		name++;
	}
	return *name == '\0';
}

static bool has_children(const struct mbox_list *l, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < l->count; i++)
		if (l->e[i].exists && strncmp(l->e[i].name, name, n) == 0 && l->e[i].name[n] == '/')
			return true;
	return false;
}

/* Decode a reference or pattern from the wire without name validation. */
static int wire_decode(struct imap_session *s, struct slice in, struct buf *out)
{
	if (s->utf8)
		return imap_utf8_valid(in) ? buf_append_slice(out, in) : -1;
	return imap_mutf7_decode(in, out);
}

void imap_cmd_list(struct imap_session *s, const struct imap_command *cmd)
{
	bool lsub = cmd->cmd == IMAP_CMD_LSUB;
	struct imap_list_request req;
	struct imap_parse_error err;
	struct mbox_list l = { 0 };
	const char *error = NULL;
	bool want_subs;
	struct buf line;

	if (imap_list_parse(cmd->args, cmd->nargs, lsub, &s->arena, &req, &err) < 0) {
		imap_parse_failed(s, &err);
		return;
	}
	if (!lsub && req.npatterns == 1 && req.patterns[0].len == 0 && !req.extended) {
		/* RFC 9051 6.3.9: the hierarchy delimiter and root */
		imap_untagged(s, "LIST (\\Noselect) \"/\" \"\"");
		imap_tagged(s, "OK", "LIST completed");
		return;
	}
	if (store_mailbox_list(s->l->store, s->user_id, collect_mailbox, &l, &error) < 0) {
		mbox_list_free(&l);
		log_error("imap", "sid=%s event=list_failed error=%s", s->id, log_quote(error));
		imap_tagged(s, "NO", "[SERVERBUG] LIST failed, try again later");
		return;
	}
	want_subs = lsub || (req.select & IMAP_LIST_SEL_SUBSCRIBED) ||
		    (req.ret & IMAP_LIST_RET_SUBSCRIBED);
	if (want_subs &&
	    store_subscription_list(s->l->store, s->user_id, collect_subscription, &l, &error) < 0) {
		mbox_list_free(&l);
		log_error("imap", "sid=%s event=lsub_failed error=%s", s->id, log_quote(error));
		imap_tagged(s, "NO", "[SERVERBUG] LIST failed, try again later");
		return;
	}
	buf_init(&line, BUF_UNLIMITED);
	bool *sent = xcalloc(l.count ? l.count : 1, sizeof(*sent));
	for (size_t p = 0; p < req.npatterns; p++) {
		struct buf pat;
		buf_init(&pat, 8192);
		if (wire_decode(s, req.reference, &pat) < 0 ||
		    wire_decode(s, req.patterns[p], &pat) < 0) {
			buf_free(&pat);
			continue;
		}
		char *pt = buf_steal(&pat);
		if (strncasecmp(pt, "INBOX", 5) == 0 &&
		    (pt[5] == '\0' || pt[5] == '/' || pt[5] == '*' || pt[5] == '%'))
			memcpy(pt, "INBOX", 5);
		for (size_t i = 0; i < l.count; i++) {
			struct mbox_entry *e = &l.e[i];
			if (sent[i] || !list_match(pt, e->name))
				continue;
			if (lsub && !e->subscribed)
				continue;
			if (!lsub && !e->exists &&
			    !((req.select & IMAP_LIST_SEL_SUBSCRIBED) && e->subscribed))
				continue;
			if ((req.select & IMAP_LIST_SEL_SUBSCRIBED) && !e->subscribed)
				continue;
			if ((req.select & IMAP_LIST_SEL_SPECIAL_USE) && e->special_use == NULL)
				continue;
			sent[i] = true;
			buf_reset(&line);
			buf_append_str(&line, lsub ? "LSUB (" : "LIST (");
			if (!e->exists) {
				buf_append_str(&line, lsub ? "\\Noselect" : "\\NonExistent");
			} else if (!lsub) {
				buf_append_str(&line, has_children(&l, e->name) ? "\\HasChildren"
										: "\\HasNoChildren");
			}
			if (e->exists && e->special_use != NULL && !lsub) {
				buf_append_str(&line, " ");
				buf_append_str(&line, e->special_use);
			}
			if (!lsub && e->subscribed && (req.ret & IMAP_LIST_RET_SUBSCRIBED ||
						       req.select & IMAP_LIST_SEL_SUBSCRIBED))
				buf_append_str(&line, " \\Subscribed");
			buf_append_str(&line, ") \"/\" ");
			imap_mailbox_to_wire(s, &line, e->name);
			imap_untagged(s, "%s", buf_cstr(&line));
		}
		free(pt);
	}
	free(sent);
	buf_free(&line);
	mbox_list_free(&l);
	imap_tagged(s, "OK", "%s completed", lsub ? "LSUB" : "LIST");
}

/* ---- STATUS ---- */

struct status_count {
	uint32_t unseen, deleted;
};

static int status_count_one(void *ctx, const struct store_message *m)
{
	struct status_count *c = ctx;
	struct imap_msg tmp = { .flags = m->flags };
	if (!imap_msg_has_flag(&tmp, "\\Seen"))
		c->unseen++;
	if (imap_msg_has_flag(&tmp, "\\Deleted"))
		c->deleted++;
	return 0;
}

void imap_cmd_status(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_status_request req;
	struct imap_parse_error err;
	struct store_mailbox mb = { 0 };
	struct status_count c = { 0 };
	const char *error = NULL;
	struct buf b;
	char *name;
	int rc;

	if (imap_status_parse(cmd->args, cmd->nargs, &req, &err) < 0) {
		imap_parse_failed(s, &err);
		return;
	}
	name = imap_mailbox_from_wire(s, req.mailbox);
	if (name == NULL) {
		imap_tagged(s, "NO", "[NONEXISTENT] Mailbox doesn't exist");
		return;
	}
	rc = store_mailbox_get(s->l->store, s->user_id, name, &mb, &error);
	free(name);
	if (rc <= 0) {
		if (rc == 0)
			imap_tagged(s, "NO", "[NONEXISTENT] Mailbox doesn't exist");
		else
			imap_tagged(s, "NO", "[SERVERBUG] STATUS failed, try again later");
		return;
	}
	if ((req.items & (IMAP_STATUS_UNSEEN | IMAP_STATUS_DELETED)) &&
	    store_message_list(s->l->store, mb.id, 1, status_count_one, &c, &error) < 0) {
		store_mailbox_clear(&mb);
		imap_tagged(s, "NO", "[SERVERBUG] STATUS failed, try again later");
		return;
	}
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "STATUS ");
	imap_mailbox_to_wire(s, &b, mb.name);
	buf_append_str(&b, " (");
	size_t start = b.len;
#define SEP() do { if (b.len > start) buf_append_str(&b, " "); } while (0)
	if (req.items & IMAP_STATUS_MESSAGES) {
		SEP();
		buf_printf(&b, "MESSAGES %u", mb.messages);
	}
	if (req.items & IMAP_STATUS_RECENT) {
		uint32_t recent = 0;
		/* the \Recent marks of other sessions are theirs; ours are known */
		if (s->view != NULL && s->view->mailbox_id == mb.id)
			for (uint32_t i = 0; i < s->view->count; i++)
				recent += s->view->msgs[i].recent;
		SEP();
		buf_printf(&b, "RECENT %u", recent);
	}
	if (req.items & IMAP_STATUS_UIDNEXT) {
		SEP();
		buf_printf(&b, "UIDNEXT %u", mb.uidnext);
	}
	if (req.items & IMAP_STATUS_UIDVALIDITY) {
		SEP();
		buf_printf(&b, "UIDVALIDITY %u", mb.uidvalidity);
	}
	if (req.items & IMAP_STATUS_UNSEEN) {
		SEP();
		buf_printf(&b, "UNSEEN %u", c.unseen);
	}
	if (req.items & IMAP_STATUS_DELETED) {
		SEP();
		buf_printf(&b, "DELETED %u", c.deleted);
	}
	if (req.items & IMAP_STATUS_SIZE) {
		SEP();
		buf_printf(&b, "SIZE %lld", (long long)mb.bytes);
	}
	if (req.items & IMAP_STATUS_HIGHESTMODSEQ) {
		SEP();
		buf_printf(&b, "HIGHESTMODSEQ %llu", (unsigned long long)mb.highestmodseq);
	}
	if (req.items & IMAP_STATUS_APPENDLIMIT) {
		SEP();
		buf_printf(&b, "APPENDLIMIT %zu", s->l->cfg->limits.message_size);
	}
#undef SEP
	buf_append_str(&b, ")");
	imap_untagged(s, "%s", buf_cstr(&b));
	buf_free(&b);
	store_mailbox_clear(&mb);
	imap_tagged(s, "OK", "STATUS completed");
}

/* ---- APPEND ---- */

char *imap_flags_string(const struct imap_flags *f)
{
	static const struct { unsigned bit; const char *name; } sys[] = {
		{ IMAP_FLAG_ANSWERED, "\\Answered" }, { IMAP_FLAG_FLAGGED, "\\Flagged" },
		{ IMAP_FLAG_DELETED, "\\Deleted" }, { IMAP_FLAG_SEEN, "\\Seen" },
		{ IMAP_FLAG_DRAFT, "\\Draft" },
	};
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
		if (f->system & sys[i].bit) {
			if (b.len > 0)
				buf_append_str(&b, " ");
			buf_append_str(&b, sys[i].name);
		}
	}
	for (size_t i = 0; i < f->nkeywords; i++) {
		if (b.len > 0)
			buf_append_str(&b, " ");
		buf_append_slice(&b, f->keywords[i]);
	}
	if (b.len == 0)
		return xstrdup("");
	return buf_steal(&b);
}

static void append_done(void *ctx, const struct store_write_result *r)
{
	struct imap_session *s = ctx;

	if (s->closed) {
		imap_session_unref(s);
		return;
	}
	if (r->status < 0) {
		if (r->code != NULL && strcmp(r->code, "NONEXISTENT") == 0)
			imap_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist");
		else
			imap_store_failed(s, "APPEND", r->code, r->error);
	} else {
		if (s->view != NULL)
			s->view->dirty = true;
		imap_tagged(s, "OK", "[APPENDUID %u %u] APPEND completed", r->uidvalidity,
			    r->count > 0 ? r->dst_uids[0] : 0);
	}
	if (imap_session_unref(s))
		imap_resume(s);
}

void imap_cmd_append(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_append_request req;
	struct imap_parse_error err;
	struct store_mailbox mb = { 0 };
	const char *error = NULL;
	char *name, *flags;
	int rc;

	if (imap_append_parse(cmd->args, cmd->nargs, &s->arena, &req, &err) < 0) {
		imap_parse_failed(s, &err);
		return;
	}
	name = imap_mailbox_from_wire(s, req.mailbox);
	if (name == NULL) {
		imap_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist");
		return;
	}
	if (req.message.len == 0) {
		free(name);
		imap_tagged(s, "NO", "Cannot append an empty message");
		return;
	}
	if (req.message.len > s->l->cfg->limits.message_size) {
		free(name);
		imap_tagged(s, "NO", "[TOOBIG] Message too large");
		return;
	}
	rc = store_mailbox_get(s->l->store, s->user_id, name, &mb, &error);
	store_mailbox_clear(&mb);
	if (rc <= 0) {
		free(name);
		if (rc == 0)
			imap_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist");
		else
			imap_tagged(s, "NO", "[SERVERBUG] APPEND failed, try again later");
		return;
	}
	flags = req.has_flags ? imap_flags_string(&req.flags) : xstrdup("");
	write_begin(s);
	write_started(s, store_append(s->l->store, s->base, s->user_id, name, req.message.p,
				      req.message.len, flags, req.has_date ? req.date : 0,
				      append_done, s));
	free(flags);
	free(name);
}
