/* NOTIFY (RFC 5465): NOTIFY SET [STATUS] (filter (events)) ... and NOTIFY
 * NONE, fed by the notification hub (lib/notify.h).
 *
 * Filters: SELECTED, SELECTED-DELAYED, INBOXES (the INBOX: the only
 * mailbox Tern delivers to), PERSONAL (every mailbox of the user),
 * SUBSCRIBED, SUBTREE and MAILBOXES.  Events: MessageNew, MessageExpunge,
 * FlagChange, MailboxName and SubscriptionChange; the annotation and
 * metadata events are refused with NO [BADEVENT (...)] listing these.
 * MessageNew with FETCH attributes is refused too: the client fetches
 * what it wants after the EXISTS or STATUS.
 *
 * What a subscriber is sent, as soon as the hub delivers an event and the
 * session is between commands (responses never split another one, so
 * they may also arrive while a command runs, as section 3 allows):
 *  - the selected mailbox (when a SELECTED filter is set): EXISTS, FETCH
 *    FLAGS and EXPUNGE right away; SELECTED-DELAYED keeps the EXPUNGEs for
 *    the next command that may carry them;
 *  - another mailbox, for message events: STATUS (MESSAGES UIDNEXT
 *    UIDVALIDITY UNSEEN, HIGHESTMODSEQ with CONDSTORE), section 5.2-5.4;
 *  - MailboxName: LIST for a new mailbox, LIST (\NonExistent) for a
 *    deleted one, LIST ... ("OLDNAME" (old)) for a renamed one, found by
 *    comparing the user's mailboxes (by id) with the previous look;
 *  - SubscriptionChange: LIST (\Subscribed) or LIST () for each name that
 *    came or went.
 * NOTIFY SET STATUS first sends STATUS for every mailbox its message
 * filters match (section 5.1).  Without a SELECTED filter the selected
 * mailbox keeps the ordinary behaviour (updates at command ends and in
 * IDLE). */
#include "imap/imap-private.h"
#include "lib/log.h"
#include "lib/notify.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#define NOTIFY_MAX_GROUPS 50
#define NOTIFY_MAX_NAMES 1000

enum {
	EV_NEW = 1 << 0, EV_EXPUNGE = 1 << 1, EV_FLAGS = 1 << 2,
	EV_NAME = 1 << 3, EV_SUBSCRIPTION = 1 << 4,
};

enum filter {
	F_SELECTED, F_SELECTED_DELAYED, F_INBOXES, F_PERSONAL, F_SUBSCRIBED, F_SUBTREE,
	F_MAILBOXES,
};

struct group {
	enum filter filter;
	char **names;           /* SUBTREE / MAILBOXES, store names */
	size_t nnames;
	unsigned events;
};

struct snap_mailbox {
	int64_t id;
	char *name;
};

struct imap_notify {
	struct group *groups;
	size_t ngroups;
	struct notify_sub *sub;
	struct snap_mailbox *mailboxes;   /* the last look, for MailboxName */
	size_t nmailboxes;
	char **subscriptions;             /* the last look, for SubscriptionChange */
	size_t nsubscriptions;
};

/* ---- state ---- */

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void snapshot_free(struct imap_notify *n)
{
	for (size_t i = 0; i < n->nmailboxes; i++)
		free(n->mailboxes[i].name);
	free(n->mailboxes);
	n->mailboxes = NULL;
	n->nmailboxes = 0;
	free_names(n->subscriptions, n->nsubscriptions);
	n->subscriptions = NULL;
	n->nsubscriptions = 0;
}

static void notify_free(struct imap_notify *n)
{
	if (n == NULL)
		return;
	if (n->sub != NULL)
		notify_unsubscribe(&n->sub);
	for (size_t i = 0; i < n->ngroups; i++)
		free_names(n->groups[i].names, n->groups[i].nnames);
	free(n->groups);
	snapshot_free(n);
	free(n);
}

void imap_notify_free(struct imap_session *s)
{
	notify_free(s->notify);
	s->notify = NULL;
}

