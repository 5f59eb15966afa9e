/* METADATA (RFC 5464): GETMETADATA and SETMETADATA on mailboxes and on the
 * server ("" as the mailbox name), stored by the store's annotations table
 * (schema 4), which keeps them across RENAME and drops them with DELETE.
 *
 * Semantics chosen where the RFC leaves room, following Dovecot:
 * - An entry asked for by name (DEPTH 0) that has no value is answered
 *   with NIL, so a client can tell "asked and empty" from "not asked".
 * - Every mailbox belongs to one user, so its /shared entries are seen by
 *   the same user as its /private ones; they are stored apart all the same.
 * - Server /shared entries are the administrator's: /shared/admin is the
 *   postmaster address (RFC 5464 6.2.2) and users cannot write any
 *   (NO [NOPERM]); server /private entries are per user.
 * - Limits (section 4.3): a value is at most IMAP_METADATA_MAX_VALUE bytes
 *   ([METADATA MAXSIZE n]); a user has at most METADATA_MAX_COUNT entries
 *   and METADATA_MAX_BYTES bytes of values ([METADATA TOOMANY]).  Every
 *   entry of a SETMETADATA is checked before any is written.
 * Values are sent as quoted strings or literals, or as literal8 when they
 * hold NUL bytes (section 5: value = nstring / literal8). */
#include "imap/imap-private.h"
#include "imap/metadata.h"
#include "lib/config.h"
#include "lib/log.h"
#include "mail/imap-string.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#define IMAP_METADATA_MAX_VALUE (64 * 1024)
#define METADATA_MAX_COUNT 1000
#define METADATA_MAX_BYTES (1024 * 1024)

/* ---- shared: the mailbox argument ---- */

/* mailbox_id for a wire name ("" = server, id 0); false after replying NO. */
static bool metadata_mailbox(struct imap_session *s, struct slice wire, int64_t *id_r,
			     char **name_r)
{
	*id_r = 0;
	*name_r = NULL;
	if (wire.len == 0)
		return true;
	*name_r = imap_mailbox_existing(s, wire, "METADATA", id_r);
	return *name_r != NULL;
}

/* ---- GETMETADATA ---- */

struct get_ctx {
	struct buf *out;
	size_t found;
	bool has_maxsize;
	uint64_t maxsize;
	uint64_t longest;           /* largest value left out for MAXSIZE */
};

static void append_value(struct buf *out, const char *v, size_t len)
{
	if (memchr(v, '\0', len) != NULL) {
		buf_printf(out, "~{%zu}\r\n", len);
		buf_append(out, v, len);
	} else {
		imap_append_string(out, v, len);
	}
}

static void add_entry(struct get_ctx *c, const char *entry, const char *value, size_t len)
{
	if (value != NULL && c->has_maxsize && len > c->maxsize) {
		if (len > c->longest)
			c->longest = len;
		return;
	}
	buf_append_str(c->out, c->found++ ? " " : "");
	buf_append_str(c->out, entry);
	buf_append_str(c->out, " ");
	if (value == NULL)
		buf_append_str(c->out, "NIL");
	else
		append_value(c->out, value, len);
}

static int got_entry(void *ctx, const char *entry, const char *value, size_t len)
{
	add_entry(ctx, entry, value, len);
	return 0;
}

/* Does the read-only server entry /shared/admin fall under (entry, depth)? */
static bool admin_entry_matches(const char *entry, int depth)
{
	if (strcmp(entry, "/shared/admin") == 0)
		return true;
	return depth != 0 && strcmp(entry, "/shared") == 0;
}

void imap_cmd_getmetadata(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_getmetadata_request req;
	struct imap_parse_error err;
	struct get_ctx c = { 0 };
	const char *error = NULL;
	char *name = NULL;
	int64_t mailbox_id;
	struct buf body, line;

	if (imap_getmetadata_parse(cmd->args, cmd->nargs, &s->arena, &req, &err) < 0) {
		imap_parse_failed(s, &err);
		return;
	}
	if (!metadata_mailbox(s, req.mailbox, &mailbox_id, &name))
		return;
	buf_init(&body, BUF_UNLIMITED);
	c.out = &body;
	c.has_maxsize = req.has_maxsize;
	c.maxsize = req.maxsize;
	for (size_t i = 0; i < req.nentries; i++) {
		size_t before = c.found;
		uint64_t longest_before = c.longest;
		const char *e = req.entries[i];

		if (mailbox_id == 0 && admin_entry_matches(e, req.depth)) {
			struct buf admin;
			buf_init(&admin, BUF_UNLIMITED);
			buf_printf(&admin, "mailto:postmaster@%s", s->l->cfg->hostname);
			add_entry(&c, "/shared/admin", buf_cstr(&admin), admin.len);
			buf_free(&admin);
			if (strcmp(e, "/shared/admin") == 0)
				continue;
		}
		if (store_annotation_get(s->l->store, s->user_id, mailbox_id, e, req.depth,
					 got_entry, &c, &error) < 0) {
			buf_free(&body);
			free(name);
			imap_store_failed(s, "GETMETADATA", NULL, error);
			return;
		}
		/* asked for by name and absent: NIL (as Dovecot) */
		if (c.found == before && req.depth == 0 && c.longest == longest_before)
			add_entry(&c, e, NULL, 0);
	}
	if (c.found > 0) {
		buf_init(&line, BUF_UNLIMITED);
		buf_append_str(&line, "METADATA ");
		if (name != NULL)
			imap_mailbox_to_wire(s, &line, name);
		else
			buf_append_str(&line, "\"\"");
		buf_append_str(&line, " (");
		buf_append(&line, body.data, body.len);
		buf_append_str(&line, ")");
		imap_untagged(s, "%s", buf_cstr(&line));
		buf_free(&line);
	}
	buf_free(&body);
	free(name);
	if (c.longest > 0)
		imap_tagged(s, "OK", "[METADATA LONGENTRIES %llu] GETMETADATA completed",
			    (unsigned long long)c.longest);
	else
		imap_tagged(s, "OK", "GETMETADATA completed");
}

