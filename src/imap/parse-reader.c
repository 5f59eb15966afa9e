/* IMAP command reader: an incremental, resumable state machine that turns
 * the client's byte stream into commands (tag, name, argument tree), plus
 * the per-command arena and the small argument accessors.
 *
 * How it works: bytes are copied into one command buffer.  Line ends are
 * normalised to a single "\n" (a bare LF is accepted, as Dovecot does); a
 * line that ends in a literal announcement "{n}", "{n+}", "~{n}" (outside a
 * quoted string) is followed by exactly n raw bytes, copied as they come.
 * When a line ends without an announcement the command is complete and one
 * pass (the tokenizer) builds the argument tree from the buffer: quoted
 * strings are unescaped in place, so every slice points into the buffer.
 *
 * Invariants: non-literal bytes of a command never exceed max_line; the sum
 * of its literals never exceeds max_literal, so the buffer is bounded by
 * max_line + max_literal.  The byte count of announced literals is always
 * honoured: after an error the reader discards to the end of the line, but
 * skips (never parses) the bytes of a non-synchronising literal the client
 * sends regardless, so it never mistakes message data for commands.  The
 * argument tree has at most max_args nodes and max_depth nesting.
 *
 * RFC 3501 / RFC 9051 section 9 (tag, atom, quoted, literal, list),
 * 2.2.1 and 7.5 (command continuation), RFC 7888 (LITERAL+ / LITERAL-),
 * RFC 3516 4.2 (literal8). */
#include "imap/parse.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

/* ---- arena ---- */