static int collect_mailbox(void *ctx, const struct store_mailbox *m)
{
	struct imap_notify *n = ctx;

	n->mailboxes = xrealloc(n->mailboxes, (n->nmailboxes + 1) * sizeof(*n->mailboxes));
	n->mailboxes[n->nmailboxes].id = m->id;
	n->mailboxes[n->nmailboxes].name = xstrdup(m->name);
	n->nmailboxes++;
	return 0;
}

static int collect_subscription(void *ctx, const char *name)
{
	struct imap_notify *n = ctx;

	n->subscriptions = xrealloc(n->subscriptions,
				    (n->nsubscriptions + 1) * sizeof(*n->subscriptions));
	n->subscriptions[n->nsubscriptions++] = xstrdup(name);
	return 0;
}

/* Look at the user's mailboxes and subscriptions now. */
static int snapshot_take(struct imap_session *s, struct imap_notify *n)
{
	const char *error = NULL;

	snapshot_free(n);
	if (store_mailbox_list(s->l->store, s->user_id, collect_mailbox, n, &error) < 0 ||
	    store_subscription_list(s->l->store, s->user_id, collect_subscription, n, &error) < 0) {
		log_warn("imap", "sid=%s event=notify_snapshot_failed error=%s", s->c.id,
			 log_quote(error ? error : ""));
		return -1;
	}
	return 0;
}

static bool subscribed(const struct imap_notify *n, const char *name)
{
	for (size_t i = 0; i < n->nsubscriptions; i++)
		if (strcmp(n->subscriptions[i], name) == 0)
			return true;
	return false;
}

/* Does a (non-selected-filter) group cover the mailbox named name? */
static bool group_matches(const struct imap_notify *n, const struct group *g, const char *name)
{
	switch (g->filter) {
	case F_INBOXES:
		return strcmp(name, "INBOX") == 0;
	case F_PERSONAL:
		return true;
	case F_SUBSCRIBED:
		return subscribed(n, name);
	case F_SUBTREE:
		for (size_t i = 0; i < g->nnames; i++) {
			size_t l = strlen(g->names[i]);
			if (strncmp(name, g->names[i], l) == 0 && (name[l] == '\0' || name[l] == '/'))
				return true;
		}
		return false;
	case F_MAILBOXES:
		for (size_t i = 0; i < g->nnames; i++)
			if (strcmp(name, g->names[i]) == 0)
				return true;
		return false;
	default:
		return false;
	}
}

/* The events the groups give the mailbox named name (not as selected). */
static unsigned events_for(const struct imap_notify *n, const char *name)
{
	unsigned ev = 0;

	for (size_t i = 0; i < n->ngroups; i++)
		if (group_matches(n, &n->groups[i], name))
			ev |= n->groups[i].events;
	return ev;
}

static const struct group *selected_group(const struct imap_notify *n)
{
	for (size_t i = 0; i < n->ngroups; i++)
		if (n->groups[i].filter == F_SELECTED || n->groups[i].filter == F_SELECTED_DELAYED)
			return &n->groups[i];
	return NULL;
}

/* ---- sending ---- */

static void send_status(struct imap_session *s, const struct store_mailbox *mb)
{
	unsigned items = IMAP_STATUS_MESSAGES | IMAP_STATUS_UIDNEXT | IMAP_STATUS_UIDVALIDITY |
			 IMAP_STATUS_UNSEEN;
	struct buf b;

	if (s->condstore)
		items |= IMAP_STATUS_HIGHESTMODSEQ;
	buf_init(&b, BUF_UNLIMITED);
	if (imap_status_format(s, mb, items, &b) == 0)
		imap_untagged(s, "%s", buf_cstr(&b));
	buf_free(&b);
}

static void send_list(struct imap_session *s, const char *attrs, const char *name,
		      const char *oldname)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	buf_printf(&b, "LIST (%s) \"/\" ", attrs);
	imap_mailbox_to_wire(s, &b, name);
	if (oldname != NULL) {
		buf_append_str(&b, " (\"OLDNAME\" (");
		imap_mailbox_to_wire(s, &b, oldname);
		buf_append_str(&b, "))");
	}
	imap_untagged(s, "%s", buf_cstr(&b));
	buf_free(&b);
}

