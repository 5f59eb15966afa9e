/* Mailbox management in the authenticated state: CREATE, DELETE, RENAME
 * (RFC 9051 6.3.4-6.3.6, RENAME of INBOX moves its messages), SUBSCRIBE,
 * UNSUBSCRIBE (6.3.7, 6.3.8), LIST (6.3.9, with the RFC 5258 selection and
 * return options the parser gives, RFC 3348 CHILDREN, RFC 6154
 * SPECIAL-USE, CREATE-SPECIAL-USE), LSUB (RFC 3501 6.3.9), STATUS (6.3.11,
 * RFC 8438 SIZE) and LIST-STATUS (RFC 5819); the flag-list helper APPEND
 * (cmd-append.c) shares.
 *
 * LIST builds the user's mailboxes, subscriptions and every ancestor level
 * of them, sorted (INBOX first), then answers each pattern in turn; a
 * mailbox is listed at most once per command (RFC 5258 3: several
 * patterns).
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
		if (s->c.closed) {                                              \
			imap_session_unref(s);                                \
			return;                                               \
		}                                                             \
		mailbox_write_done(s, r, what);                               \
		if (imap_session_unref(s))                                    \
			imap_resume(s);                                       \
	}

/* RFC 8474 4.1: CREATE's OK carries the new mailbox's MAILBOXID */
static void create_done(void *ctx, const struct store_write_result *r)
{
	struct imap_session *s = ctx;
	struct store_mailbox mb = { 0 };
	const char *error = NULL;

	if (s->c.closed) {
		imap_session_unref(s);
		return;
	}
	if (r->status == 0 && r->mailbox_id > 0 &&
	    store_mailbox_get_by_id(s->l->store, r->mailbox_id, &mb, &error) > 0 &&
	    mb.objectid != NULL)
		imap_tagged(s, "OK", "[MAILBOXID (%s)] CREATE completed", mb.objectid);
	else
		mailbox_write_done(s, r, "CREATE");
	store_mailbox_clear(&mb);
	if (imap_session_unref(s))
		imap_resume(s);
}

WRITE_CB(subscribe_done, "SUBSCRIBE")
WRITE_CB(unsubscribe_done, "UNSUBSCRIBE")

