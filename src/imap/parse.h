/* IMAP wire parsing (server side): the incremental command reader, the
 * argument tree it produces, and typed parsers over that tree for sequence
 * sets, SEARCH programs, FETCH / STORE / STATUS / LIST / SELECT / APPEND
 * arguments, dates, and mailbox-name encodings.  Pure functions and one
 * resumable state machine over bytes; no I/O.
 *
 * RFC 3501 and RFC 9051 (section 9 grammar), RFC 7888 (LITERAL+ and
 * LITERAL-), RFC 3516 (BINARY, literal8), RFC 7162 (CONDSTORE, QRESYNC),
 * RFC 4731 (ESEARCH), RFC 5182 (SEARCHRES "$"), RFC 5258 (LIST-EXTENDED),
 * RFC 5819 (LIST-STATUS), RFC 6154 (SPECIAL-USE), RFC 8438 (STATUS=SIZE),
 * RFC 7889 (APPENDLIMIT), RFC 6855 (UTF8=ACCEPT).
 *
 * Ownership: everything a parser returns borrows either from the reader
 * (slices into its command buffer, valid until the next imap_reader_feed()
 * or imap_reader_destroy()) or from the struct imap_arena given to it
 * (valid until imap_arena_clear()).  Error texts are static strings, ready
 * to follow "TAG BAD " (or "TAG NO " for IMAP_ERR_BADCHARSET, which wants
 * the "[BADCHARSET (UTF-8 US-ASCII)]" response code). */
#ifndef TERN_IMAP_PARSE_H
#define TERN_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/buf.h"

/* ---- limits ---- */

#define IMAP_MAX_LINE            (64 * 1024) /* non-literal bytes of a command, after auth */
#define IMAP_MAX_LINE_PREAUTH    (8 * 1024)  /* before authentication */
#define IMAP_MAX_ARGS            10000       /* argument nodes (all levels) per command */
#define IMAP_MAX_DEPTH           100         /* nesting of parenthesised lists */
#define IMAP_LITERAL_MINUS_MAX   4096        /* RFC 7888 LITERAL-: largest {n+} */
#define IMAP_MAX_SEARCH_DEPTH    100         /* nesting of NOT / OR / ( ) in SEARCH */
#define IMAP_MAX_SECTION_PARTS   100         /* part numbers in BODY[1.2.3...] (MIME nesting) */

/* ---- errors ---- */

enum imap_error_kind {
	IMAP_ERR_NONE = 0,
	IMAP_ERR_SYNTAX,            /* BAD: malformed command or argument */
	IMAP_ERR_UNKNOWN_COMMAND,   /* BAD: command name not recognised */
	IMAP_ERR_LINE_TOO_LONG,     /* BAD: the line limit was passed (RFC 7162 3.2.8 wants
				       "[TOOBIG]"-style handling; the session may also hang up) */
	IMAP_ERR_LITERAL_TOO_LARGE, /* BAD/NO [TOOBIG]: a literal is over the caller's limit */
	IMAP_ERR_BADCHARSET,        /* NO [BADCHARSET (UTF-8 US-ASCII)]: SEARCH CHARSET */
};

struct imap_parse_error {
	enum imap_error_kind kind;
	const char *text;           /* static, never NULL when kind != NONE */
};

/* ---- arena: one per command; every typed result lives in it ---- */

struct imap_arena_block;
struct imap_arena {
	struct imap_arena_block *head;
};

/* Zero-initialised struct imap_arena is ready to use. */
void imap_arena_init(struct imap_arena *a);
/* Allocate n zeroed bytes (aligned for any type); aborts on out of memory.
 * Callers cap n before asking (every size here is bounded by a limit). */
void *imap_arena_alloc(struct imap_arena *a, size_t n);
/* Free everything allocated from the arena; it is empty and reusable. */
void imap_arena_clear(struct imap_arena *a);

/* ---- the argument tree ---- */

