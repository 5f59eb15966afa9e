/* The message store: every piece of persistent state behind one interface.
 *
 * Contract (see docs/storage.md for the on-disk layout and schema):
 *  - Only store/ talks SQL.  The embedded backend is SQLite in WAL mode with
 *    synchronous=FULL plus one file per delivered message copy.
 *  - One writer per process: every write of the server goes through the
 *    commit thread, which batches requests (group commit): it writes the
 *    message files, makes the batch durable (syncfs of the data filesystem,
 *    or fsync per file when configured) and the directories it touched,
 *    then commits one index transaction for the batch, and only then calls
 *    each request's completion.  Completion callbacks run on the event_base
 *    given with the request (or on the commit thread when base is NULL).
 *  - Reads are synchronous, thread-safe, and use a read-only connection per
 *    thread; they see every committed write, including those of other
 *    processes (the `tern` CLI), so directory changes need no restart.
 *  - Synchronous write calls (directory changes, used by the CLI) are also
 *    queued to the commit thread and waited for; never call them from an
 *    event-loop thread on a hot path.
 *  - A delivered copy is stored exactly as IMAP and POP3 serve it: CRLF
 *    line ends, "Return-Path: <...>" and "Delivered-To: ..." at the top.
 *  - Names: addresses and domain names are stored lowercased (the local
 *    part is matched case-insensitively, as Postfix and Dovecot do).
 *  - Functions returning int give 0 on success and a negative value on
 *    error with a readable *error_r (a static string or one valid until the
 *    next call on this thread). */
#ifndef TERN_STORE_H
#define TERN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct event_base;
struct store;

#define STORE_SCHEMA_VERSION_CURRENT 7

enum store_fsync_mode {
	STORE_FSYNC_SYNCFS,   /* one syncfs() per batch (default) */
	STORE_FSYNC_FILE,     /* fsync() each file */
};

struct store_options {
	enum store_fsync_mode fsync_mode;
	unsigned commit_batch;        /* max requests per group commit; 0 = 256 */
	bool readonly;                /* no commit thread; writes fail */
};

/* Open (creating and migrating if needed) the store in data_dir.  Starts
 * the commit thread unless readonly. */
int store_open(const char *data_dir, const struct store_options *opts,
	       struct store **store_r, const char **error_r);
/* Finish queued writes, stop the commit thread, close everything; sets
 * *store to NULL. */
void store_close(struct store **store);
/* Schema version of the opened store (after migration). */
int store_schema_version(struct store *store);

/* ---------------------------------------------------------------------
 * Directory: domains, users, aliases
 * ------------------------------------------------------------------- */

enum store_sender_policy {
	STORE_SENDER_OWN = 0,   /* default: own addresses and aliases that reach the user */
	STORE_SENDER_DOMAIN,    /* any address in one of the user's domain */
	STORE_SENDER_ANY,       /* no check */
};

struct store_domain {
	int64_t id;
	char *name;
	enum store_sender_policy sender_policy;
};

struct store_user {
	int64_t id;
	int64_t domain_id;
	char *address;          /* local@domain, lowercased */
	char *password_hash;    /* "$y$..." or a Dovecot "{SCHEME}..." string; may be NULL */
	char *scram_sha256;     /* auth/'s SCRAM string form, or NULL (imported users) */
	int64_t quota_bytes;    /* 0 = unlimited */
	int64_t used_bytes;     /* sum of message sizes in all mailboxes */
	int64_t used_messages;
	int64_t quota_messages; /* 0 = unlimited (RFC 9208 MESSAGE resource) */
};

struct store_alias {
	int64_t id;
	char *alias;            /* "local@domain", or "@domain" for a catch-all */
	char *target;           /* an address, local or remote */
};

void store_domain_clear(struct store_domain *d);
void store_user_clear(struct store_user *u);
void store_alias_clear(struct store_alias *a);

int store_domain_add(struct store *store, const char *name, const char **error_r);
/* Fails while the domain still has users (force=false); with force, removes
 * its users, aliases and their mail. */
