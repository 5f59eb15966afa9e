/* QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA and SETQUOTA over the account
 * quota the administrator sets with `tern user quota`.
 *
 * Every mailbox of a user belongs to one quota root, named "" (the whole
 * account: all mailboxes count towards it).  Its resources are STORAGE
 * (in units of 1024 octets, rounded up, RFC 9208 5.1) and MESSAGE (5.2);
 * a resource without a limit is not reported, and an account without any
 * limit has no quota root (GETQUOTAROOT lists none, as Dovecot does when no
 * quota applies).  Limits are the administrator's: SETQUOTA is refused and
 * QUOTASET is not advertised.  The limits themselves are enforced by the
 * store on delivery, APPEND and COPY (NO [OVERQUOTA]). */
#include "imap/imap-private.h"
#include "lib/log.h"
#include "mail/imap-string.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#define QUOTA_ROOT "" /* the one root: the whole account */

/* The user's quota into *u; false (after replying NO) on a store error. */
static bool quota_load(struct imap_session *s, struct store_user *u)
{
	const char *error = NULL;

	memset(u, 0, sizeof(*u));
	if (store_user_get_by_id(s->l->store, s->user_id, u, &error) <= 0) {
		log_warn("imap", "sid=%s event=quota_failed error=%s", s->c.id,
			 log_quote(error ? error : "user not found"));
		imap_tagged(s, "NO", "[SERVERBUG] Quota lookup failed, try again later");
		store_user_clear(u);
		return false;
	}
	return true;
}

static bool quota_limited(const struct store_user *u)
{
	return u->quota_bytes > 0 || u->quota_messages > 0;
}

/* "* QUOTA "" (STORAGE used limit MESSAGE used limit)" */
static void quota_send(struct imap_session *s, const struct store_user *u)
{
	struct buf b;
	const char *sep = "";

	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "QUOTA ");
	imap_append_string(&b, QUOTA_ROOT, strlen(QUOTA_ROOT));
	buf_append_str(&b, " (");
	if (u->quota_bytes > 0) {
		buf_printf(&b, "STORAGE %lld %lld", (long long)((u->used_bytes + 1023) / 1024),
			   (long long)(u->quota_bytes / 1024));
		sep = " ";
	}
	if (u->quota_messages > 0)
		buf_printf(&b, "%sMESSAGE %lld %lld", sep, (long long)u->used_messages,
			   (long long)u->quota_messages);
	buf_append_str(&b, ")");
	imap_untagged(s, "%s", buf_cstr(&b));
	buf_free(&b);
}

void imap_cmd_getquotaroot(struct imap_session *s, const struct imap_command *cmd)
{
	struct store_user u;
	struct slice wire;
	int64_t mailbox_id;
	char *name;
	struct buf b;

	if (cmd->nargs != 1 || !imap_arg_astring(&cmd->args[0], &wire)) {
		imap_bad(s, "Syntax: GETQUOTAROOT mailbox");
		return;
	}
	name = imap_mailbox_existing(s, wire, "GETQUOTAROOT", &mailbox_id);
	if (name == NULL)
		return;
	if (!quota_load(s, &u)) {
		free(name);
		return;
	}
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "QUOTAROOT ");
	imap_mailbox_to_wire(s, &b, name);
	if (quota_limited(&u)) {
		buf_append_str(&b, " ");
		imap_append_string(&b, QUOTA_ROOT, strlen(QUOTA_ROOT));
	}
	imap_untagged(s, "%s", buf_cstr(&b));
	buf_free(&b);
	if (quota_limited(&u))
		quota_send(s, &u);
	store_user_clear(&u);
	free(name);
	imap_tagged(s, "OK", "GETQUOTAROOT completed");
}

void imap_cmd_getquota(struct imap_session *s, const struct imap_command *cmd)
{
	struct store_user u;
	struct slice root;

	if (cmd->nargs != 1 || !imap_arg_astring(&cmd->args[0], &root)) {
		imap_bad(s, "Syntax: GETQUOTA quota-root");
		return;
	}
	if (!quota_load(s, &u))
		return;
	if (root.len != strlen(QUOTA_ROOT) || !quota_limited(&u)) {
		store_user_clear(&u);
		imap_tagged(s, "NO", "[NONEXISTENT] No such quota root");
		return;
	}
	quota_send(s, &u);
	store_user_clear(&u);
	imap_tagged(s, "OK", "GETQUOTA completed");
}

void imap_cmd_setquota(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	/* RFC 9208 4.1: only with QUOTASET, which is not offered */
	imap_tagged(s, "NO", "[NOPERM] Quotas are set by the administrator");
}
