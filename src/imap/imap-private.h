/* Internals of the IMAP server, shared by server.c (I/O, session life
 * cycle, the command table and dispatch), mailbox-view.c (the selected
 * mailbox) and cmd-*.c (one file per command family). */
#ifndef TERN_IMAP_PRIVATE_H
#define TERN_IMAP_PRIVATE_H

#include "imap/imap.h"
#include "imap/parse.h"
#include "lib/buf.h"
#include "lib/conn.h"
#include "lib/net.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>
#include <time.h>

#define IMAP_IDLE_TIMEOUT_AUTH (30 * 60)   /* RFC 9051 5.4: at least 30 minutes */
#define IMAP_IDLE_TIMEOUT_PREAUTH 60       /* before login: short */
#define IMAP_LITERAL_PREAUTH (8 * 1024)    /* literal bytes before login (LOGIN) */
#define IMAP_READ_CHUNK (64 * 1024)
#define IMAP_READ_HIGH_WATERMARK (256 * 1024)
#define IMAP_WRITE_LOW_WATERMARK (64 * 1024)
#define IMAP_OUTPUT_PAUSE (256 * 1024)     /* FETCH stops producing above this */
#define IMAP_MAX_VIEW 10000000             /* messages in one selected mailbox */

enum imap_state {
	IMAP_STATE_PROXY,       /* not started: PROXY header or implicit TLS pending (lib/conn.c) */
	IMAP_STATE_NOT_AUTH,
	IMAP_STATE_AUTH,
	IMAP_STATE_SELECTED,
	IMAP_STATE_LOGOUT,
};

/* The facts SORT, THREAD and SEARCH (SAVED*, EMAILID, THREADID) take from
 * the store's summaries, cached per message of the view once asked for:
 * they never change for a UID.  One allocation; the strings point inside
 * it, never NULL. */
struct imap_msg_sum {
	time_t sent_date, savedate;
	const char *subject, *from_mailbox, *to_mailbox, *cc_mailbox;
	const char *from_display, *to_display, *message_id, *in_reply_to, *references;
	const char *emailid, *threadid;
};

/* One message of the selected mailbox; its sequence number is index + 1. */
struct imap_msg {
	uint32_t uid;
	bool recent;            /* \Recent for this session (rev1) */
	bool expunged;          /* gone from the store; EXPUNGE not sent yet */
	uint64_t modseq;
	time_t internal_date;
	int64_t size;
	char *flags;            /* as the store keeps them: "\\Seen kw" */
	char *path;
	struct imap_msg_sum *sum;   /* summary facts, loaded on first use, or NULL */
};

/* The selected mailbox (RFC 3501 5.2 / 7.3 / 7.4). */
struct imap_view {
	int64_t mailbox_id;
	char *name;             /* UTF-8, as the store names it */
	char *objectid;         /* RFC 8474 MAILBOXID, or NULL */
	bool readonly;          /* EXAMINE */
	uint32_t uidvalidity;
	uint32_t uidnext;       /* past the largest UID seen */
	uint64_t highestmodseq;
	uint64_t synced_modseq; /* the store's changes up to this modseq are merged in */
	struct imap_msg *msgs;
	uint32_t count;         /* messages including pending expunges */
	uint32_t alloc;
	uint32_t exists_sent;   /* the last EXISTS count the client knows */
	bool dirty;             /* a notify event came: resync before the next reply */
	struct notify_sub *sub;
	uint32_t *saved_uids;   /* SEARCHRES "$" (RFC 5182): ascending; reset with the
				   selection; expunged UIDs simply never match again */
	size_t saved_count;
};

struct imap_session;