int store_domain_remove(struct store *store, const char *name, bool force, const char **error_r);
int store_domain_set_sender_policy(struct store *store, const char *name,
				   enum store_sender_policy policy, const char **error_r);
/* 1 and *domain_r filled when found, 0 when not, <0 on error. */
int store_domain_get(struct store *store, const char *name, struct store_domain *domain_r,
		     const char **error_r);
/* Calls cb for each domain in name order; cb returning non-zero stops. */
int store_domain_list(struct store *store, int (*cb)(void *ctx, const struct store_domain *d),
		      void *ctx, const char **error_r);

/* The domain of address must exist. password_hash and scram may be NULL. */
int store_user_add(struct store *store, const char *address, const char *password_hash,
		   const char *scram_sha256, int64_t quota_bytes, const char **error_r);
int store_user_set_password(struct store *store, const char *address,
			    const char *password_hash, const char *scram_sha256,
			    const char **error_r);
int store_user_set_quota(struct store *store, const char *address, int64_t quota_bytes,
			 const char **error_r);
/* Removes the user, their mailboxes and message files. */
int store_user_remove(struct store *store, const char *address, const char **error_r);
/* 1 and *user_r filled when found, 0 when not, <0 on error. */
int store_user_get(struct store *store, const char *address, struct store_user *user_r,
		   const char **error_r);
int store_user_get_by_id(struct store *store, int64_t id, struct store_user *user_r,
			 const char **error_r);
/* domain NULL = all users; cb returning non-zero stops. */
int store_user_list(struct store *store, const char *domain,
		    int (*cb)(void *ctx, const struct store_user *u), void *ctx,
		    const char **error_r);

int store_alias_add(struct store *store, const char *alias, const char *target,
		    const char **error_r);
/* target NULL removes every target of alias. */
int store_alias_remove(struct store *store, const char *alias, const char *target,
		       const char **error_r);
/* alias NULL = all; cb returning non-zero stops. */
int store_alias_list(struct store *store, const char *alias,
		     int (*cb)(void *ctx, const struct store_alias *a), void *ctx,
		     const char **error_r);

/* Recipient resolution, as the SMTP server does it at RCPT time:
 *   1. domain not local                    -> STORE_RCPT_REMOTE
 *   2. exact user                          -> that user
 *   3. exact alias                         -> its targets (expanded recursively,
 *                                             up to 10 levels, duplicates removed)
 *   4. with subaddress: local "u+tag" -> "u" tried by 2 and 3
 *   5. catch-all alias "@domain"           -> its targets
 *   6. otherwise                           -> STORE_RCPT_UNKNOWN
 * Targets in local domains that do not exist are dropped; targets in
 * remote domains are listed in remote[] (forwarding, delivered by the queue). */
enum store_rcpt_kind { STORE_RCPT_UNKNOWN, STORE_RCPT_LOCAL, STORE_RCPT_REMOTE };

struct store_rcpt_user {
	int64_t user_id;
	char *address;          /* the user's address (for Delivered-To) */
};

struct store_rcpt {
	enum store_rcpt_kind kind;
	struct store_rcpt_user *users;
	size_t user_count;
	char **remote;          /* forwarding targets outside our domains */
	size_t remote_count;
};

int store_rcpt_resolve(struct store *store, const char *address, const char *subaddress_sep,
		       struct store_rcpt *rcpt_r, const char **error_r);
void store_rcpt_clear(struct store_rcpt *rcpt);
/* The local users of rcpt as recipients of one delivery (to INBOX, with
 * Delivered-To their address), borrowing rcpt's strings: an array of
 * rcpt->user_count entries for the caller to free, NULL when there are
 * none. */
struct store_delivery_rcpt *store_rcpt_deliveries(const struct store_rcpt *rcpt);

/* May user_id use address as envelope sender / header From under its
 * domain's sender policy?  1 yes, 0 no, <0 error. */
int store_sender_allowed(struct store *store, int64_t user_id, const char *address,
			 const char *subaddress_sep, const char **error_r);