enum imap_arg_type {
	IMAP_ARG_ATOM,      /* str: the atom (may contain ']', '*', '%', '\\', '[', 8-bit) */
	IMAP_ARG_NUMBER,    /* str: the digits; num: the value (at most 20 digits, fits 64 bits) */
	IMAP_ARG_QUOTED,    /* str: the unescaped contents */
	IMAP_ARG_LITERAL,   /* str: the bytes; literal8 set for ~{n} */
	IMAP_ARG_NIL,       /* str: "NIL" as sent (also a valid astring) */
	IMAP_ARG_LIST,      /* children: the elements of ( ... ) */
	IMAP_ARG_SECTION,   /* follows an atom BODY/BODY.PEEK/BINARY/BINARY.PEEK/BINARY.SIZE
			       directly: children = contents of [ ... ]; partial = text of
			       <...> after ']' when has_partial */
};

struct imap_arg {
	enum imap_arg_type type;
	bool literal8;
	bool has_partial;
	struct slice str;
	uint64_t num;
	struct imap_arg *children;
	size_t count;
	struct slice partial;
};

/* astring = atom / number / string (quoted or literal); "NIL" as an atom
 * counts.  Returns true and the text, or false. */
bool imap_arg_astring(const struct imap_arg *arg, struct slice *s_r);
/* nstring = string / NIL: true with *is_nil_r set for NIL. */
bool imap_arg_nstring(const struct imap_arg *arg, struct slice *s_r, bool *is_nil_r);
/* string = quoted / literal only. */
bool imap_arg_string(const struct imap_arg *arg, struct slice *s_r);
/* A plain atom (not a number, NIL counts as the atom "NIL"). */
bool imap_arg_atom(const struct imap_arg *arg, struct slice *s_r);
/* Case-insensitive test that arg is an atom equal to name. */
bool imap_arg_atom_is(const struct imap_arg *arg, const char *name);
/* A number within [0, max]. */
bool imap_arg_number(const struct imap_arg *arg, uint64_t max, uint64_t *n_r);
/* true when s is a valid RFC 3501 atom (ATOM-CHARs only, nonempty). */
bool imap_is_atom(struct slice s);

/* ---- commands ---- */

enum imap_cmd {
	IMAP_CMD_UNKNOWN = 0,
	IMAP_CMD_CAPABILITY, IMAP_CMD_NOOP, IMAP_CMD_LOGOUT, IMAP_CMD_STARTTLS,
	IMAP_CMD_AUTHENTICATE, IMAP_CMD_LOGIN, IMAP_CMD_ENABLE, IMAP_CMD_SELECT,
	IMAP_CMD_EXAMINE, IMAP_CMD_CREATE, IMAP_CMD_DELETE, IMAP_CMD_RENAME,
	IMAP_CMD_SUBSCRIBE, IMAP_CMD_UNSUBSCRIBE, IMAP_CMD_LIST, IMAP_CMD_LSUB,
	IMAP_CMD_NAMESPACE, IMAP_CMD_STATUS, IMAP_CMD_APPEND, IMAP_CMD_IDLE,
	IMAP_CMD_CHECK, IMAP_CMD_CLOSE, IMAP_CMD_UNSELECT, IMAP_CMD_EXPUNGE,
	IMAP_CMD_SEARCH, IMAP_CMD_FETCH, IMAP_CMD_STORE, IMAP_CMD_COPY, IMAP_CMD_MOVE,
	IMAP_CMD_ID,
	/* extensions (RFC 5256, 4978, 9208, 5464, 5465) */
	IMAP_CMD_SORT, IMAP_CMD_THREAD, IMAP_CMD_COMPRESS, IMAP_CMD_GETQUOTA,
	IMAP_CMD_GETQUOTAROOT, IMAP_CMD_SETQUOTA, IMAP_CMD_GETMETADATA, IMAP_CMD_SETMETADATA,
	IMAP_CMD_NOTIFY,
	/* line mode results (imap_reader_expect_line) */
	IMAP_CMD_DONE,      /* the line "DONE" ending IDLE */
	IMAP_CMD_LINE,      /* any other line: AUTHENTICATE responses, or a bad IDLE end */
};

/* The name of a command ("FETCH"), "" for UNKNOWN. */
const char *imap_cmd_name(enum imap_cmd cmd);

struct imap_command {
	struct slice tag;          /* empty in line mode */
	enum imap_cmd cmd;
	bool uid;                  /* "UID FETCH ...": cmd is FETCH and uid is set */
	struct slice name;         /* command name, uppercased ("FETCH" also for UID FETCH) */
	struct imap_arg *args;     /* the arguments after the name */
	size_t nargs;
	struct slice line;         /* line mode: the line without its end */
};