enum imap_cmd_flags {
	IMAP_CF_NOT_AUTH = 1 << 0,   /* allowed before login */
	IMAP_CF_AUTH = 1 << 1,       /* allowed when authenticated */
	IMAP_CF_SELECTED = 1 << 2,   /* allowed with a mailbox selected */
	IMAP_CF_NO_EXPUNGE = 1 << 3, /* no untagged EXPUNGE in its reply (RFC 3501 7.4.1:
					FETCH, STORE, SEARCH without UID) */
	IMAP_CF_UID = 1 << 4,        /* has a UID form */
	IMAP_CF_WRITE = 1 << 5,      /* changes the selected mailbox: refused on EXAMINE */
};

/* The command table entry (server.c).  The handler checks syntax and state
 * and either replies at once (imap_tagged) or starts an asynchronous step
 * (s->waiting) whose completion calls imap_tagged and imap_resume. */
struct imap_cmd_def {
	enum imap_cmd cmd;
	void (*handler)(struct imap_session *s, const struct imap_command *cmd);
	unsigned flags;
};

struct imap_session {
	struct conn c;          /* first: connection, TLS, id, addresses (lib/conn.h) */
	const struct imap_listener *l;
	bool draining;

	enum imap_state state;
	unsigned errors;
	unsigned auth_failures;
	unsigned commands;
	bool rev2;              /* ENABLE IMAP4rev2 */
	bool utf8;              /* mailbox names in UTF-8 (rev2 or UTF8=ACCEPT) */
	bool utf8_accept;       /* ENABLE UTF8=ACCEPT (RFC 6855) */
	bool condstore;         /* CONDSTORE enabled (RFC 7162 3.1): MODSEQ in flag FETCHes */
	bool qresync;           /* ENABLE QRESYNC (RFC 7162 3.2): VANISHED, not EXPUNGE */

	struct imap_reader *reader;
	bool line_armed;                    /* imap_reader_expect_line() for the next line */
	struct imap_arena arena;            /* per command */
	const struct imap_cmd_def *cur_def; /* the command in progress */
	char *tag;                          /* its tag, copied */
	bool cur_uid;

	/* authentication */
	struct auth_sasl *sasl;
	bool in_sasl;           /* AUTHENTICATE: the next line is a response */
	char *auth_mech;
	char *auth_pending_user;   /* SCRAM server-final sent, waiting for "" */
	int64_t auth_pending_id;
	struct event *delay_ev;
	int64_t user_id;
	char *user;
	bool userip_held;       /* counted in the per user+IP table (imap.connections_per_user) */

	/* IDLE */
	bool idling;

	/* a long reply in progress (FETCH): called when output drained */
	void (*pump)(struct imap_session *s);
	void *pump_ctx;

	struct imap_view *view;     /* selected mailbox or NULL */
	struct imap_notify *notify; /* NOTIFY SET in force (cmd-notify.c), or NULL */
};

/* ---- server.c ---- */

/* Untagged "* text" and tagged "TAG OK|NO|BAD text" replies (CRLF added).
 * imap_tagged ends the command in progress: it first sends the pending
 * mailbox updates the command's flags allow. */