/* Would adding bytes (and one message) take user_id over its quota?
 * 1 = over quota, 0 = fits, <0 error. */
int store_quota_exceeded(struct store *store, int64_t user_id, int64_t bytes,
			 const char **error_r);
/* Message-count quota (RFC 9208 MESSAGE resource); 0 = unlimited. */
int store_user_set_quota_messages(struct store *store, const char *address,
				  int64_t max_messages, const char **error_r);

/* ---------------------------------------------------------------------
 * Mailboxes and messages
 * ------------------------------------------------------------------- */

/* Special-use mailboxes created for each user on first use (RFC 6154). */
#define STORE_SPECIAL_MAILBOXES { "INBOX", "Drafts", "Sent", "Junk", "Trash", "Archive" }

struct store_mailbox {
	int64_t id;
	int64_t user_id;
	char *name;             /* "INBOX", "Sent", "Lists/tern" (hierarchy separator '/') */
	char *special_use;      /* "\\Sent" etc., or NULL */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	int64_t bytes;
	char *objectid;         /* RFC 8474 MAILBOXID, set at creation, kept across
				   RENAME, never reused */
};

struct store_message {
	int64_t id;
	int64_t mailbox_id;
	uint32_t uid;
	uint64_t modseq;
	time_t internal_date;
	int64_t size;           /* exact size of the file: RFC822.SIZE */
	char *flags;            /* space-separated system flags and keywords, "" for none */
	char *path;             /* absolute path of the message file */
};

void store_mailbox_clear(struct store_mailbox *m);
void store_message_clear(struct store_message *m);

/* Mailboxes of a user (the special-use set is created first if missing).
 * cb returning non-zero stops. */
int store_mailbox_list(struct store *store, int64_t user_id,
		       int (*cb)(void *ctx, const struct store_mailbox *m), void *ctx,
		       const char **error_r);
/* 1 found, 0 not, <0 error. */
int store_mailbox_get(struct store *store, int64_t user_id, const char *name,
		      struct store_mailbox *mailbox_r, const char **error_r);
/* Messages of a mailbox in UID order, with uid >= min_uid. */
int store_message_list(struct store *store, int64_t mailbox_id, uint32_t min_uid,
		       int (*cb)(void *ctx, const struct store_message *m), void *ctx,
		       const char **error_r);

/* ---------------------------------------------------------------------
 * Delivery (asynchronous, group-committed)
 * ------------------------------------------------------------------- */

struct store_delivery_rcpt {
	int64_t user_id;
	const char *delivered_to;   /* address for the Delivered-To header */
	const char *mailbox;        /* NULL = INBOX */
};

/* A remote recipient of a delivery (the outbound queue, schema 5). */
struct store_queue_rcpt_in {
	const char *address;        /* local@domain */
	const char *orcpt;          /* DSN ORCPT ("rfc822;addr") or NULL */
	unsigned notify;            /* STORE_QUEUE_NOTIFY_* bits, 0 = default */
};

enum store_queue_flags {
	STORE_QUEUE_F_8BIT = 1 << 0,       /* the body has 8-bit data (BODY=8BITMIME) */
	STORE_QUEUE_F_SMTPUTF8 = 1 << 1,   /* needs SMTPUTF8 */
	STORE_QUEUE_F_REQUIRETLS = 1 << 2, /* RFC 8689 */
};

enum store_queue_notify {   /* RFC 3461 NOTIFY */
	STORE_QUEUE_NOTIFY_NEVER = 1 << 0, STORE_QUEUE_NOTIFY_SUCCESS = 1 << 1,
	STORE_QUEUE_NOTIFY_FAILURE = 1 << 2, STORE_QUEUE_NOTIFY_DELAY = 1 << 3,
};