struct imap_reader_limits {   /* zero = default, except max_literal */
	size_t max_line;           /* IMAP_MAX_LINE or IMAP_MAX_LINE_PREAUTH */
	uint64_t max_literal;      /* total literal bytes in one command */
	size_t max_args;           /* IMAP_MAX_ARGS */
	unsigned max_depth;        /* IMAP_MAX_DEPTH */
	bool literal_minus;        /* LITERAL- advertised instead of LITERAL+: {n+} only
				      up to IMAP_LITERAL_MINUS_MAX */
};

enum imap_read_status {
	IMAP_READ_NEED_MORE,          /* everything consumed; feed more */
	IMAP_READ_NEED_CONTINUATION,  /* a synchronising literal was announced: send "+ ..."
					 and keep feeding, or refuse it with
					 imap_reader_refuse_literal() and a tagged NO/BAD */
	IMAP_READ_OK,                 /* a complete command (or line, in line mode) */
	IMAP_READ_ERROR,              /* reply "TAG BAD text" ("* BAD" when no tag) */
};

struct imap_read_result {
	enum imap_read_status status;
	size_t consumed;              /* bytes of the input used; the rest is the next command */
	struct imap_command cmd;      /* OK; for CONTINUATION and ERROR tag/cmd/name are
					 set when they could be parsed */
	uint64_t literal_size;        /* CONTINUATION: size announced */
	bool literal8;                /* CONTINUATION: ~{n} */
	struct imap_parse_error error;/* ERROR */
};

struct imap_reader;

/* Create a reader with the given limits (copied). */
struct imap_reader *imap_reader_create(const struct imap_reader_limits *limits);
/* Free the reader and set *r to NULL. */
void imap_reader_destroy(struct imap_reader **r);
/* Change limits (after authentication); applies from the next command. */
void imap_reader_set_limits(struct imap_reader *r, const struct imap_reader_limits *limits);
/* Read the next line raw instead of a command: the next OK result is
 * IMAP_CMD_DONE (the line is "DONE", any case) or IMAP_CMD_LINE, with
 * cmd.line set.  For IDLE and AUTHENTICATE continuation responses; lasts
 * for one line. */
void imap_reader_expect_line(struct imap_reader *r);
/* Feed bytes.  Stops after one command (OK), one error, or one literal
 * announcement (CONTINUATION), so pipelined bytes stay with the caller;
 * call again with the rest.  The bytes needed are copied: the caller may
 * drop data[0..consumed).  After ERROR the reader discards the rest of the
 * bad command by itself (to the end of its line, never inside a literal
 * the client sends without waiting).  Results are valid until the next
 * call. */
void imap_reader_feed(struct imap_reader *r, const char *data, size_t len,
		      struct imap_read_result *res);
/* After NEED_CONTINUATION: the server refuses the literal (and answers the
 * command with a tagged NO/BAD); the client will not send it, so the
 * reader drops the command and waits for the next one. */
void imap_reader_refuse_literal(struct imap_reader *r);
/* true when the reader is between commands (nothing buffered). */
bool imap_reader_idle(const struct imap_reader *r);

/* ---- sequence sets (RFC 9051 9: sequence-set; RFC 5182 "$") ---- */

#define IMAP_SEQ_STAR 0u   /* '*' inside a parsed range; numbers are nonzero */

struct imap_seq_range {
	uint32_t lo, hi;   /* lo <= hi after resolution; either may be IMAP_SEQ_STAR before */
};

struct imap_seqset {
	struct imap_seq_range *ranges;  /* sorted, merged, no overlap when !has_star */
	size_t count;
	bool has_star;                  /* some range uses '*': resolve before use */
	bool saved;                     /* "$": the saved search result (RFC 5182) */
};

/* Parse a sequence set from its text.  Numbers are 1..4294967295; "*" and
 * "$" as the grammar allows.  Ranges are normalised (sorted, merged) when
 * they have no '*'.  0, or -1 with *err. */
int imap_seqset_parse(struct slice s, struct imap_arena *a, struct imap_seqset *set_r,
		      struct imap_parse_error *err);