static void delete_done(void *ctx, const struct store_write_result *r)
{
	struct imap_session *s = ctx;

	if (s->c.closed) {
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

	if (s->c.closed) {
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
		s->c.waiting = false;
		imap_session_unref(s);
		imap_tagged(s, "NO", "[SERVERBUG] Cannot change the store now, try again later");
		return false;
	}
	return true;
}

static void write_begin(struct imap_session *s)
{
	s->c.waiting = true;
	imap_session_ref(s);
}

char *imap_mailbox_existing(struct imap_session *s, struct slice wire, const char *what,
			    int64_t *id_r)
{
	struct store_mailbox mb;
	const char *error = NULL;
	char *name = imap_mailbox_from_wire(s, wire);
	int rc;

	if (name == NULL) {
		imap_tagged(s, "NO", "[NONEXISTENT] Invalid mailbox name");
		return NULL;
	}
	memset(&mb, 0, sizeof(mb));
	rc = store_mailbox_get(s->l->store, s->user_id, name, &mb, &error);
	*id_r = mb.id;
	store_mailbox_clear(&mb);
	if (rc <= 0) {
		free(name);
		if (rc < 0)
			imap_store_failed(s, what, NULL, error);
		else
			imap_tagged(s, "NO", "[NONEXISTENT] No such mailbox");
		return NULL;
	}
	return name;
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

/* RFC 6154 3 / 6: CREATE name (USE (\Archive)).  The store keeps one
 * special use per mailbox and only the real-folder ones: \All and
 * \Flagged (virtual mailboxes) and several at once are refused with
 * [USEATTR].  0 with *use_r (NULL for none), or -1 after a reply. */
static int create_params(struct imap_session *s, const struct imap_arg *params,
			 const char **use_r)
{
	static const char *const uses[] = { "\\Archive", "\\Drafts", "\\Junk", "\\Sent",
					    "\\Trash" };

	*use_r = NULL;
	if (params->type != IMAP_ARG_LIST) {
		imap_bad(s, "Syntax: CREATE mailbox [(USE (attr ...))]");
		return -1;
	}
	for (size_t i = 0; i < params->count; i += 2) {
		const struct imap_arg *list;

		if (!imap_arg_atom_is(&params->children[i], "USE") || i + 1 >= params->count ||
		    params->children[i + 1].type != IMAP_ARG_LIST) {
			imap_bad(s, "Unknown CREATE parameter");
			return -1;
		}
		list = &params->children[i + 1];
		for (size_t k = 0; k < list->count; k++) {
			struct slice a;
			size_t u;

			if (!imap_arg_atom(&list->children[k], &a) || a.len == 0 || a.p[0] != '\\') {
				imap_bad(s, "USE takes special-use attributes");
				return -1;
			}
			for (u = 0; u < sizeof(uses) / sizeof(uses[0]); u++)
				if (slice_eq_ci(a, uses[u]))
					break;
			if (u == sizeof(uses) / sizeof(uses[0])) {
				imap_tagged(s, "NO", "[USEATTR] Unsupported special-use attribute");
				return -1;
			}
			if (*use_r != NULL && strcmp(*use_r, uses[u]) != 0) {
				imap_tagged(s, "NO", "[USEATTR] One special-use attribute per mailbox");
				return -1;
			}
			*use_r = uses[u];
		}
	}
	return 0;
}

void imap_cmd_create(struct imap_session *s, const struct imap_command *cmd)
{
	const char *use = NULL;
	char *name;

	if (cmd->nargs != 1 && cmd->nargs != 2) {
		imap_bad(s, "Syntax: CREATE mailbox [(USE (attr ...))]");
		return;
	}
	if (cmd->nargs == 2 && create_params(s, &cmd->args[1], &use) < 0)
		return;
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
	write_started(s, store_mailbox_create(s->l->store, s->c.base, s->user_id, name, use,
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
	write_started(s, store_mailbox_delete(s->l->store, s->c.base, s->user_id, name,
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
	write_started(s, store_mailbox_rename(s->l->store, s->c.base, s->user_id, from, to,
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
	write_started(s, store_subscribe(s->l->store, s->c.base, s->user_id, name, sub,
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

static struct mbox_entry *mbox_add(struct mbox_list *l, const char *name, size_t len)
{
	if (l->count == l->alloc) {
		l->alloc = l->alloc ? l->alloc * 2 : 16;
		l->e = xrealloc(l->e, l->alloc * sizeof(*l->e));
	}
	l->e[l->count] = (struct mbox_entry){ .name = xstrndup(name, len) };
	return &l->e[l->count++];
}

static struct mbox_entry *mbox_find(struct mbox_list *l, const char *name, size_t len)
{
	for (size_t i = 0; i < l->count; i++)
		if (strncmp(l->e[i].name, name, len) == 0 && l->e[i].name[len] == '\0')
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
	struct mbox_entry *e = mbox_add(ctx, m->name, strlen(m->name));
	e->exists = true;
	e->special_use = m->special_use != NULL ? xstrdup(m->special_use) : NULL;
	return 0;
}

static int collect_subscription(void *ctx, const char *name)
{
	struct mbox_list *l = ctx;
	struct mbox_entry *e = mbox_find(l, name, strlen(name));
	if (e == NULL)
		e = mbox_add(l, name, strlen(name));
	e->subscribed = true;
	return 0;
}

/* Every ancestor of a listed name becomes an entry too (neither existing
 * nor subscribed), so that "%" patterns and RECURSIVEMATCH can report a
 * level that only holds children (RFC 3501 6.3.9, RFC 5258 3). */
static void mbox_add_ancestors(struct mbox_list *l)
{
	size_t n = l->count;
	for (size_t i = 0; i < n; i++) {
		for (const char *p = strchr(l->e[i].name, '/'); p != NULL; p = strchr(p + 1, '/')) {
			/* l->e may move: look the name up again each time */
			size_t len = (size_t)(p - l->e[i].name);
			if (mbox_find(l, l->e[i].name, len) == NULL) {
				char *tmp = xstrndup(l->e[i].name, len);
				mbox_add(l, tmp, len);
				free(tmp);
			}
		}
	}
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

static bool is_descendant(const char *child, const char *parent)
{
	size_t n = strlen(parent);
	return strncmp(child, parent, n) == 0 && child[n] == '/';
}

struct list_ctx {
	struct imap_session *s;
	const struct imap_list_request *req;
	bool lsub;
	unsigned select;            /* selection options that filter */
	struct mbox_list l;
};

/* Does e satisfy the selection criteria (RFC 5258 3.1)?  Plain LIST:
 * existing mailboxes; LSUB and SUBSCRIBED: subscribed ones (existing or
 * not); SPECIAL-USE: existing ones with a special use. */
static bool list_selected(const struct list_ctx *c, const struct mbox_entry *e)
{
	if (c->lsub)
		return e->subscribed;
	if ((c->select & IMAP_LIST_SEL_SUBSCRIBED) && !e->subscribed)
		return false;
	if ((c->select & IMAP_LIST_SEL_SPECIAL_USE) && (!e->exists || e->special_use == NULL))
		return false;
	if (!(c->select & IMAP_LIST_SEL_SUBSCRIBED) && !e->exists)
		return false;
	return true;
}

/* A descendant of e that satisfies the selection; with unmatched_by set,
 * only one that this pattern does not match itself. */
static bool list_selected_descendant(const struct list_ctx *c, const struct mbox_entry *e,
				     const char *unmatched_by)
{
	for (size_t i = 0; i < c->l.count; i++) {
		const struct mbox_entry *d = &c->l.e[i];
		if (is_descendant(d->name, e->name) && list_selected(c, d) &&
		    (unmatched_by == NULL || !list_match(unmatched_by, d->name)))
			return true;
	}
	return false;
}

static bool has_children(const struct list_ctx *c, const struct mbox_entry *e)
{
	for (size_t i = 0; i < c->l.count; i++)
		if (c->l.e[i].exists && is_descendant(c->l.e[i].name, e->name))
			return true;
	return false;
}

/* One LIST (or LSUB) response for e, then its STATUS for RETURN (STATUS). */
static void list_reply(struct list_ctx *c, const struct mbox_entry *e, bool selected,
		       bool childinfo)
{
	struct imap_session *s = c->s;
	const struct imap_list_request *req = c->req;
	struct buf line;
	size_t start;

	buf_init(&line, BUF_UNLIMITED);
	buf_append_str(&line, c->lsub ? "LSUB (" : "LIST (");
	start = line.len;
#define ATTR(a) do { if (line.len > start) buf_append_str(&line, " "); \
		     buf_append_str(&line, a); } while (0)
	if (c->lsub) {
		if (!selected)
			ATTR("\\Noselect");
	} else {
		if (!e->exists)
			ATTR(req->extended ? "\\NonExistent" : "\\Noselect");
		if (e->exists || has_children(c, e))
			ATTR(has_children(c, e) ? "\\HasChildren" : "\\HasNoChildren");
		/* RFC 6154 2: the attributes come with every LIST that shows the
		 * mailbox, whether or not RETURN (SPECIAL-USE) asked */
		if (e->exists && e->special_use != NULL)
			ATTR(e->special_use);
		if (e->subscribed && (req->ret & IMAP_LIST_RET_SUBSCRIBED ||
				      req->select & IMAP_LIST_SEL_SUBSCRIBED))
			ATTR("\\Subscribed");
	}
#undef ATTR
	buf_append_str(&line, ") \"/\" ");
	imap_mailbox_to_wire(s, &line, e->name);
	if (childinfo) {
		/* RFC 5258 3.5: why a mailbox outside the selection is listed */
		buf_append_str(&line, " (\"CHILDINFO\" (");
		if (req->select & IMAP_LIST_SEL_SUBSCRIBED)
			buf_append_str(&line, "\"SUBSCRIBED\"");
		if (req->select & IMAP_LIST_SEL_SPECIAL_USE)
			buf_append_str(&line, req->select & IMAP_LIST_SEL_SUBSCRIBED ?
						" \"SPECIAL-USE\"" : "\"SPECIAL-USE\"");
		buf_append_str(&line, "))");
	}
	imap_untagged(s, "%s", buf_cstr(&line));

	/* RFC 5819: STATUS after the LIST of each selectable mailbox; a
	 * mailbox whose STATUS fails is listed without it */
	if ((req->ret & IMAP_LIST_RET_STATUS) && e->exists) {
		struct store_mailbox mb = { 0 };
		const char *error = NULL;
		if (store_mailbox_get(s->l->store, s->user_id, e->name, &mb, &error) > 0) {
			buf_reset(&line);
			if (imap_status_format(s, &mb, req->status_items, &line) == 0)
				imap_untagged(s, "%s", buf_cstr(&line));
		}
		store_mailbox_clear(&mb);
	}
	buf_free(&line);
}

/* Decode a reference or pattern from the wire without name validation. */
static int wire_decode(struct imap_session *s, struct slice in, struct buf *out)
{
	if (s->utf8)
		return imap_utf8_valid(in) ? buf_append_slice(out, in) : -1;
	return imap_mutf7_decode(in, out);
}

static int entry_cmp(const void *a, const void *b)
{
	const struct mbox_entry *x = a, *y = b;
	/* INBOX first, then byte order: a stable, readable listing */
	bool xi = strcmp(x->name, "INBOX") == 0, yi = strcmp(y->name, "INBOX") == 0;
	if (xi != yi)
		return xi ? -1 : 1;
	return strcmp(x->name, y->name);
}

void imap_cmd_list(struct imap_session *s, const struct imap_command *cmd)
{
	bool lsub = cmd->cmd == IMAP_CMD_LSUB;
	struct imap_list_request req;
	struct imap_parse_error err;
	struct list_ctx c = { .s = s, .lsub = lsub };
	const char *error = NULL;
	bool want_subs;
	char **pats;

	if (imap_list_parse(cmd->args, cmd->nargs, lsub, &s->arena, &req, &err) < 0) {
		imap_parse_failed(s, &err);
		return;
	}
	c.req = &req;
	c.select = req.select;
	if (!lsub && req.npatterns == 1 && req.patterns[0].len == 0 && req.select == 0) {
		/* RFC 9051 6.3.9: the hierarchy delimiter and root */
		imap_untagged(s, "LIST (\\Noselect) \"/\" \"\"");
		imap_tagged(s, "OK", "LIST completed");
		return;
	}
	if (store_mailbox_list(s->l->store, s->user_id, collect_mailbox, &c.l, &error) < 0) {
		mbox_list_free(&c.l);
		log_error("imap", "sid=%s event=list_failed error=%s", s->c.id, log_quote(error));
		imap_tagged(s, "NO", "[SERVERBUG] LIST failed, try again later");
		return;
	}
	want_subs = lsub || (req.select & IMAP_LIST_SEL_SUBSCRIBED) ||
		    (req.ret & IMAP_LIST_RET_SUBSCRIBED);
	if (want_subs && store_subscription_list(s->l->store, s->user_id, collect_subscription,
						 &c.l, &error) < 0) {
		mbox_list_free(&c.l);
		log_error("imap", "sid=%s event=lsub_failed error=%s", s->c.id, log_quote(error));
		imap_tagged(s, "NO", "[SERVERBUG] LIST failed, try again later");
		return;
	}
	mbox_add_ancestors(&c.l);
	if (c.l.count > 1)
		qsort(c.l.e, c.l.count, sizeof(*c.l.e), entry_cmp);
	/* decode every pattern (reference prefixed); undecodable ones match
	 * nothing */
	pats = xcalloc(req.npatterns, sizeof(*pats));
	for (size_t p = 0; p < req.npatterns; p++) {
		struct buf pat;
		buf_init(&pat, 8192);
		if (wire_decode(s, req.reference, &pat) < 0 ||
		    wire_decode(s, req.patterns[p], &pat) < 0) {
			buf_free(&pat);
			continue;
		}
		pats[p] = buf_steal(&pat);
		if (strncasecmp(pats[p], "INBOX", 5) == 0 &&
		    (pats[p][5] == '\0' || pats[p][5] == '/' || pats[p][5] == '*' ||
		     pats[p][5] == '%'))
			memcpy(pats[p], "INBOX", 5);
	}
	/* one pass over the sorted entries: each is listed once, in order,
	 * when some pattern lets it through */
	for (size_t i = 0; i < c.l.count; i++) {
		const struct mbox_entry *e = &c.l.e[i];
		bool matched = false, shown = false, selected, childinfo = false;

		selected = list_selected(&c, e);
		for (size_t p = 0; p < req.npatterns && !shown; p++) {
			if (pats[p] == NULL || !list_match(pats[p], e->name))
				continue;
			matched = true;
			/* RFC 3501 6.3.9: a level whose matching children a "%"
			 * hides is shown as \Noselect (LSUB and plain LIST) */
			shown = selected || (req.select == 0 &&
					     list_selected_descendant(&c, e, pats[p]));
		}
		if (matched && (req.select & IMAP_LIST_SEL_RECURSIVEMATCH))
			childinfo = list_selected_descendant(&c, e, NULL);
		if (shown || childinfo)
			list_reply(&c, e, selected, childinfo);
	}
	for (size_t p = 0; p < req.npatterns; p++)
		free(pats[p]);
	free(pats);
	mbox_list_free(&c.l);
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

int imap_status_format(struct imap_session *s, const struct store_mailbox *mb, unsigned items,
		       struct buf *b)
{
	struct status_count c = { 0 };
	const char *error = NULL;

	if ((items & (IMAP_STATUS_UNSEEN | IMAP_STATUS_DELETED)) &&
	    store_message_list(s->l->store, mb->id, 1, status_count_one, &c, &error) < 0) {
		log_error("imap", "sid=%s event=status_failed error=%s", s->c.id, log_quote(error));
		return -1;
	}
	buf_append_str(b, "STATUS ");
	imap_mailbox_to_wire(s, b, mb->name);
	buf_append_str(b, " (");
	size_t start = b->len;
#define SEP() do { if (b->len > start) buf_append_str(b, " "); } while (0)
	if (items & IMAP_STATUS_MESSAGES) {
		SEP();
		buf_printf(b, "MESSAGES %u", mb->messages);
	}
	if (items & IMAP_STATUS_RECENT) {
		uint32_t recent = 0;
		/* messages no SELECT has claimed yet are recent (as Dovecot
		 * reports them), plus this session's own \Recent ones when the
		 * mailbox is selected here: those lie below the mark, so the two
		 * never overlap; other sessions' claimed ones are theirs */
		if (store_mailbox_unclaimed_recent(s->l->store, mb->id, &recent, &error) < 0) {
			log_error("imap", "sid=%s event=status_failed error=%s", s->c.id,
				  log_quote(error));
			return -1;
		}
		if (s->view != NULL && s->view->mailbox_id == mb->id)
			for (uint32_t i = 0; i < s->view->count; i++)
				recent += s->view->msgs[i].recent && !s->view->msgs[i].expunged;
		SEP();
		buf_printf(b, "RECENT %u", recent);
	}
	if (items & IMAP_STATUS_UIDNEXT) {
		SEP();
		buf_printf(b, "UIDNEXT %u", mb->uidnext);
	}
	if (items & IMAP_STATUS_UIDVALIDITY) {
		SEP();
		buf_printf(b, "UIDVALIDITY %u", mb->uidvalidity);
	}
	if (items & IMAP_STATUS_UNSEEN) {
		SEP();
		buf_printf(b, "UNSEEN %u", c.unseen);
	}
	if (items & IMAP_STATUS_DELETED) {
		SEP();
		buf_printf(b, "DELETED %u", c.deleted);
	}
	if (items & IMAP_STATUS_SIZE) {
		SEP();
		buf_printf(b, "SIZE %lld", (long long)mb->bytes);
	}
	if (items & IMAP_STATUS_HIGHESTMODSEQ) {
		SEP();
		buf_printf(b, "HIGHESTMODSEQ %llu", (unsigned long long)mb->highestmodseq);
	}
	if (items & IMAP_STATUS_APPENDLIMIT) {
		SEP();
		buf_printf(b, "APPENDLIMIT %zu", s->l->cfg->limits.message_size);
	}
	if ((items & IMAP_STATUS_MAILBOXID) && mb->objectid != NULL) {
		SEP();
		buf_printf(b, "MAILBOXID (%s)", mb->objectid);
	}
#undef SEP
	buf_append_str(b, ")");
	return 0;
}

void imap_cmd_status(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_status_request req;
	struct imap_parse_error err;
	struct store_mailbox mb = { 0 };
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
	buf_init(&b, BUF_UNLIMITED);
	rc = imap_status_format(s, &mb, req.items, &b);
	store_mailbox_clear(&mb);
	if (rc < 0) {
		buf_free(&b);
		imap_tagged(s, "NO", "[SERVERBUG] STATUS failed, try again later");
		return;
	}
	imap_untagged(s, "%s", buf_cstr(&b));
	buf_free(&b);
	imap_tagged(s, "OK", "STATUS completed");
}

/* ---- flag lists (APPEND, STORE) ---- */

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