struct store_delivery {
	const char *return_path;    /* envelope sender without <>; "" for the null sender */
	const char *body;           /* the message with CRLF line ends, trace headers included */
	size_t body_len;
	time_t internal_date;
	const char *dsn;            /* DSN parameters (ENVID, RET, per-rcpt NOTIFY/ORCPT) as
				       a printable string kept with each copy, or NULL */
	const struct store_delivery_rcpt *rcpts;
	size_t rcpt_count;
	/* remote recipients: queued for delivery (queue.c) in the same commit */
	const struct store_queue_rcpt_in *remote;
	size_t remote_count;
	int64_t submit_user_id;     /* the authenticated submitter, 0 for none */
	unsigned queue_flags;       /* STORE_QUEUE_F_* */
	const char *queue_sender;   /* envelope sender of the queued copy (an SRS-rewritten
				       sender when forwarding; "" = null sender), or NULL
				       for return_path */
};

/* Called once per request: status 0 when every copy is durable and
 * committed, <0 with error otherwise (no copy is visible then). */
typedef void store_done_cb(void *ctx, int status, const char *error);

/* Queue a delivery to the commit thread.  Everything in d is copied before
 * return.  cb runs on base (event-loop thread) or, with base NULL, on the
 * commit thread.  Returns 0 when queued, <0 (cb not called) on error. */
int store_deliver(struct store *store, struct event_base *base,
		  const struct store_delivery *d, store_done_cb *cb, void *ctx);
/* The same, waiting for the result (CLI, tests). */
int store_deliver_sync(struct store *store, const struct store_delivery *d,
		       const char **error_r);

/* ---------------------------------------------------------------------
 * Maintenance
 * ------------------------------------------------------------------- */

/* Check the index against the files: every message row has a file of the
 * recorded size, no file is unreferenced, per-mailbox counters and per-user
 * usage match.  cb gets one line per problem.  Returns the number of
 * problems found (0 = consistent), <0 on error. */
int store_verify(struct store *store, void (*cb)(void *ctx, const char *problem), void *ctx,
		 const char **error_r);

/* Test hook: make the Nth write, fsync or rename of the commit thread from
 * now fail with err (ENOSPC, EIO); 0 disables.  Also settable with the
 * environment variable TERN_STORE_FAULT="N:ENOSPC". */
void store_fault_inject(struct store *store, unsigned nth, int err);

/* ---------------------------------------------------------------------
 * POP3 / expunge
 * ------------------------------------------------------------------- */

/* What a POP3 session changes in its maildrop when it ends in the UPDATE
 * state (RFC 1939 6), and the leave-on-server expiry applied at login. */
struct store_pop3_update {
	int64_t user_id;
	int64_t mailbox_id;             /* the maildrop (INBOX) of user_id */
	const uint32_t *expunge_uids;   /* DELE'd messages, any order */
	size_t expunge_count;
	const uint32_t *retrieved_uids; /* RETR'd messages: \Seen is added and
					   pop3_retrieved set when still NULL */
	size_t retrieved_count;
	time_t retrieved_at;            /* the time recorded (0 = clock_now()) */
	time_t expire_before;           /* also expunge messages POP3 retrieved before
					   this time (0 = none): pop3.expire_days */
	bool to_trash;                  /* move instead of expunging (pop3.delete_to_trash);
					   expired messages are always expunged */
};

/* Apply u in one commit-thread request, atomically:
 *  - UIDs no longer in the mailbox (expunged meanwhile by IMAP or another
 *    session) are skipped silently;
 *  - every change of this request gets one new modseq (the mailbox's
 *    highestmodseq + 1): flag changes set the message's modseq, each
 *    expunged UID is recorded in the expunge history with it, so IMAP
 *    sessions can report EXPUNGE / VANISHED;
 *  - expunging keeps the mailbox counters and users.used_bytes /
 *    used_messages exact and unlinks the message files after the commit;
 *    moving to Trash gives the message the next UID of the user's Trash
 *    (created if missing) and leaves the file and the usage as they are.
 * Everything in u is copied before return.  cb runs on base (or on the
 * commit thread with base NULL) with status 0 when committed, <0 with the
 * reason otherwise (nothing changed then).  Returns 0 when queued, <0 (cb
 * not called) when the store is read-only or u is invalid.  The number of
 * messages actually removed is logged (event=pop3_update). */