/* Same, from an argument (atom or number). */
int imap_seqset_parse_arg(const struct imap_arg *arg, struct imap_arena *a,
			  struct imap_seqset *set_r, struct imap_parse_error *err);
/* Replace '*' with max and normalise into out (which may be in).  "n:*"
 * always includes max (RFC 3501 6.4.8); with max == 0 ranges holding '*'
 * vanish.  A "$" set resolves to itself (the caller substitutes it). */
void imap_seqset_resolve(const struct imap_seqset *in, uint32_t max, struct imap_arena *a,
			 struct imap_seqset *out);
/* Membership for a resolved set (binary search). */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n);
/* Largest number in a resolved set, 0 when empty. */
uint32_t imap_seqset_max(const struct imap_seqset *set);
/* Number of members of a resolved set (64-bit: up to 2^32 - 1). */
uint64_t imap_seqset_size(const struct imap_seqset *set);

struct imap_seqset_iter {
	const struct imap_seqset *set;
	size_t i;
	uint64_t next;
};
/* Iterate a resolved set in ascending order: init, then next() gives each
 * member in *n_r and returns false after the last. */
void imap_seqset_iter_init(struct imap_seqset_iter *it, const struct imap_seqset *set);
bool imap_seqset_iter_next(struct imap_seqset_iter *it, uint32_t *n_r);

/* ---- dates ---- */

struct imap_date {
	int year, month, day;      /* month 1..12 */
};

/* date = date-text / DQUOTE date-text DQUOTE; date-text = 1*2DIGIT "-" month "-" 4DIGIT
 * (the quotes are already gone in the argument tree).  0 or -1. */
int imap_date_parse(struct slice s, struct imap_date *d_r);
/* Days since 1970-01-01 (negative before). */
int64_t imap_date_days(const struct imap_date *d);

/* date-time = DQUOTE date-day-fixed "-" month "-" date-year SP time SP zone DQUOTE
 * e.g. "17-Jul-1996 02:44:25 -0700".  *t_r is UTC seconds; *zone_r minutes east. */
int imap_datetime_parse(struct slice s, time_t *t_r, int *zone_r);

/* ---- SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4, RFC 4731, RFC 7162 3.1.5) ---- */

enum imap_search_type {
	IMAP_SK_AND,        /* children: all must match (a parenthesised group / the program) */
	IMAP_SK_OR,         /* children[0] or children[1] */
	IMAP_SK_NOT,        /* children[0] */
	IMAP_SK_SEQSET,     /* set (sequence numbers) */
	IMAP_SK_UID,        /* set (UIDs) */
	IMAP_SK_ALL, IMAP_SK_ANSWERED, IMAP_SK_DELETED, IMAP_SK_DRAFT, IMAP_SK_FLAGGED,
	IMAP_SK_NEW, IMAP_SK_OLD, IMAP_SK_RECENT, IMAP_SK_SEEN,
	IMAP_SK_UNANSWERED, IMAP_SK_UNDELETED, IMAP_SK_UNDRAFT, IMAP_SK_UNFLAGGED,
	IMAP_SK_UNSEEN,
	IMAP_SK_KEYWORD, IMAP_SK_UNKEYWORD,             /* str: the keyword atom */
	IMAP_SK_BCC, IMAP_SK_BODY, IMAP_SK_CC, IMAP_SK_FROM, IMAP_SK_SUBJECT,
	IMAP_SK_TEXT, IMAP_SK_TO,                        /* str: the substring */
	IMAP_SK_HEADER,                                  /* str: field name, str2: value */
	IMAP_SK_BEFORE, IMAP_SK_ON, IMAP_SK_SINCE,
	IMAP_SK_SENTBEFORE, IMAP_SK_SENTON, IMAP_SK_SENTSINCE, /* date */
	IMAP_SK_LARGER, IMAP_SK_SMALLER,                 /* number */
	IMAP_SK_MODSEQ,                                  /* number; entry fields */
	IMAP_SK_OLDER, IMAP_SK_YOUNGER,                  /* number: seconds (RFC 5032 WITHIN) */
	IMAP_SK_SAVEDBEFORE, IMAP_SK_SAVEDON, IMAP_SK_SAVEDSINCE, /* date (RFC 8514) */
	IMAP_SK_SAVEDATESUPPORTED,                       /* RFC 8514 */
	IMAP_SK_EMAILID, IMAP_SK_THREADID,               /* str: objectid (RFC 8474 6) */
};