/* ---- SETMETADATA ---- */

struct set_item {
	char *entry;
	char *value;                /* NULL: remove */
	size_t len;
};

struct set_ctx {
	struct imap_session *s;
	int64_t mailbox_id;
	struct set_item *items;
	size_t count, next;
};

static void set_ctx_free(struct set_ctx *c)
{
	for (size_t i = 0; i < c->count; i++) {
		free(c->items[i].entry);
		free(c->items[i].value);
	}
	free(c->items);
	free(c);
}

static bool set_next(struct set_ctx *c);

static void set_done(void *ctx, const struct store_write_result *r)
{
	struct set_ctx *c = ctx;
	struct imap_session *s = c->s;

	if (s->c.closed) {
		set_ctx_free(c);
		imap_session_unref(s);
		return;
	}
	if (r->status < 0) {
		set_ctx_free(c);
		imap_store_failed(s, "SETMETADATA", r->code, r->error);
		if (imap_session_unref(s))
			imap_resume(s);
		return;
	}
	if (c->next < c->count && set_next(c))
		return;             /* the next write keeps the reference */
	if (c->next < c->count)
		imap_tagged(s, "NO", "[SERVERBUG] Cannot change the store now, try again later");
	else
		imap_tagged(s, "OK", "SETMETADATA completed");
	set_ctx_free(c);
	if (imap_session_unref(s))
		imap_resume(s);
}

/* Start the next write; false when the store refused to queue it. */
static bool set_next(struct set_ctx *c)
{
	struct set_item *it = &c->items[c->next];
	struct imap_session *s = c->s;

	if (store_annotation_set(s->l->store, s->c.base, s->user_id, c->mailbox_id, it->entry,
				 it->value, it->len, set_done, c) < 0)
		return false;
	c->next++;
	return true;
}

static int exists_cb(void *ctx, const char *entry, const char *value, size_t len)
{
	(void)entry;
	*(size_t *)ctx = len + (value != NULL);
	return 1;
}

void imap_cmd_setmetadata(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_setmetadata_request req;
	struct imap_parse_error err;
	const char *error = NULL;
	int64_t mailbox_id, count = 0, bytes = 0;
	struct set_ctx *c;
	char *name = NULL;

	if (imap_setmetadata_parse(cmd->args, cmd->nargs, &s->arena, &req, &err) < 0) {
		imap_parse_failed(s, &err);
		return;
	}
	if (!metadata_mailbox(s, req.mailbox, &mailbox_id, &name))
		return;
	free(name);
	if (store_annotation_usage(s->l->store, s->user_id, &count, &bytes, &error) < 0) {
		imap_store_failed(s, "SETMETADATA", NULL, error);
		return;
	}
	for (size_t i = 0; i < req.count; i++) {
		const struct imap_metadata_value *v = &req.values[i];
		size_t old = 0;   /* old value's length + 1, 0 when absent */

		if (mailbox_id == 0 && strncmp(v->entry, "/shared", 7) == 0) {
			imap_tagged(s, "NO", "[NOPERM] Server /shared entries are read-only");
			return;
		}
		if (!v->nil && v->value.len > IMAP_METADATA_MAX_VALUE) {
			imap_tagged(s, "NO", "[METADATA MAXSIZE %d] Value too large",
				    IMAP_METADATA_MAX_VALUE);
			return;
		}
		if (store_annotation_get(s->l->store, s->user_id, mailbox_id, v->entry, 0,
					 exists_cb, &old, &error) < 0) {
			imap_store_failed(s, "SETMETADATA", NULL, error);
			return;
		}
		if (old > 0) {
			count--;
			bytes -= (int64_t)(old - 1);
		}
		if (!v->nil) {
			count++;
			bytes += (int64_t)v->value.len;
		}
	}
	if (count > METADATA_MAX_COUNT || bytes > METADATA_MAX_BYTES) {
		imap_tagged(s, "NO", "[METADATA TOOMANY] Too many annotations");
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->s = s;
	c->mailbox_id = mailbox_id;
	c->count = req.count;
	c->items = xcalloc(req.count, sizeof(*c->items));
	for (size_t i = 0; i < req.count; i++) {
		c->items[i].entry = xstrdup(req.values[i].entry);
		if (!req.values[i].nil) {
			c->items[i].value = xmalloc(req.values[i].value.len + 1);
			memcpy(c->items[i].value, req.values[i].value.p, req.values[i].value.len);
			c->items[i].value[req.values[i].value.len] = '\0';
			c->items[i].len = req.values[i].value.len;
		}
	}
	s->c.waiting = true;
	imap_session_ref(s);
	if (!set_next(c)) {
		s->c.waiting = false;
		imap_session_unref(s);
		set_ctx_free(c);
		imap_tagged(s, "NO", "[SERVERBUG] Cannot change the store now, try again later");
	}
}