int store_pop3_update(struct store *store, struct event_base *base,
		      const struct store_pop3_update *u, store_done_cb *cb, void *ctx);
/* The same, waiting for the result (CLI, tests); never from a completion
 * running on the commit thread. */
int store_pop3_update_sync(struct store *store, const struct store_pop3_update *u,
			   const char **error_r);

/* Is the message uid still in mailbox_id?  1 yes, 0 no (expunged or moved),
 * <0 error.  A synchronous read. */
int store_message_exists(struct store *store, int64_t mailbox_id, uint32_t uid,
			 const char **error_r);

/* ---------------------------------------------------------------------
 * IMAP: mailbox management, append, flags, copy/move, expunge, changes
 *
 * Mailbox names are UTF-8 with '/' as the hierarchy separator (the IMAP
 * layer converts modified UTF-7).  "INBOX" is matched case-insensitively
 * and always exists.  Every write below goes through the commit thread
 * (group commit, durable before cb), gives the changed mailbox a new
 * modseq (highestmodseq + 1, also stored on each changed message), and
 * after the commit publishes a lib/notify.h event for the user
 * (NOTIFY_MESSAGE_NEW / _EXPUNGE / NOTIFY_FLAGS / NOTIFY_MAILBOX /
 * NOTIFY_SUBSCRIPTION), as deliveries and POP3 updates do.  cb runs on
 * base (or on the commit thread with base NULL); the result and everything
 * it points to are valid only during cb.  Each async call returns 0 when
 * queued, <0 (cb not called) when the store is read-only or the arguments
 * are invalid.
 * ------------------------------------------------------------------- */

struct store_write_result {
	int status;                     /* 0 ok, <0 failed (nothing changed) */
	const char *error;              /* with status <0: readable reason */
	const char *code;               /* with status <0: IMAP response code or NULL:
					   "ALREADYEXISTS" "NONEXISTENT" "OVERQUOTA"
					   "INUSE" "CANNOT" "LIMIT" */
	uint64_t modseq;                /* the mailbox's highestmodseq after the change
					   (COPY: the destination's; MOVE: the source's) */
	uint32_t uidvalidity;           /* APPEND/COPY/MOVE: of the destination (UIDPLUS) */
	const uint32_t *src_uids;       /* COPY/MOVE: source UIDs actually copied, ascending */
	const uint32_t *dst_uids;       /* APPEND/COPY/MOVE: the new UIDs, same order */
	size_t count;                   /* entries in src_uids/dst_uids */
	const uint32_t *modified_uids;  /* flags update with unchangedsince: UIDs not
					   changed because their modseq was higher */
	size_t modified_count;
	int64_t mailbox_id;             /* CREATE: the new mailbox */
};

typedef void store_write_cb(void *ctx, const struct store_write_result *r);

/* 1 found, 0 not, <0 error. */
int store_mailbox_get_by_id(struct store *store, int64_t mailbox_id,
			    struct store_mailbox *mailbox_r, const char **error_r);

/* CREATE: missing parents are created too; special_use ("\\Archive", ...)
 * may be NULL; an existing name fails with code ALREADYEXISTS. */
int store_mailbox_create(struct store *store, struct event_base *base, int64_t user_id,
			 const char *name, const char *special_use, store_write_cb *cb,
			 void *ctx);
/* DELETE: INBOX cannot be deleted; a mailbox with children fails (code
 * INUSE, as Dovecot); its messages are removed with their files (after the
 * commit) and the user's usage is lowered. */
int store_mailbox_delete(struct store *store, struct event_base *base, int64_t user_id,
			 const char *name, store_write_cb *cb, void *ctx);
/* RENAME, children included (RFC 3501 6.3.5); renaming INBOX moves all its
 * messages into the new mailbox (new UIDs there) and leaves INBOX empty.
 * The target must not exist (ALREADYEXISTS); missing parents are created. */
int store_mailbox_rename(struct store *store, struct event_base *base, int64_t user_id,
			 const char *from, const char *to, store_write_cb *cb, void *ctx);