void imap_untagged(struct imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A BAD that counts toward limits.errors (then "* BYE" and close). */
void imap_bad(struct imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void imap_send_raw(struct imap_session *s, const void *p, size_t len);
/* Bytes queued for the client and not yet written. */
static inline size_t imap_output_pending(struct imap_session *s)
{
	return conn_output_pending(&s->c);
}
/* Close after the output is flushed. */
static inline void imap_close(struct imap_session *s, const char *reason)
{
	conn_close(&s->c, reason);
}
/* An asynchronous step finished: read the next command. */
void imap_resume(struct imap_session *s);
static inline void imap_session_ref(struct imap_session *s)
{
	conn_ref(&s->c);
}
/* Drop a reference; false when the session was freed. */
static inline bool imap_session_unref(struct imap_session *s)
{
	return conn_unref(&s->c);
}
static inline int imap_start_tls(struct imap_session *s)
{
	return conn_start_tls(&s->c);
}
/* May this session send a password (TLS, or loopback when configured)? */
bool imap_plaintext_allowed(struct imap_session *s);
/* Login succeeded: state AUTH, longer limits, OK [CAPABILITY ...]. */
void imap_login_done(struct imap_session *s, int64_t user_id, const char *address,
		     const char *mech);
/* The CAPABILITY list for the session's state into out (no "* CAPABILITY"). */
void imap_capabilities(struct imap_session *s, struct buf *out);
/* Mailbox name from the wire (modified UTF-7, or UTF-8 after rev2) into a
 * malloc'd UTF-8 store name ("INBOX" normalised); NULL when invalid. */
char *imap_mailbox_from_wire(struct imap_session *s, struct slice name);
/* The existing mailbox named on the wire: its store name (malloc'd) and
 * *id_r; NULL after a tagged NO ([NONEXISTENT] for a bad name or none
 * such, or a store error reported for the command what). */
char *imap_mailbox_existing(struct imap_session *s, struct slice wire, const char *what,
			    int64_t *id_r);
/* Append a store name as an IMAP astring for the client's encoding. */
void imap_mailbox_to_wire(struct imap_session *s, struct buf *out, const char *name);
/* "NO [CODE] text" reply for a failed store write. */
void imap_store_failed(struct imap_session *s, const char *what, const char *code,
		       const char *error);
/* The text of a parse error, for a BAD or NO reply. */
void imap_parse_failed(struct imap_session *s, const struct imap_parse_error *err);

/* ---- mailbox-view.c ---- */

/* Open mailbox (store name) as the selected mailbox; 1 ok, 0 not found,
 * <0 store error (*error_r). */
int imap_view_open(struct imap_session *s, const char *name, bool readonly,
		   const char **error_r);
void imap_view_close(struct imap_session *s);
/* Bring the view up to date with the store and send the untagged
 * EXISTS / FETCH FLAGS (and EXPUNGE when allowed) responses. */
void imap_view_sync(struct imap_session *s, bool allow_expunge);
/* Send pending EXPUNGEs only (after a sync that could not). */
void imap_view_send_expunges(struct imap_session *s);
/* Re-read the store now (after our own write) and report every change. */
void imap_view_refresh(struct imap_session *s, bool allow_expunge);
/* The same, reporting no flag change and no EXPUNGE (FETCH's own \Seen). */
void imap_view_refresh_quiet(struct imap_session *s);
/* The same, without FETCH responses for the flag changes of skip[]
 * (sorted UIDs: the caller reports those itself, or not for .SILENT). */
void imap_view_refresh_skip(struct imap_session *s, bool allow_expunge, const uint32_t *skip,
			    size_t nskip);
/* Sequence number (1-based) of uid, 0 when absent. */
uint32_t imap_view_seq_of(const struct imap_view *v, uint32_t uid);
/* Resolve a sequence set (by sequence numbers or by UIDs) to the list of
 * sequence numbers (1-based, ascending, arena).  UID sets skip UIDs not in
 * the view; sequence numbers past the count fail (-1). */
int imap_view_resolve(struct imap_session *s, const struct imap_seqset *set, bool uid,
		      uint32_t **seqs_r, size_t *count_r);
/* Make sure msgs[seq - 1].sum is loaded for every seqs[i], or for every
 * message with seqs NULL (one store query for those not cached yet).  0,
 * or -1 with *error_r. */
int imap_view_summaries(struct imap_session *s, const uint32_t *seqs, size_t n,
			const char **error_r);
/* The saved search result "$" as a resolved set of UIDs (arena). */
void imap_view_saved_set(struct imap_session *s, struct imap_seqset *set_r);
/* Enable CONDSTORE (RFC 7162 3.1; ENABLE, SELECT (CONDSTORE), or a
 * MODSEQ / CHANGEDSINCE / UNCHANGEDSINCE use); the first time with a
 * mailbox selected this sends "* OK [HIGHESTMODSEQ n]". */
void imap_condstore_enable(struct imap_session *s);
/* Append "(\\Seen \\Recent kw)" for message m. */
void imap_msg_flags(const struct imap_msg *m, struct buf *out);
/* true when m carries the flag (exact, case-insensitive). */
bool imap_msg_has_flag(const struct imap_msg *m, const char *flag);

/* ---- cmd-*.c ---- */
/* The store's flag string ("\\Seen kw") for a parsed flag list (malloc'd). */
char *imap_flags_string(const struct imap_flags *f);
/* Append a sorted list of numbers as a compact set ("1:3,7"). */
void imap_append_numset(struct buf *out, const uint32_t *n, size_t count);

void imap_cmd_capability(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_noop(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_logout(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_starttls(struct imap_session *s, const struct imap_command *cmd);
/* COMPRESS DEFLATE (RFC 4978; cmd-compress.c): compresses the connection
 * from the byte after its tagged OK. */
void imap_cmd_compress(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_authenticate(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_login(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_enable(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_id(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_namespace(struct imap_session *s, const struct imap_command *cmd);
/* One line inside an AUTHENTICATE exchange. */
void imap_sasl_input(struct imap_session *s, struct slice line);

void imap_cmd_create(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_delete(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_rename(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_subscribe(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_list(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_status(struct imap_session *s, const struct imap_command *cmd);
struct store_mailbox;
/* "STATUS name (items)" for mb into b (RFC 9051 7.3.5, RFC 8438 SIZE,
 * RFC 7889 APPENDLIMIT, RFC 8474 MAILBOXID); -1 when the store cannot
 * count.  STATUS, LIST-STATUS and NOTIFY use it. */
int imap_status_format(struct imap_session *s, const struct store_mailbox *mb, unsigned items,
		       struct buf *b);
void imap_cmd_append(struct imap_session *s, const struct imap_command *cmd);

void imap_cmd_select(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_close(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_check(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_expunge(struct imap_session *s, const struct imap_command *cmd);

void imap_cmd_fetch(struct imap_session *s, const struct imap_command *cmd);
/* The bytes BODY.PEEK[section]<partial> names in msg[0..len), appended to
 * out (CATENATE's URLs); false when the section does not exist (NIL). */
bool imap_fetch_section_bytes(const char *msg, size_t len, const struct imap_fetch_item *item,
			      struct buf *out);
void imap_cmd_store(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_copy(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_search(struct imap_session *s, const struct imap_command *cmd);
/* Evaluate a parsed SEARCH program over the selected mailbox (SEARCH, SORT,
 * THREAD): the matching sequence numbers, ascending, in the session's
 * arena, and the largest modseq among them (max_modseq_r may be NULL).
 * 0, or -1 after replying with a tagged NO. */
int imap_search_run(struct imap_session *s, struct imap_search_program *prog,
		    uint32_t **seqs_r, size_t *count_r, uint64_t *max_modseq_r);
/* SORT / UID SORT and THREAD / UID THREAD (cmd-sort.c; RFC 5256, 5267, 5957). */
void imap_cmd_sort(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_thread(struct imap_session *s, const struct imap_command *cmd);

void imap_cmd_idle(struct imap_session *s, const struct imap_command *cmd);

void imap_cmd_getquotaroot(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_getquota(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_setquota(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_notify(struct imap_session *s, const struct imap_command *cmd);
/* Drop the session's NOTIFY state (logout, NOTIFY NONE). */
void imap_notify_free(struct imap_session *s);
void imap_cmd_getmetadata(struct imap_session *s, const struct imap_command *cmd);
void imap_cmd_setmetadata(struct imap_session *s, const struct imap_command *cmd);
/* The line ending IDLE (DONE or anything else). */
void imap_idle_input(struct imap_session *s, const struct imap_command *line);
/* A notify event arrived while idling: push the updates now. */
void imap_idle_push(struct imap_session *s);

#endif