/* MailboxName: compare the mailboxes with the last look. */
static void mailboxes_changed(struct imap_session *s, struct imap_notify *n)
{
	struct snap_mailbox *old = n->mailboxes;
	size_t nold = n->nmailboxes;
	char **old_subs = n->subscriptions;
	size_t nold_subs = n->nsubscriptions;

	n->mailboxes = NULL;
	n->nmailboxes = 0;
	n->subscriptions = NULL;
	n->nsubscriptions = 0;
	if (snapshot_take(s, n) < 0) {
		n->mailboxes = old;
		n->nmailboxes = nold;
		n->subscriptions = old_subs;
		n->nsubscriptions = nold_subs;
		return;
	}
	for (size_t i = 0; i < n->nmailboxes; i++) {
		const struct snap_mailbox *now = &n->mailboxes[i];
		const struct snap_mailbox *was = NULL;

		for (size_t k = 0; k < nold; k++)
			if (old[k].id == now->id)
				was = &old[k];
		if (!(events_for(n, now->name) & EV_NAME) &&
		    !(was != NULL && (events_for(n, was->name) & EV_NAME)))
			continue;
		if (was == NULL)
			send_list(s, "", now->name, NULL);
		else if (strcmp(was->name, now->name) != 0)
			send_list(s, "", now->name, was->name);
	}
	for (size_t k = 0; k < nold; k++) {
		bool gone = true;
		for (size_t i = 0; i < n->nmailboxes && gone; i++)
			gone = n->mailboxes[i].id != old[k].id;
		if (gone && (events_for(n, old[k].name) & EV_NAME))
			send_list(s, "\\NonExistent", old[k].name, NULL);
	}
	for (size_t k = 0; k < nold; k++)
		free(old[k].name);
	free(old);
	free_names(old_subs, nold_subs);
}

/* SubscriptionChange: compare the subscriptions with the last look. */
static void subscriptions_changed(struct imap_session *s, struct imap_notify *n)
{
	char **old = n->subscriptions;
	size_t nold = n->nsubscriptions;

	n->subscriptions = NULL;
	n->nsubscriptions = 0;
	for (size_t i = 0; i < n->nmailboxes; i++)
		free(n->mailboxes[i].name);
	free(n->mailboxes);
	n->mailboxes = NULL;
	n->nmailboxes = 0;
	if (snapshot_take(s, n) < 0) {
		free_names(old, nold);
		return;
	}
	for (size_t i = 0; i < n->nsubscriptions; i++) {
		bool added = true;
		for (size_t k = 0; k < nold && added; k++)
			added = strcmp(old[k], n->subscriptions[i]) != 0;
		if (added && (events_for(n, n->subscriptions[i]) & EV_SUBSCRIPTION))
			send_list(s, "\\Subscribed", n->subscriptions[i], NULL);
	}
	for (size_t k = 0; k < nold; k++)
		if (!subscribed(n, old[k]) && (events_for(n, old[k]) & EV_SUBSCRIPTION))
			send_list(s, "", old[k], NULL);
	free_names(old, nold);
}

static bool session_busy(const struct imap_session *s)
{
	return s->c.waiting || s->pump != NULL || s->idling || s->in_sasl;
}