/* SUBSCRIBE / UNSUBSCRIBE (any name, existing or not, RFC 3501 6.3.6). */
int store_subscribe(struct store *store, struct event_base *base, int64_t user_id,
		    const char *name, bool subscribe, store_write_cb *cb, void *ctx);
/* Subscribed names of a user, in name order; cb returning non-zero stops. */
int store_subscription_list(struct store *store, int64_t user_id,
			    int (*cb)(void *ctx, const char *name), void *ctx,
			    const char **error_r);

/* APPEND (RFC 3501 6.3.11): data is the message as the client sent it
 * (CRLF line ends; bare LF is normalised to CRLF), stored without
 * Return-Path/Delivered-To; flags space-separated ("" none; \Recent is
 * ignored); internal_date 0 = now.  Fails with OVERQUOTA past the user's
 * quota and NONEXISTENT ("TRYCREATE" is the IMAP layer's) for a missing
 * mailbox.  Result: uidvalidity and dst_uids[0]. */
int store_append(struct store *store, struct event_base *base, int64_t user_id,
		 const char *mailbox, const char *data, size_t len, const char *flags,
		 time_t internal_date, store_write_cb *cb, void *ctx);

enum store_flags_mode { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };

/* STORE: change the flags of uids (any order; missing ones skipped) in
 * mailbox_id.  unchangedsince > 0 (CONDSTORE, RFC 7162 3.1.3): messages
 * whose modseq is higher are not changed and are listed in modified_uids.
 * Only messages whose flags really change get the new modseq. */
int store_flags_update(struct store *store, struct event_base *base, int64_t mailbox_id,
		       const uint32_t *uids, size_t count, enum store_flags_mode mode,
		       const char *flags, uint64_t unchangedsince, store_write_cb *cb,
		       void *ctx);

/* COPY / MOVE (RFC 3501 6.4.7, RFC 6851) of uids (any order, missing ones
 * skipped) from src_mailbox_id to dst_mailbox_id of the same user, keeping
 * flags and internal date; copies share the message file (hard link).
 * MOVE expunges the sources in the same transaction (expunge history
 * recorded).  COPY fails with OVERQUOTA past the quota.  Result:
 * uidvalidity of the destination, src_uids and dst_uids (COPYUID). */
int store_copy(struct store *store, struct event_base *base, int64_t src_mailbox_id,
	       const uint32_t *uids, size_t count, int64_t dst_mailbox_id, bool move,
	       store_write_cb *cb, void *ctx);

/* EXPUNGE exactly these uids (the IMAP layer picks the \Deleted ones);
 * missing ones are skipped.  Recorded in the expunge history with the new
 * modseq; files unlinked after the commit (when no other copy links them). */
int store_expunge(struct store *store, struct event_base *base, int64_t mailbox_id,
		  const uint32_t *uids, size_t count, store_write_cb *cb, void *ctx);

/* \Recent (IMAP4rev1): the first session to select a mailbox after new mail
 * arrived sees it as recent.  Atomically returns the mailbox's previous
 * "recent" mark in *first_recent_uid_r (messages with uid >= it are recent
 * for this session) and moves the mark to uidnext.  Synchronous (short,
 * through the commit thread). */
int store_mailbox_claim_recent(struct store *store, int64_t mailbox_id,
			       uint32_t *first_recent_uid_r, const char **error_r);
/* Messages of mailbox_id that no session has claimed as \Recent yet (uid
 * >= the mailbox's recent mark), for STATUS RECENT; reads only, moves no
 * mark.  0 and *count_r, or -1 (*error_r).  A missing mailbox counts 0. */
int store_mailbox_unclaimed_recent(struct store *store, int64_t mailbox_id,
				   uint32_t *count_r, const char **error_r);

/* Messages of mailbox_id whose modseq is > since (CONDSTORE FETCH
 * CHANGEDSINCE, QRESYNC), in UID order; cb returning non-zero stops. */