struct imap_arena_block {
	struct imap_arena_block *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

#define ARENA_BLOCK 4096

void imap_arena_init(struct imap_arena *a)
{
	a->head = NULL;
}

void *imap_arena_alloc(struct imap_arena *a, size_t n)
{
	struct imap_arena_block *b = a->head;

	n = (n + 15) & ~(size_t)15;
	if (n == 0)
		n = 16;
	if (b == NULL || b->cap - b->used < n) {
		size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;

		b = xmalloc(sizeof(*b) + cap);
		b->used = 0;
		b->cap = cap;
		b->next = a->head;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

void imap_arena_clear(struct imap_arena *a)
{
	while (a->head != NULL) {
		struct imap_arena_block *b = a->head;

		a->head = b->next;
		free(b);
	}
}

/* ---- command names ---- */

static const struct {
	const char *name;
	enum imap_cmd cmd;
} imap_cmds[] = {
	{ "CAPABILITY", IMAP_CMD_CAPABILITY }, { "NOOP", IMAP_CMD_NOOP },
	{ "LOGOUT", IMAP_CMD_LOGOUT }, { "STARTTLS", IMAP_CMD_STARTTLS },
	{ "AUTHENTICATE", IMAP_CMD_AUTHENTICATE }, { "LOGIN", IMAP_CMD_LOGIN },
	{ "ENABLE", IMAP_CMD_ENABLE }, { "SELECT", IMAP_CMD_SELECT },
	{ "EXAMINE", IMAP_CMD_EXAMINE }, { "CREATE", IMAP_CMD_CREATE },
	{ "DELETE", IMAP_CMD_DELETE }, { "RENAME", IMAP_CMD_RENAME },
	{ "SUBSCRIBE", IMAP_CMD_SUBSCRIBE }, { "UNSUBSCRIBE", IMAP_CMD_UNSUBSCRIBE },
	{ "LIST", IMAP_CMD_LIST }, { "LSUB", IMAP_CMD_LSUB },
	{ "NAMESPACE", IMAP_CMD_NAMESPACE }, { "STATUS", IMAP_CMD_STATUS },
	{ "APPEND", IMAP_CMD_APPEND }, { "IDLE", IMAP_CMD_IDLE },
	{ "CHECK", IMAP_CMD_CHECK }, { "CLOSE", IMAP_CMD_CLOSE },
	{ "UNSELECT", IMAP_CMD_UNSELECT }, { "EXPUNGE", IMAP_CMD_EXPUNGE },
	{ "SEARCH", IMAP_CMD_SEARCH }, { "FETCH", IMAP_CMD_FETCH },
	{ "STORE", IMAP_CMD_STORE }, { "COPY", IMAP_CMD_COPY },
	{ "MOVE", IMAP_CMD_MOVE }, { "ID", IMAP_CMD_ID },
	{ "SORT", IMAP_CMD_SORT }, { "THREAD", IMAP_CMD_THREAD },
	{ "COMPRESS", IMAP_CMD_COMPRESS }, { "GETQUOTA", IMAP_CMD_GETQUOTA },
	{ "GETQUOTAROOT", IMAP_CMD_GETQUOTAROOT }, { "SETQUOTA", IMAP_CMD_SETQUOTA },
	{ "GETMETADATA", IMAP_CMD_GETMETADATA }, { "SETMETADATA", IMAP_CMD_SETMETADATA },
	{ "NOTIFY", IMAP_CMD_NOTIFY },
	{ "DONE", IMAP_CMD_DONE },
};

const char *imap_cmd_name(enum imap_cmd cmd)
{
	for (size_t i = 0; i < sizeof(imap_cmds) / sizeof(imap_cmds[0]); i++)
		if (imap_cmds[i].cmd == cmd)
			return imap_cmds[i].name;
	return "";
}

static enum imap_cmd cmd_lookup(struct slice name)
{
	for (size_t i = 0; i < sizeof(imap_cmds) / sizeof(imap_cmds[0]); i++)
		if (imap_cmds[i].cmd != IMAP_CMD_DONE && slice_eq_ci(name, imap_cmds[i].name))
			return imap_cmds[i].cmd;
	return IMAP_CMD_UNKNOWN;
}

/* ---- reader state ---- */

enum reader_state {
	R_LINE,          /* copying line bytes */
	R_LITERAL,       /* copying `remaining` literal bytes */
	R_SKIP_LITERAL,  /* dropping `remaining` bytes of a refused non-sync literal */
	R_DISCARD,       /* dropping the rest of a bad line */
};

#define TAIL_MAX 32   /* enough for "~{" 20 digits "+}" CR */

struct imap_reader {
	struct imap_reader_limits lim, next_lim;
	struct buf buf;
	struct imap_arena arena;
	enum reader_state state;
	bool finished;          /* last result was OK/ERROR: start afresh on the next feed */
	bool line_mode, next_line_mode;
	size_t line_start;      /* offset of the current line in buf */
	size_t line_bytes;      /* non-literal bytes of this command, as received */
	uint64_t literal_total;
	uint64_t remaining;
	bool in_quote, escape;
	bool head_done;
	/* the head, as offsets: buf.data moves while literals arrive */
	struct imap_command head;
	size_t tag_off, name_off;
	size_t args_pos;        /* offset in buf where the arguments start */
	char tail[TAIL_MAX];    /* R_DISCARD: the last bytes of the line */
	size_t tail_len;
};

static void reader_apply_limits(struct imap_reader *r)
{
	r->lim = r->next_lim;
	buf_free(&r->buf);
	/* every byte kept is bounded by the two limits (plus the "\n"
	 * normalisation, which only shrinks) */
	uint64_t max = (uint64_t)r->lim.max_line + r->lim.max_literal + 16;
	if (max > BUF_UNLIMITED)
		max = BUF_UNLIMITED;
	buf_init(&r->buf, (size_t)max);
}

static void reader_start_command(struct imap_reader *r)
{
	if (r->lim.max_line != r->next_lim.max_line ||
	    r->lim.max_literal != r->next_lim.max_literal)
		reader_apply_limits(r);
	else
		r->lim = r->next_lim;
	buf_reset(&r->buf);
	imap_arena_clear(&r->arena);
	r->line_start = 0;
	r->line_bytes = 0;
	r->literal_total = 0;
	r->in_quote = r->escape = false;
	r->head_done = false;
	memset(&r->head, 0, sizeof(r->head));
	r->args_pos = 0;
	r->tag_off = r->name_off = 0;
	r->line_mode = r->next_line_mode;
	r->next_line_mode = false;
	r->finished = false;
}

/* Zero means "the default" for every limit but max_literal. */
static void limits_copy(struct imap_reader_limits *dst, const struct imap_reader_limits *src)
{
	*dst = *src;
	if (dst->max_line == 0)
		dst->max_line = IMAP_MAX_LINE;
	if (dst->max_args == 0)
		dst->max_args = IMAP_MAX_ARGS;
	if (dst->max_depth == 0)
		dst->max_depth = IMAP_MAX_DEPTH;
}

struct imap_reader *imap_reader_create(const struct imap_reader_limits *limits)
{
	struct imap_reader *r = xcalloc(1, sizeof(*r));

	limits_copy(&r->next_lim, limits);
	reader_apply_limits(r);
	r->state = R_LINE;
	r->finished = true;
	return r;
}

void imap_reader_destroy(struct imap_reader **rp)
{
	struct imap_reader *r = *rp;

	if (r == NULL)
		return;
	buf_free(&r->buf);
	imap_arena_clear(&r->arena);
	free(r);
	*rp = NULL;
}

/* A command has been started (so the next feed will not restart it) but
 * nothing of it has arrived: settings can be applied at once. */
static bool reader_fresh(const struct imap_reader *r)
{
	return r->state == R_LINE && !r->finished && r->buf.len == 0 && r->line_bytes == 0;
}

void imap_reader_set_limits(struct imap_reader *r, const struct imap_reader_limits *limits)
{
	limits_copy(&r->next_lim, limits);
	if (reader_fresh(r))
		reader_start_command(r);
}

void imap_reader_expect_line(struct imap_reader *r)
{
	r->next_line_mode = true;
	if (reader_fresh(r))
		reader_start_command(r);
}

bool imap_reader_idle(const struct imap_reader *r)
{
	return r->state == R_LINE && (r->finished || (r->buf.len == 0 && r->line_bytes == 0));
}

void imap_reader_refuse_literal(struct imap_reader *r)
{
	r->state = R_LINE;
	r->finished = true;
}

/* ---- character classes (RFC 3501 9) ---- */

/* ATOM-CHAR: any CHAR except atom-specials "(" ")" "{" SP CTL list-wildcards
 * quoted-specials resp-specials */
static bool is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\]", c) == NULL;
}

bool imap_is_atom(struct slice s)
{
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (!is_atom_char((unsigned char)s.p[i]))
			return false;
	return true;
}

/* tag = 1*<any ASTRING-CHAR except "+"> */
static bool is_tag_char(unsigned char c)
{
	return c == ']' || (is_atom_char(c) && c != '+');
}

/* What the tokenizer accepts inside an atom: the RFC's ATOM-CHAR plus the
 * characters that real atoms in commands carry: list wildcards (LIST
 * patterns), '*' (sequence sets), '\' (system flags), ']' (astrings), and
 * 8-bit bytes (UTF-8 mailbox names from UTF8=ACCEPT clients; validated by
 * the typed parsers). */
static bool is_loose_atom_char(unsigned char c)
{
	if (c <= 0x20 || c == 0x7f)
		return false;
	return c != '(' && c != ')' && c != '{' && c != '"';
}

/* Does the line p[0..len) end in a literal announcement?  Sets the size
 * (UINT64_MAX when it does not fit), whether it is non-synchronising and
 * whether it is a literal8. */
static bool literal_announced(const char *p, size_t len, uint64_t *n_r, bool *nonsync_r,
			      bool *lit8_r)
{
	size_t i = len, digits_end;
	uint64_t n = 0;

	if (i < 3 || p[i - 1] != '}')
		return false;
	i--;
	*nonsync_r = false;
	if (p[i - 1] == '+') {
		*nonsync_r = true;
		i--;
	}
	digits_end = i;
	while (i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9')
		i--;
	if (i == digits_end || i == 0 || p[i - 1] != '{')
		return false;
	for (size_t k = i; k < digits_end; k++) {
		unsigned d = (unsigned)(p[k] - '0');

		if (n > (UINT64_MAX - 1 - d) / 10) {
			n = UINT64_MAX;
			break;
		}
		n = n * 10 + d;
	}
	*n_r = n;
	*lit8_r = i >= 2 && p[i - 2] == '~';
	return true;
}

/* ---- head: tag, command name, UID sub-command ---- */

static bool parse_tag(const char *p, size_t len, struct slice *tag_r, size_t *pos_r)
{
	size_t i = 0;

	while (i < len && is_tag_char((unsigned char)p[i]))
		i++;
	if (i == 0 || i >= len || p[i] != ' ')
		return false;
	*tag_r = (struct slice){ p, i };
	*pos_r = i + 1;
	return true;
}

static size_t parse_name(char *p, size_t len, size_t pos, struct slice *name_r)
{
	size_t i = pos;

	while (i < len && is_atom_char((unsigned char)p[i])) {
		if (p[i] >= 'a' && p[i] <= 'z')
			p[i] = (char)(p[i] - 'a' + 'A');
		i++;
	}
	*name_r = (struct slice){ p + pos, i - pos };
	return i;
}

/* Parse the head of the command from the first line buf[0..line_len).
 * 0, or -1 with the error (the tag is set in r->head when it was valid). */
static int parse_head(struct imap_reader *r, size_t line_len, struct imap_parse_error *err)
{
	char *p = r->buf.data;
	size_t pos, end;
	struct slice name;

	if (!parse_tag(p, line_len, &r->head.tag, &pos)) {
		*err = (struct imap_parse_error){ IMAP_ERR_SYNTAX, "Invalid tag" };
		return -1;
	}
	end = parse_name(p, line_len, pos, &name);
	if (name.len == 0 || (end < line_len && p[end] != ' ')) {
		*err = (struct imap_parse_error){ IMAP_ERR_SYNTAX, "Invalid command name" };
		return -1;
	}
	r->head.name = name;
	r->name_off = (size_t)(name.p - p);
	r->head.cmd = cmd_lookup(name);
	if (slice_eq_ci(name, "UID")) {
		if (end >= line_len) {
			*err = (struct imap_parse_error){ IMAP_ERR_SYNTAX, "UID needs a command" };
			return -1;
		}
		end = parse_name(p, line_len, end + 1, &name);
		r->head.name = name;
		r->name_off = (size_t)(name.p - p);
		r->head.cmd = cmd_lookup(name);
		r->head.uid = true;
		switch (r->head.cmd) {
		case IMAP_CMD_COPY: case IMAP_CMD_MOVE: case IMAP_CMD_FETCH:
		case IMAP_CMD_SEARCH: case IMAP_CMD_STORE: case IMAP_CMD_EXPUNGE:
		case IMAP_CMD_SORT: case IMAP_CMD_THREAD:
			break;
		default:
			r->head.cmd = IMAP_CMD_UNKNOWN;
			*err = (struct imap_parse_error){ IMAP_ERR_UNKNOWN_COMMAND,
							  "Unknown UID command" };
			return -1;
		}
		if (end < line_len && p[end] != ' ') {
			*err = (struct imap_parse_error){ IMAP_ERR_SYNTAX, "Invalid command name" };
			return -1;
		}
	} else if (r->head.cmd == IMAP_CMD_UNKNOWN) {
		*err = (struct imap_parse_error){ IMAP_ERR_UNKNOWN_COMMAND, "Unknown command" };
		return -1;
	}
	r->args_pos = end;
	return 0;
}

/* ---- tokenizer: the whole command is in the buffer ---- */

struct tok {
	struct imap_reader *r;
	char *p;
	size_t len, pos;
	size_t nodes;
	const char *error;
	enum imap_error_kind kind;
};

struct argvec {
	struct imap_arg *v;
	size_t n, cap;
};

static struct imap_arg *argvec_push(struct tok *t, struct argvec *vec)
{
	if (++t->nodes > t->r->lim.max_args) {
		t->error = "Too many arguments";
		return NULL;
	}
	if (vec->n == vec->cap) {
		vec->cap = vec->cap ? vec->cap * 2 : 8;
		vec->v = xrealloc(vec->v, vec->cap * sizeof(*vec->v));
	}
	memset(&vec->v[vec->n], 0, sizeof(vec->v[0]));
	return &vec->v[vec->n++];
}

static int parse_list_items(struct tok *t, unsigned depth, char close, bool in_section,
			    struct imap_arg **items_r, size_t *count_r);

static int tok_quoted(struct tok *t, struct imap_arg *arg)
{
	size_t w = t->pos + 1, i = t->pos + 1;

	for (;;) {
		if (i >= t->len) {
			t->error = "Unterminated quoted string";
			return -1;
		}
		unsigned char c = (unsigned char)t->p[i];

		if (c == '"')
			break;
		if (c == '\\') {
			i++;
			if (i >= t->len || (t->p[i] != '"' && t->p[i] != '\\')) {
				t->error = "Invalid escape in quoted string";
				return -1;
			}
			c = (unsigned char)t->p[i];
		} else if (c == '\n') {
			t->error = "Unterminated quoted string";
			return -1;
		} else if (c == '\0' || c == '\r') {
			t->error = "Invalid character in quoted string";
			return -1;
		}
		t->p[w++] = (char)c;
		i++;
	}
	arg->type = IMAP_ARG_QUOTED;
	arg->str = (struct slice){ t->p + t->pos + 1, w - (t->pos + 1) };
	t->pos = i + 1;
	return 0;
}

static int tok_literal(struct tok *t, struct imap_arg *arg)
{
	size_t i = t->pos;
	uint64_t n = 0;
	size_t digits = 0;

	if (t->p[i] == '~') {
		arg->literal8 = true;
		i++;
	}
	if (i >= t->len || t->p[i] != '{') {
		t->error = "Invalid literal";
		return -1;
	}
	i++;
	while (i < t->len && t->p[i] >= '0' && t->p[i] <= '9') {
		if (++digits > 19) {
			t->error = "Invalid literal size";
			return -1;
		}
		n = n * 10 + (uint64_t)(t->p[i] - '0');
		i++;
	}
	if (digits == 0) {
		t->error = "Invalid literal size";
		return -1;
	}
	if (i < t->len && t->p[i] == '+')
		i++;
	if (i + 1 >= t->len || t->p[i] != '}' || t->p[i + 1] != '\n') {
		t->error = "Invalid literal";
		return -1;
	}
	i += 2;
	if (n > t->len - i) {
		/* cannot happen: the scanner copied exactly n bytes */
		t->error = "Truncated literal";
		return -1;
	}
	if (!arg->literal8 && memchr(t->p + i, '\0', (size_t)n) != NULL) {
		t->error = "NUL in literal";
		return -1;
	}
	arg->type = IMAP_ARG_LITERAL;
	arg->str = (struct slice){ t->p + i, (size_t)n };
	t->pos = i + (size_t)n;
	return 0;
}

static bool atom_takes_section(struct slice s)
{
	return slice_eq_ci(s, "BODY") || slice_eq_ci(s, "BODY.PEEK") ||
	       slice_eq_ci(s, "BINARY") || slice_eq_ci(s, "BINARY.PEEK") ||
	       slice_eq_ci(s, "BINARY.SIZE");
}

static void classify_atom(struct imap_arg *arg)
{
	struct slice s = arg->str;
	uint64_t n = 0;
	size_t i;

	arg->type = IMAP_ARG_ATOM;
	if (slice_eq_ci(s, "NIL")) {
		arg->type = IMAP_ARG_NIL;
		return;
	}
	if (s.len > 20)
		return;
	for (i = 0; i < s.len; i++) {
		unsigned d = (unsigned)(s.p[i] - '0');

		if (d > 9 || n > (UINT64_MAX - d) / 10)
			return;
		n = n * 10 + d;
	}
	arg->type = IMAP_ARG_NUMBER;
	arg->num = n;
}

/* An atom; when it names a FETCH body part and '[' follows, also the
 * section node (pushed to vec after it). */
static int tok_atom(struct tok *t, unsigned depth, bool in_section, struct argvec *vec)
{
	size_t start = t->pos, i = t->pos;
	struct imap_arg *arg;

	while (i < t->len && is_loose_atom_char((unsigned char)t->p[i])) {
		if (t->p[i] == '[' &&
		    atom_takes_section((struct slice){ t->p + start, i - start }))
			break;
		if (in_section && t->p[i] == ']')
			break;
		i++;
	}
	if (i == start) {
		t->error = "Invalid character";
		return -1;
	}
	arg = argvec_push(t, vec);
	if (arg == NULL)
		return -1;
	arg->str = (struct slice){ t->p + start, i - start };
	classify_atom(arg);
	t->pos = i;
	if (i < t->len && t->p[i] == '[' && atom_takes_section(arg->str)) {
		struct imap_arg *items = NULL, *sec;
		size_t count = 0;

		if (depth + 1 > t->r->lim.max_depth) {
			t->error = "Too deeply nested";
			return -1;
		}
		t->pos++;
		if (parse_list_items(t, depth + 1, ']', true, &items, &count) < 0)
			return -1;
		sec = argvec_push(t, vec);
		if (sec == NULL)
			return -1;
		sec->type = IMAP_ARG_SECTION;
		sec->children = items;
		sec->count = count;
		if (t->pos < t->len && t->p[t->pos] == '<') {
			size_t s = t->pos + 1, e = s;

			while (e < t->len && ((t->p[e] >= '0' && t->p[e] <= '9') || t->p[e] == '.'))
				e++;
			if (e >= t->len || t->p[e] != '>') {
				t->error = "Invalid partial";
				return -1;
			}
			sec->has_partial = true;
			sec->partial = (struct slice){ t->p + s, e - s };
			t->pos = e + 1;
		}
	}
	return 0;
}

/* Parse elements until `close` (')' or ']', or '\n' at top level); the
 * closer is consumed (except the final "\n").  Elements are separated by
 * one or more spaces. */
static int parse_list_items(struct tok *t, unsigned depth, char close, bool in_section,
			    struct imap_arg **items_r, size_t *count_r)
{
	struct argvec vec = { NULL, 0, 0 };
	bool need_sep = false;
	int ret = -1;

	for (;;) {
		if (t->pos >= t->len) {
			t->error = close == ')' ? "Missing ')'" : "Missing ']'";
			goto out;
		}
		char c = t->p[t->pos];

		if (c == close) {
			if (close != '\n') {
				t->pos++;
			} else if (t->pos + 1 != t->len) {
				t->error = "Unexpected line end";
				goto out;
			}
			break;
		}
		if (c == ' ') {
			t->pos++;
			need_sep = false;
			continue;
		}
		if (c == '\n') {
			t->error = close == ')' ? "Missing ')'" : "Missing ']'";
			goto out;
		}
		if (c == ')' || (c == ']' && in_section)) {
			t->error = "Unexpected closing bracket";
			goto out;
		}
		if ((unsigned char)c < 0x20 || c == 0x7f) {
			t->error = "Invalid character";
			goto out;
		}
		if (need_sep) {
			t->error = "Missing space between arguments";
			goto out;
		}
		if (c == '(') {
			struct imap_arg *arg;

			if (depth + 1 > t->r->lim.max_depth) {
				t->error = "Too deeply nested";
				goto out;
			}
			arg = argvec_push(t, &vec);
			if (arg == NULL)
				goto out;
			arg->type = IMAP_ARG_LIST;
			t->pos++;
			struct imap_arg *items = NULL;
			size_t count = 0;
			if (parse_list_items(t, depth + 1, ')', in_section, &items, &count) < 0)
				goto out;
			/* vec.v may have moved only before the recursion */
			vec.v[vec.n - 1].children = items;
			vec.v[vec.n - 1].count = count;
		} else if (c == '"') {
			struct imap_arg *arg = argvec_push(t, &vec);

			if (arg == NULL || tok_quoted(t, arg) < 0)
				goto out;
		} else if (c == '{' || (c == '~' && t->pos + 1 < t->len && t->p[t->pos + 1] == '{')) {
			struct imap_arg *arg = argvec_push(t, &vec);

			if (arg == NULL || tok_literal(t, arg) < 0)
				goto out;
		} else {
			if (tok_atom(t, depth, in_section, &vec) < 0)
				goto out;
		}
		need_sep = true;
	}
	*count_r = vec.n;
	*items_r = NULL;
	if (vec.n > 0) {
		*items_r = imap_arena_alloc(&t->r->arena, vec.n * sizeof(*vec.v));
		memcpy(*items_r, vec.v, vec.n * sizeof(*vec.v));
	}
	ret = 0;
out:
	free(vec.v);
	return ret;
}

/* ---- the feed loop ---- */

static void fill_head(const struct imap_reader *r, struct imap_read_result *res)
{
	const char *base = buf_cstr(&r->buf);

	res->cmd.tag = (struct slice){ base + r->tag_off, r->head.tag.len };
	res->cmd.cmd = r->head.cmd;
	res->cmd.uid = r->head.uid;
	res->cmd.name = (struct slice){ base + r->name_off, r->head.name.len };
}

/* An error found while receiving.  at_line_end: the bad line has ended (its
 * announcement, if any, is in ann_*); else the rest of the line is dropped. */
static void reader_fail(struct imap_reader *r, struct imap_read_result *res,
			enum imap_error_kind kind, const char *text, bool at_line_end,
			bool announced, bool nonsync, uint64_t n)
{
	res->status = IMAP_READ_ERROR;
	res->error = (struct imap_parse_error){ kind, text };
	if (!r->head_done && r->head.tag.len == 0) {
		struct slice tag;
		size_t pos;

		/* the tag alone may be parsable even when the line is too long */
		if (parse_tag(buf_cstr(&r->buf), r->buf.len, &tag, &pos))
			r->head.tag = tag;
	}
	fill_head(r, res);
	r->finished = true;
	if (!at_line_end) {
		size_t l = r->buf.len - r->line_start;
		size_t keep = l < TAIL_MAX ? l : TAIL_MAX;

		memcpy(r->tail, buf_cstr(&r->buf) + r->buf.len - keep, keep);
		r->tail_len = keep;
		r->state = R_DISCARD;
	} else if (announced && nonsync) {
		r->remaining = n;
		r->state = R_SKIP_LITERAL;
	} else {
		r->state = R_LINE;
	}
	log_debug("imap", "event=parse-error kind=%d text=%s", (int)kind, log_quote(text));
}

static void track_quote(struct imap_reader *r, unsigned char c)
{
	if (r->in_quote) {
		if (r->escape)
			r->escape = false;
		else if (c == '\\')
			r->escape = true;
		else if (c == '"')
			r->in_quote = false;
	} else if (c == '"') {
		r->in_quote = true;
	}
}

/* The current line (in buf, "\n" appended) has ended. Returns true when a
 * result is ready. */
static bool line_ended(struct imap_reader *r, struct imap_read_result *res)
{
	size_t line_len = r->buf.len - 1 - r->line_start;
	const char *line = buf_cstr(&r->buf) + r->line_start;
	uint64_t n = 0;
	bool nonsync = false, lit8 = false, quoted = r->in_quote;
	bool ann = !quoted && literal_announced(line, line_len, &n, &nonsync, &lit8);
	struct imap_parse_error err;

	r->in_quote = r->escape = false;
	if (r->line_mode) {
		res->status = IMAP_READ_OK;
		res->cmd.line = (struct slice){ line, line_len };
		res->cmd.cmd = slice_eq_ci(res->cmd.line, "DONE") ? IMAP_CMD_DONE : IMAP_CMD_LINE;
		r->finished = true;
		r->state = R_LINE;
		return true;
	}
	if (!r->head_done) {
		if (line_len == 0) {
			/* empty lines between commands are ignored */
			buf_reset(&r->buf);
			r->line_bytes = 0;
			return false;
		}
		r->head_done = true;
		if (parse_head(r, line_len, &err) < 0) {
			reader_fail(r, res, err.kind, err.text, true, ann, nonsync, n);
			return true;
		}
	}
	if (ann) {
		if (n > r->lim.max_literal - r->literal_total) {
			reader_fail(r, res, IMAP_ERR_LITERAL_TOO_LARGE, "Literal too large",
				    true, ann, nonsync, n);
			return true;
		}
		if (nonsync && r->lim.literal_minus && n > IMAP_LITERAL_MINUS_MAX) {
			reader_fail(r, res, IMAP_ERR_LITERAL_TOO_LARGE,
				    "Non-synchronizing literal too large (LITERAL-)",
				    true, ann, nonsync, n);
			return true;
		}
		r->literal_total += n;
		r->remaining = n;
		r->state = R_LITERAL;
		if (!nonsync) {
			res->status = IMAP_READ_NEED_CONTINUATION;
			res->literal_size = n;
			res->literal8 = lit8;
			fill_head(r, res);
			return true;
		}
		return false;
	}

	/* the command is complete */
	struct tok t = { r, r->buf.data, r->buf.len, r->args_pos, 0, NULL, IMAP_ERR_SYNTAX };
	struct imap_arg *args = NULL;
	size_t nargs = 0;

	if (parse_list_items(&t, 0, '\n', false, &args, &nargs) < 0) {
		reader_fail(r, res, IMAP_ERR_SYNTAX, t.error, true, false, false, 0);
		return true;
	}
	res->status = IMAP_READ_OK;
	fill_head(r, res);
	res->cmd.args = args;
	res->cmd.nargs = nargs;
	r->finished = true;
	r->state = R_LINE;
	return true;
}

void imap_reader_feed(struct imap_reader *r, const char *data, size_t len,
		      struct imap_read_result *res)
{
	size_t i = 0;

	memset(res, 0, sizeof(*res));
	if (r->finished && r->state == R_LINE)
		reader_start_command(r);
	while (i < len) {
		switch (r->state) {
		case R_LITERAL:
		case R_SKIP_LITERAL: {
			size_t take = len - i;

			if (take > r->remaining)
				take = (size_t)r->remaining;
			if (r->state == R_LITERAL && buf_append(&r->buf, data + i, take) < 0)
				panic("imap reader: literal past the buffer limit");
			i += take;
			r->remaining -= take;
			if (r->remaining == 0) {
				if (r->state == R_LITERAL) {
					r->state = R_LINE;
					r->line_start = r->buf.len;
				} else {
					r->state = R_DISCARD;
					r->tail_len = 0;
				}
			}
			break;
		}
		case R_DISCARD: {
			unsigned char c = (unsigned char)data[i++];

			if (c != '\n') {
				track_quote(r, c);
				if (r->tail_len == TAIL_MAX) {
					memmove(r->tail, r->tail + 1, TAIL_MAX - 1);
					r->tail_len--;
				}
				r->tail[r->tail_len++] = (char)c;
				break;
			}
			size_t tl = r->tail_len;
			uint64_t n;
			bool nonsync, lit8;

			if (tl > 0 && r->tail[tl - 1] == '\r')
				tl--;
			if (!r->in_quote && literal_announced(r->tail, tl, &n, &nonsync, &lit8) &&
			    nonsync) {
				r->remaining = n;
				r->state = R_SKIP_LITERAL;
			} else {
				r->state = R_LINE;
				reader_start_command(r);
			}
			r->in_quote = r->escape = false;
			r->tail_len = 0;
			break;
		}
		case R_LINE: {
			if (r->finished)
				reader_start_command(r);
			const char *lf = memchr(data + i, '\n', len - i);
			size_t seg = lf != NULL ? (size_t)(lf - (data + i)) + 1 : len - i;

			if (seg > r->lim.max_line - r->line_bytes) {
				/* keep what fits, so the tag is still readable */
				size_t fit = r->lim.max_line - r->line_bytes;

				for (size_t k = 0; k < fit; k++)
					track_quote(r, (unsigned char)data[i + k]);
				if (buf_append(&r->buf, data + i, fit) < 0)
					panic("imap reader: line past the buffer limit");
				i += fit;
				r->line_bytes += fit;
				reader_fail(r, res, IMAP_ERR_LINE_TOO_LONG, "Command line too long",
					    false, false, false, 0);
				res->consumed = i;
				return;
			}
			for (size_t k = 0; k + 1 < seg || (k < seg && lf == NULL); k++)
				track_quote(r, (unsigned char)data[i + k]);
			r->line_bytes += seg;
			if (lf == NULL) {
				if (buf_append(&r->buf, data + i, seg) < 0)
					panic("imap reader: line past the buffer limit");
				i += seg;
				break;
			}
			size_t body = seg - 1;
			if (buf_append(&r->buf, data + i, body) < 0)
				panic("imap reader: line past the buffer limit");
			i += seg;
			if (r->buf.len > r->line_start && r->buf.data[r->buf.len - 1] == '\r')
				r->buf.len--;
			if (buf_append(&r->buf, "\n", 1) < 0)
				panic("imap reader: line past the buffer limit");
			if (line_ended(r, res)) {
				res->consumed = i;
				return;
			}
			if (r->state == R_LINE)
				r->line_start = r->buf.len;
			break;
		}
		}
	}
	res->status = IMAP_READ_NEED_MORE;
	res->consumed = i;
}

/* ---- argument accessors ---- */

bool imap_arg_astring(const struct imap_arg *arg, struct slice *s_r)
{
	switch (arg->type) {
	case IMAP_ARG_ATOM: case IMAP_ARG_NUMBER: case IMAP_ARG_QUOTED:
	case IMAP_ARG_LITERAL: case IMAP_ARG_NIL:
		*s_r = arg->str;
		return true;
	default:
		return false;
	}
}

bool imap_arg_nstring(const struct imap_arg *arg, struct slice *s_r, bool *is_nil_r)
{
	*is_nil_r = arg->type == IMAP_ARG_NIL;
	if (*is_nil_r) {
		*s_r = (struct slice){ "", 0 };
		return true;
	}
	return imap_arg_string(arg, s_r);
}

bool imap_arg_string(const struct imap_arg *arg, struct slice *s_r)
{
	if (arg->type != IMAP_ARG_QUOTED && arg->type != IMAP_ARG_LITERAL)
		return false;
	*s_r = arg->str;
	return true;
}

bool imap_arg_atom(const struct imap_arg *arg, struct slice *s_r)
{
	if (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NIL)
		return false;
	*s_r = arg->str;
	return true;
}

bool imap_arg_atom_is(const struct imap_arg *arg, const char *name)
{
	return (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL) &&
	       slice_eq_ci(arg->str, name);
}

bool imap_arg_number(const struct imap_arg *arg, uint64_t max, uint64_t *n_r)
{
	if (arg->type != IMAP_ARG_NUMBER || arg->num > max)
		return false;
	*n_r = arg->num;
	return true;
}