static void notify_event(void *ctx, const struct notify_event *ev)
{
	struct imap_session *s = ctx;
	struct imap_notify *n = s->notify;
	unsigned msg_kinds = NOTIFY_MESSAGE_NEW | NOTIFY_MESSAGE_EXPUNGE | NOTIFY_FLAGS;

	if (n == NULL || s->c.closed || s->state < IMAP_STATE_AUTH)
		return;
	if (ev->kinds & NOTIFY_MAILBOX)
		mailboxes_changed(s, n);
	if (ev->kinds & NOTIFY_SUBSCRIPTION)
		subscriptions_changed(s, n);
	if (!(ev->kinds & msg_kinds) || ev->mailbox_id == 0)
		return;
	if (s->view != NULL && ev->mailbox_id == s->view->mailbox_id) {
		const struct group *g = selected_group(n);
		/* IDLE pushes by itself; a running command reports at its end */
		if (g != NULL && g->events != 0 && !session_busy(s))
			imap_view_refresh(s, g->filter == F_SELECTED);
		return;
	}
	{
		struct store_mailbox mb = { 0 };
		const char *error = NULL;
		unsigned want = 0;

		if (store_mailbox_get_by_id(s->l->store, ev->mailbox_id, &mb, &error) > 0) {
			unsigned ev_have = events_for(n, mb.name);
			if (ev->kinds & (NOTIFY_MESSAGE_NEW | NOTIFY_MESSAGE_EXPUNGE))
				want |= EV_NEW | EV_EXPUNGE;
			if (ev->kinds & NOTIFY_FLAGS)
				want |= EV_FLAGS;
			if (ev_have & want)
				send_status(s, &mb);
		}
		store_mailbox_clear(&mb);
	}
}

/* ---- parsing ---- */

static const struct {
	const char *name;
	unsigned bit;
} event_names[] = {
	{ "MessageNew", EV_NEW }, { "MessageExpunge", EV_EXPUNGE }, { "FlagChange", EV_FLAGS },
	{ "MailboxName", EV_NAME }, { "SubscriptionChange", EV_SUBSCRIPTION },
};

#define BADEVENT "[BADEVENT (MessageNew MessageExpunge FlagChange MailboxName " \
		 "SubscriptionChange)]"

/* 0, or -1 after replying. */
static int parse_events(struct imap_session *s, const struct imap_arg *a, struct group *g)
{
	if (imap_arg_atom_is(a, "NONE")) {
		g->events = 0;
		return 0;
	}
	if (a->type != IMAP_ARG_LIST || a->count == 0) {
		imap_bad(s, "NOTIFY events are a list or NONE");
		return -1;
	}
	for (size_t i = 0; i < a->count; i++) {
		const struct imap_arg *e = &a->children[i];
		size_t k;

		if (e->type == IMAP_ARG_LIST) {
			imap_tagged(s, "NO", "[BADEVENT (MessageNew MessageExpunge FlagChange "
				    "MailboxName SubscriptionChange)] MessageNew takes no FETCH "
				    "attributes here");
			return -1;
		}
		for (k = 0; k < sizeof(event_names) / sizeof(event_names[0]); k++)
			if (imap_arg_atom_is(e, event_names[k].name))
				break;
		if (k == sizeof(event_names) / sizeof(event_names[0])) {
			imap_tagged(s, "NO", BADEVENT " Unsupported event");
			return -1;
		}
		g->events |= event_names[k].bit;
	}
	/* RFC 5465 5: MessageNew and MessageExpunge go together, FlagChange
	 * needs both; the selected mailbox has only message events */
	if (!!(g->events & EV_NEW) != !!(g->events & EV_EXPUNGE) ||
	    ((g->events & EV_FLAGS) && !(g->events & EV_NEW))) {
		imap_bad(s, "MessageNew and MessageExpunge go together; FlagChange needs both");
		return -1;
	}
	if ((g->filter == F_SELECTED || g->filter == F_SELECTED_DELAYED) &&
	    (g->events & (EV_NAME | EV_SUBSCRIPTION))) {
		imap_tagged(s, "NO", BADEVENT " The selected mailbox has only message events");
		return -1;
	}
	return 0;
}