int store_message_list_changed(struct store *store, int64_t mailbox_id, uint64_t since,
			       int (*cb)(void *ctx, const struct store_message *m), void *ctx,
			       const char **error_r);
/* UIDs expunged from mailbox_id with a modseq > since (QRESYNC VANISHED),
 * ascending; cb returning non-zero stops. */
int store_expunged_since(struct store *store, int64_t mailbox_id, uint64_t since,
			 int (*cb)(void *ctx, uint32_t uid), void *ctx, const char **error_r);
/* Keywords ever used in mailbox_id (for the FLAGS / PERMANENTFLAGS
 * responses), space-separated, malloc'd. */
char *store_mailbox_keywords(struct store *store, int64_t mailbox_id, const char **error_r);

/* ---------------------------------------------------------------------
 * Message summaries (schema 4): computed once from the header when a
 * message is stored (delivery, APPEND; COPY/MOVE keep the source's)
 * ------------------------------------------------------------------- */

struct store_summary {
	uint32_t uid;
	time_t internal_date;
	time_t sent_date;        /* Date: header in UTC; internal_date when missing or invalid (RFC 5256 SORT DATE) */
	time_t savedate;         /* when the message entered this mailbox (RFC 8514 SAVEDATE) */
	int64_t size;
	const char *envelope;    /* the ENVELOPE parenthesised list exactly as FETCH ENVELOPE sends it (mail/imap-envelope.h) */
	const char *subject;     /* Subject decoded to UTF-8 (RFC 2047 words, charset), "" when none */
	const char *from_mailbox;/* addr-mailbox (local part) of the first From address (RFC 5256), "" none */
	const char *to_mailbox;  /* same for To */
	const char *cc_mailbox;  /* same for Cc */
	const char *from_display;/* RFC 5957: decoded display-name of the first From address if non-empty, else its addr-spec; "" none */
	const char *to_display;  /* same for To */
	const char *message_id;  /* Message-ID header value, unfolded and trimmed, "" none */
	const char *in_reply_to; /* In-Reply-To, unfolded, "" none */
	const char *references;  /* References, unfolded, "" none */
	const char *preview;     /* RFC 8970 preview: UTF-8, at most 200 characters, "" when none */
	const char *emailid;     /* RFC 8474 EMAILID: same for every copy/move of one stored message */
	const char *threadid;    /* RFC 8474 THREADID */
};
/* Summaries of mailbox_id's messages with min_uid <= uid <= max_uid
 * (max_uid 0 = no upper bound), in UID order; the strings are valid during
 * cb only.  Messages stored before schema 4 get their summary computed from
 * the file (and saved, so it is done once).  cb returning non-zero stops. */
int store_summary_list(struct store *store, int64_t mailbox_id, uint32_t min_uid,
		       uint32_t max_uid, int (*cb)(void *ctx, const struct store_summary *s),
		       void *ctx, const char **error_r);

/* ---------------------------------------------------------------------
 * Annotations (RFC 5464 METADATA)
 * ------------------------------------------------------------------- */

/* Set (value != NULL) or remove (value == NULL) one entry, e.g.
 * "/private/comment" or "/shared/vendor/x/y" (the caller lowercases and
 * validates the name), of mailbox_id of user_id, or a server entry with
 * mailbox_id 0.  Asynchronous through the commit thread like the other
 * writes; a missing mailbox fails with code NONEXISTENT. */
int store_annotation_set(struct store *store, struct event_base *base, int64_t user_id,
			 int64_t mailbox_id, const char *entry, const char *value, size_t len,
			 store_write_cb *cb, void *ctx);
/* Entries of (user_id, mailbox_id) named entry (depth 0), or also its
 * children one level down (depth 1) or all levels (depth -1), in name
 * order; cb non-zero stops. */
int store_annotation_get(struct store *store, int64_t user_id, int64_t mailbox_id,
			 const char *entry, int depth,
			 int (*cb)(void *ctx, const char *entry, const char *value, size_t len),
			 void *ctx, const char **error_r);
/* Count and total value bytes of a user's annotations (all mailboxes and
 * server entries), for the METADATA limits. */