enum imap_entry_type { IMAP_ENTRY_NONE, IMAP_ENTRY_PRIV, IMAP_ENTRY_SHARED, IMAP_ENTRY_ALL };

struct imap_search_key {
	enum imap_search_type type;
	struct slice str, str2;
	struct imap_date date;
	uint64_t number;
	struct imap_seqset set;
	struct slice entry_name;         /* MODSEQ "/flags/\\Seen"; empty when not given */
	enum imap_entry_type entry_type;
	struct imap_search_key *children;
	size_t count;
};

enum imap_search_charset { IMAP_CHARSET_DEFAULT, IMAP_CHARSET_UTF8, IMAP_CHARSET_US_ASCII };

enum imap_search_return {
	IMAP_SEARCH_RET_MIN = 1 << 0,
	IMAP_SEARCH_RET_MAX = 1 << 1,
	IMAP_SEARCH_RET_COUNT = 1 << 2,
	IMAP_SEARCH_RET_ALL = 1 << 3,
	IMAP_SEARCH_RET_SAVE = 1 << 4,
};

struct imap_search_program {
	struct imap_search_key root;      /* IMAP_SK_AND of the top-level keys */
	enum imap_search_charset charset;
	bool esearch;                     /* RETURN (...) was given: answer with ESEARCH */
	unsigned ret;                     /* IMAP_SEARCH_RET_*; RETURN () means ALL */
	bool uses_modseq;                 /* a MODSEQ key appears (CONDSTORE enabling) */
};

/* Parse SEARCH arguments (everything after "SEARCH").  0, or -1 with *err
 * (kind IMAP_ERR_BADCHARSET for an unsupported CHARSET). */
int imap_search_parse(const struct imap_arg *args, size_t nargs, struct imap_arena *a,
		      struct imap_search_program *prog_r, struct imap_parse_error *err);

/* ---- FETCH (RFC 3501 6.4.5, RFC 9051 6.4.5, RFC 3516, RFC 7162) ---- */

enum imap_fetch_att {
	IMAP_FETCH_FLAGS, IMAP_FETCH_INTERNALDATE, IMAP_FETCH_RFC822_SIZE, IMAP_FETCH_ENVELOPE,
	IMAP_FETCH_BODY,            /* BODY without section: non-extensible BODYSTRUCTURE */
	IMAP_FETCH_BODYSTRUCTURE, IMAP_FETCH_UID, IMAP_FETCH_MODSEQ,
	IMAP_FETCH_RFC822, IMAP_FETCH_RFC822_HEADER, IMAP_FETCH_RFC822_TEXT,
	IMAP_FETCH_BODY_SECTION,    /* BODY[...] / BODY.PEEK[...] */
	IMAP_FETCH_BINARY,          /* BINARY[...] / BINARY.PEEK[...] */
	IMAP_FETCH_BINARY_SIZE,     /* BINARY.SIZE[...] */
	IMAP_FETCH_SAVEDATE,        /* RFC 8514 */
	IMAP_FETCH_PREVIEW,         /* RFC 8970 (lazy: "PREVIEW (LAZY)") */
	IMAP_FETCH_EMAILID, IMAP_FETCH_THREADID, /* RFC 8474 */
};

enum imap_section_spec {
	IMAP_SECTION_ALL,           /* BODY[] or BODY[1.2]: the whole part */
	IMAP_SECTION_HEADER, IMAP_SECTION_HEADER_FIELDS, IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT, IMAP_SECTION_MIME,
};

struct imap_fetch_item {
	enum imap_fetch_att att;
	bool peek;
	bool lazy;                  /* PREVIEW (LAZY) */
	uint32_t *parts;            /* section part numbers, nonzero */
	size_t nparts;
	enum imap_section_spec spec;
	struct slice *fields;       /* HEADER.FIELDS(.NOT) names */
	size_t nfields;
	bool partial;
	uint64_t offset, length;    /* <offset.length>, length nonzero, both below 2^63 */
};