/* 0, or -1 after replying. */
static int parse_group(struct imap_session *s, const struct imap_arg *a, struct group *g)
{
	static const struct {
		const char *name;
		enum filter f;
		bool names;
	} filters[] = {
		{ "SELECTED", F_SELECTED, false }, { "SELECTED-DELAYED", F_SELECTED_DELAYED, false },
		{ "INBOXES", F_INBOXES, false }, { "PERSONAL", F_PERSONAL, false },
		{ "SUBSCRIBED", F_SUBSCRIBED, false }, { "SUBTREE", F_SUBTREE, true },
		{ "MAILBOXES", F_MAILBOXES, true },
	};
	size_t k, pos = 1;

	if (a->type != IMAP_ARG_LIST || a->count < 2) {
		imap_bad(s, "Syntax: NOTIFY SET (filter (events)) ...");
		return -1;
	}
	for (k = 0; k < sizeof(filters) / sizeof(filters[0]); k++)
		if (imap_arg_atom_is(&a->children[0], filters[k].name))
			break;
	if (k == sizeof(filters) / sizeof(filters[0])) {
		imap_bad(s, "Unknown NOTIFY filter");
		return -1;
	}
	g->filter = filters[k].f;
	if (filters[k].names) {
		const struct imap_arg *m = &a->children[1];
		size_t count = m->type == IMAP_ARG_LIST ? m->count : 1;

		if (a->count < 3 || count == 0 || count > NOTIFY_MAX_NAMES) {
			imap_bad(s, "SUBTREE and MAILBOXES need mailbox names");
			return -1;
		}
		g->names = xcalloc(count, sizeof(*g->names));
		for (size_t i = 0; i < count; i++) {
			const struct imap_arg *one = m->type == IMAP_ARG_LIST ? &m->children[i] : m;
			struct slice wire;

			if (!imap_arg_astring(one, &wire) ||
			    (g->names[g->nnames] = imap_mailbox_from_wire(s, wire)) == NULL) {
				imap_bad(s, "Invalid mailbox name in NOTIFY");
				return -1;
			}
			g->nnames++;
		}
		pos = 2;
	}
	if (a->count != pos + 1) {
		imap_bad(s, "Syntax: NOTIFY SET (filter (events)) ...");
		return -1;
	}
	return parse_events(s, &a->children[pos], g);
}

void imap_cmd_notify(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_notify *n;
	bool status = false;
	size_t i = 1;

	if (cmd->nargs == 1 && imap_arg_atom_is(&cmd->args[0], "NONE")) {
		imap_notify_free(s);
		imap_tagged(s, "OK", "NOTIFY completed");
		return;
	}
	if (cmd->nargs < 2 || !imap_arg_atom_is(&cmd->args[0], "SET")) {
		imap_bad(s, "Syntax: NOTIFY SET [STATUS] (filter (events)) ... or NOTIFY NONE");
		return;
	}
	if (imap_arg_atom_is(&cmd->args[1], "STATUS")) {
		status = true;
		i = 2;
	}
	if (i >= cmd->nargs || cmd->nargs - i > NOTIFY_MAX_GROUPS) {
		imap_bad(s, "NOTIFY SET needs one to %d filters", NOTIFY_MAX_GROUPS);
		return;
	}
	n = xcalloc(1, sizeof(*n));
	n->groups = xcalloc(cmd->nargs - i, sizeof(*n->groups));
	for (; i < cmd->nargs; i++) {
		if (parse_group(s, &cmd->args[i], &n->groups[n->ngroups++]) < 0) {
			notify_free(n);
			return;
		}
	}
	if (snapshot_take(s, n) < 0) {
		notify_free(n);
		imap_tagged(s, "NO", "[SERVERBUG] NOTIFY failed, try again later");
		return;
	}
	/* the new set replaces the old one (RFC 5465 3) */
	imap_notify_free(s);
	n->sub = notify_subscribe(s->user_id, s->c.base, notify_event, s);
	s->notify = n;
	if (status) {
		/* section 5.1: the current STATUS of every mailbox with message events */
		for (size_t k = 0; k < n->nmailboxes; k++) {
			struct store_mailbox mb = { 0 };
			const char *error = NULL;

			if (s->view != NULL && s->view->mailbox_id == n->mailboxes[k].id)
				continue;
			if (!(events_for(n, n->mailboxes[k].name) & EV_NEW))
				continue;
			if (store_mailbox_get_by_id(s->l->store, n->mailboxes[k].id, &mb, &error) > 0)
				send_status(s, &mb);
			store_mailbox_clear(&mb);
		}
	}
	imap_tagged(s, "OK", "NOTIFY completed");
}