int store_annotation_usage(struct store *store, int64_t user_id, int64_t *count_r,
			   int64_t *bytes_r, const char **error_r);

/* ---------------------------------------------------------------------
 * Outbound queue (schema 5, queue.c).  Messages enter through
 * store_deliver (struct store_delivery's remote recipients) in the same
 * group commit as local copies; the scheduler (src/queue) lists what is
 * due and records each attempt's outcome per recipient.
 * ------------------------------------------------------------------- */

enum store_queue_state {
	STORE_QUEUE_QUEUED = 0,     /* not tried yet */
	STORE_QUEUE_DEFERRED = 1,   /* tried, temporary failure: next_attempt set */
	STORE_QUEUE_DELIVERED = 2,
	STORE_QUEUE_BOUNCED = 3,    /* permanent failure or given up */
};

struct store_queue_rcpt {
	int64_t id;
	const char *address, *domain;
	const char *orcpt;          /* or NULL */
	unsigned notify;
	enum store_queue_state state;
	int attempts;
	time_t next_attempt, last_attempt;   /* last_attempt 0: never */
	const char *last_error;     /* or NULL */
	bool warned;                /* the delay DSN was sent */
	bool give_up;               /* the administrator bounced it: bounce at once */
};

struct store_queue_msg {
	int64_t id;
	const char *qid;            /* the queue id shown to administrators */
	const char *path;           /* the message file */
	int64_t size;
	const char *sender;         /* "" for the null sender */
	int64_t user_id;            /* submitter, 0 for none */
	time_t created;
	const char *dsn;            /* ENVID / RET as store_delivery.dsn, or NULL */
	unsigned flags;             /* STORE_QUEUE_F_* */
	bool held;
	const struct store_queue_rcpt *rcpts;
	size_t rcpt_count;
};

struct store_queue_filter {
	const char *qid;            /* exact queue id, or NULL */
	const char *sender;         /* substring of the sender, or NULL */
	const char *rcpt;           /* substring of a recipient, or NULL */
	const char *domain;         /* a recipient's domain, exactly, or NULL */
	time_t older_than;          /* created before this, or 0 */
	bool due;                   /* only messages with a pending recipient due at now */
	bool pending_only;          /* only recipients still queued or deferred */
	time_t now;
	size_t limit;               /* 0 = all */
};

/* Queued messages matching f (oldest first) with their recipients (all,
 * or the pending ones with pending_only); held messages are never due.
 * Everything passed to cb is valid during cb only; cb non-zero stops. */
int store_queue_list(struct store *store, const struct store_queue_filter *f,
		     int (*cb)(void *ctx, const struct store_queue_msg *m), void *ctx,
		     const char **error_r);

/* One attempt's outcome for one recipient. */
struct store_queue_result {
	int64_t rcpt_id;
	enum store_queue_state state;   /* DEFERRED, DELIVERED or BOUNCED */
	time_t next_attempt;            /* DEFERRED */
	const char *error;              /* the reason (sanitised by the caller), or NULL */
	bool warned;                    /* the delay DSN went out */
};

/* Record outcomes (attempts + 1, last_attempt now); a message none of
 * whose recipients is pending any more leaves the queue with its file. */
int store_queue_update(struct store *store, struct event_base *base,
		       const struct store_queue_result *results, size_t count,
		       store_write_cb *cb, void *ctx);

enum store_queue_action {
	STORE_QUEUE_FLUSH,          /* pending recipients due now */
	STORE_QUEUE_HOLD, STORE_QUEUE_RELEASE,
	STORE_QUEUE_DELETE,         /* remove, no bounce */
	STORE_QUEUE_BOUNCE,         /* pending recipients due now with give_up set */
};

/* Apply an administrator's action to the message qid, or (qid NULL) to
 * every message with a pending recipient in domain.  The result's count
 * is the number of messages changed. */
int store_queue_admin(struct store *store, struct event_base *base, const char *qid,
		      const char *domain, enum store_queue_action action, store_write_cb *cb,
		      void *ctx);

#endif