struct imap_fetch_request {
	struct imap_seqset set;
	struct imap_fetch_item *items;
	size_t nitems;
	bool macro;                 /* ALL / FAST / FULL expanded */
	bool changedsince_given;
	uint64_t changedsince;
	bool vanished;              /* UID FETCH ... (CHANGEDSINCE n VANISHED) */
};

/* Parse FETCH arguments (after "FETCH").  uid: this is UID FETCH (VANISHED
 * is allowed only there).  0, or -1 with *err. */
int imap_fetch_parse(const struct imap_arg *args, size_t nargs, bool uid, struct imap_arena *a,
		     struct imap_fetch_request *req_r, struct imap_parse_error *err);

/* ---- flags and STORE ---- */

enum imap_flag {
	IMAP_FLAG_ANSWERED = 1 << 0,
	IMAP_FLAG_FLAGGED = 1 << 1,
	IMAP_FLAG_DELETED = 1 << 2,
	IMAP_FLAG_SEEN = 1 << 3,
	IMAP_FLAG_DRAFT = 1 << 4,
};

struct imap_flags {
	unsigned system;            /* IMAP_FLAG_* */
	struct slice *keywords;     /* atoms, duplicates removed (case-insensitively) */
	size_t nkeywords;
};

/* Parse a flag list "( flag ... )" (or, when list is not a LIST, the bare
 * flags args[0..n)).  \Recent and unknown \-flags are refused. */
int imap_flags_parse(const struct imap_arg *args, size_t n, struct imap_arena *a,
		     struct imap_flags *flags_r, struct imap_parse_error *err);

enum imap_store_op { IMAP_STORE_REPLACE, IMAP_STORE_ADD, IMAP_STORE_REMOVE };

struct imap_store_request {
	struct imap_seqset set;
	enum imap_store_op op;
	bool silent;
	struct imap_flags flags;
	bool unchangedsince_given;
	uint64_t unchangedsince;
};

/* Parse STORE arguments (after "STORE").  0, or -1 with *err. */
int imap_store_parse(const struct imap_arg *args, size_t nargs, struct imap_arena *a,
		     struct imap_store_request *req_r, struct imap_parse_error *err);

/* ---- STATUS (RFC 9051 6.3.11, RFC 7162, RFC 8438, RFC 7889) ---- */

enum imap_status_item {
	IMAP_STATUS_MESSAGES = 1 << 0, IMAP_STATUS_UIDNEXT = 1 << 1,
	IMAP_STATUS_UIDVALIDITY = 1 << 2, IMAP_STATUS_UNSEEN = 1 << 3,
	IMAP_STATUS_DELETED = 1 << 4, IMAP_STATUS_SIZE = 1 << 5,
	IMAP_STATUS_RECENT = 1 << 6, IMAP_STATUS_HIGHESTMODSEQ = 1 << 7,
	IMAP_STATUS_APPENDLIMIT = 1 << 8,
	IMAP_STATUS_MAILBOXID = 1 << 9,    /* RFC 8474 4.2 */
};

/* Parse a list of status items into a mask of IMAP_STATUS_*. */
int imap_status_items_parse(const struct imap_arg *list, unsigned *items_r,
			    struct imap_parse_error *err);

struct imap_status_request {
	struct slice mailbox;       /* as sent (modified UTF-7 or UTF-8) */
	unsigned items;
};

/* Parse STATUS arguments (after "STATUS"). */
int imap_status_parse(const struct imap_arg *args, size_t nargs,
		      struct imap_status_request *req_r, struct imap_parse_error *err);

/* ---- LIST / LSUB (RFC 9051 6.3.9, RFC 5258, RFC 5819, RFC 6154) ---- */

enum imap_list_select {
	IMAP_LIST_SEL_SUBSCRIBED = 1 << 0, IMAP_LIST_SEL_REMOTE = 1 << 1,
	IMAP_LIST_SEL_RECURSIVEMATCH = 1 << 2, IMAP_LIST_SEL_SPECIAL_USE = 1 << 3,
};
enum imap_list_return {
	IMAP_LIST_RET_SUBSCRIBED = 1 << 0, IMAP_LIST_RET_CHILDREN = 1 << 1,
	IMAP_LIST_RET_SPECIAL_USE = 1 << 2, IMAP_LIST_RET_STATUS = 1 << 3,
};

struct imap_list_request {
	struct slice reference;
	struct slice *patterns;     /* one or more (LIST-EXTENDED allows a list) */
	size_t npatterns;
	unsigned select;            /* IMAP_LIST_SEL_* */
	unsigned ret;               /* IMAP_LIST_RET_* */
	unsigned status_items;      /* with IMAP_LIST_RET_STATUS */
	bool extended;              /* selection or return options were given, or several patterns */
};

/* Parse LIST arguments (lsub = false) or LSUB arguments (lsub = true: just
 * reference and one pattern). */
int imap_list_parse(const struct imap_arg *args, size_t nargs, bool lsub, struct imap_arena *a,
		    struct imap_list_request *req_r, struct imap_parse_error *err);

/* ---- SELECT / EXAMINE (RFC 7162 3.1.8, 3.2.5) ---- */

struct imap_select_request {
	struct slice mailbox;
	bool condstore;
	bool qresync;
	uint32_t uidvalidity;        /* QRESYNC */
	uint64_t modseq;
	bool has_known_uids;
	struct imap_seqset known_uids;
	bool has_seq_match;
	struct imap_seqset known_seqs, known_seq_uids;
};

/* Parse SELECT / EXAMINE arguments: mailbox [ "(" CONDSTORE / QRESYNC (...) ")" ].
 * Known UID sets may not hold '*' or '$'.  0, or -1 with *err. */
int imap_select_parse(const struct imap_arg *args, size_t nargs, struct imap_arena *a,
		      struct imap_select_request *req_r, struct imap_parse_error *err);

/* ---- APPEND (RFC 9051 6.3.12, RFC 3516 4.4, RFC 3502 MULTIAPPEND,
 *      RFC 4469 CATENATE, RFC 6855 UTF8) ---- */

#define IMAP_APPEND_MAX_MESSAGES 1000  /* messages in one MULTIAPPEND */
#define IMAP_CATENATE_MAX_PARTS 100    /* TEXT / URL parts of one message */

struct imap_catenate_part {
	bool url;                   /* URL astring (else TEXT literal) */
	struct slice data;          /* the URL, or the literal's bytes */
	bool binary;                /* TEXT ~{n} */
};

struct imap_append_message {
	bool has_flags;
	struct imap_flags flags;
	bool has_date;
	time_t date;
	int zone;                   /* minutes east of UTC as given */
	struct slice message;       /* the literal (not for CATENATE) */
	bool binary;                /* sent as literal8 ~{n} */
	bool utf8;                  /* "UTF8 (literal)" (RFC 6855 4) */
	struct imap_catenate_part *parts;   /* CATENATE (...) when nparts > 0 */
	size_t nparts;
};

struct imap_append_request {
	struct slice mailbox;
	struct imap_append_message *msgs;   /* one or more (MULTIAPPEND) */
	size_t count;
	/* the first message, as the fields above name it */
	bool has_flags;
	struct imap_flags flags;
	bool has_date;
	time_t date;
	int zone;
	struct slice message;
	bool binary;
};

/* Parse APPEND arguments: mailbox, then one or more messages, each
 * [flag-list] [date-time] and literal / literal8 / UTF8 (literal) /
 * CATENATE (TEXT literal / URL url ...).  \Recent may not be given.  0, or
 * -1 with *err. */
int imap_append_parse(const struct imap_arg *args, size_t nargs, struct imap_arena *a,
		      struct imap_append_request *req_r, struct imap_parse_error *err);

/* ---- mailbox names (RFC 3501 5.1.3, RFC 6855) ---- */

/* true when s is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool imap_utf8_valid(struct slice s);
/* Decode modified UTF-7 into UTF-8 appended to out.  0, or -1 when s is
 * not valid modified UTF-7 (out is then unspecified). */
int imap_mutf7_decode(struct slice s, struct buf *out);
/* Encode UTF-8 into modified UTF-7 appended to out.  0, or -1 on invalid
 * UTF-8 or past out's maximum. */
int imap_mutf7_encode(struct slice s, struct buf *out);

#endif
