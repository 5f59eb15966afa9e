/* POP3 command lines and dot-stuffed output (see parse.h).
 *
 * Invariants: nothing here allocates; command outputs are slices into the
 * caller's line.  The stuffer is resumable at every byte: feeding a message
 * in one call or one byte per call emits the same bytes (the unit tests
 * check this).  Why memchr per line in the stuffer: RETR is the hot path of
 * a POP3 server, and only line starts need a look, so whole lines go out as
 * one run without a per-byte loop.
 *
 * RFC 1939 3 (commands: keyword of 3-4 characters, arguments separated by
 * a single space, multi-line responses byte-stuffed and ended by ".CRLF"),
 * RFC 1939 7 (TOP: header, blank line, then n body lines), RFC 2449 4. */
#include "pop3/parse.h"

#include <string.h>

enum pop3_line_status pop3_line_find(const char *data, size_t len, size_t max,
				     struct slice *line_r, size_t *consumed_r)
{
	size_t scan = len < max ? len : max;
	const char *lf = memchr(data, '\n', scan);

	*consumed_r = 0;
	line_r->p = data;
	line_r->len = 0;
	if (lf != NULL) {
		size_t i = (size_t)(lf - data);

		line_r->len = i > 0 && data[i - 1] == '\r' ? i - 1 : i;
		*consumed_r = i + 1;
		return POP3_LINE_OK;
	}
	if (len < max)
		return POP3_LINE_NEED_MORE;
	lf = memchr(data + max, '\n', len - max);
	*consumed_r = lf != NULL ? (size_t)(lf - data) + 1 : len;
	return POP3_LINE_TOO_LONG;
}

static const struct {
	const char *name;
	enum pop3_verb verb;
} pop3_verbs[] = {
	{ "USER", POP3_VERB_USER }, { "PASS", POP3_VERB_PASS }, { "APOP", POP3_VERB_APOP },
	{ "AUTH", POP3_VERB_AUTH }, { "STLS", POP3_VERB_STLS }, { "CAPA", POP3_VERB_CAPA },
	{ "STAT", POP3_VERB_STAT }, { "LIST", POP3_VERB_LIST }, { "RETR", POP3_VERB_RETR },
	{ "DELE", POP3_VERB_DELE }, { "NOOP", POP3_VERB_NOOP }, { "RSET", POP3_VERB_RSET },
	{ "TOP", POP3_VERB_TOP }, { "UIDL", POP3_VERB_UIDL }, { "QUIT", POP3_VERB_QUIT },
	/* an HTTP request sent to the POP3 port: the session hangs up */
	{ "GET", POP3_VERB_HTTP }, { "POST", POP3_VERB_HTTP }, { "HEAD", POP3_VERB_HTTP },
};

int pop3_command_parse(struct slice line, struct pop3_command *cmd_r, const char **error_r)
{
	size_t i, vlen;

	memset(cmd_r, 0, sizeof(*cmd_r));
	for (i = 0; i < line.len; i++) {
		unsigned char c = (unsigned char)line.p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*error_r = "Invalid characters in command";
			return -1;
		}
	}
	for (vlen = 0; vlen < line.len && line.p[vlen] != ' '; vlen++)
		;
	cmd_r->verb_text = (struct slice){ line.p, vlen };
	if (vlen == 0) {
		*error_r = "Empty command";
		return -1;
	}
	for (i = 0; i < sizeof(pop3_verbs) / sizeof(pop3_verbs[0]); i++) {
		if (slice_eq_ci(cmd_r->verb_text, pop3_verbs[i].name)) {
			cmd_r->verb = pop3_verbs[i].verb;
			break;
		}
	}
	if (cmd_r->verb == POP3_VERB_HTTP && vlen == line.len)
		cmd_r->verb = POP3_VERB_UNKNOWN;
	if (cmd_r->verb == POP3_VERB_UNKNOWN && (vlen < 3 || vlen > 4)) {
		*error_r = "Unknown command";
		return -1;
	}
	if (vlen < line.len) {
		cmd_r->rest = (struct slice){ line.p + vlen + 1, line.len - vlen - 1 };
	} else {
		cmd_r->rest = (struct slice){ line.p + line.len, 0 };
	}
	if (cmd_r->verb == POP3_VERB_PASS || cmd_r->verb == POP3_VERB_HTTP)
		return 0;
	/* split on spaces; trailing and repeated spaces are tolerated */
	i = vlen;
	for (;;) {
		size_t start;

		while (i < line.len && line.p[i] == ' ')
			i++;
		if (i >= line.len)
			break;
		start = i;
		while (i < line.len && line.p[i] != ' ')
			i++;
		if (cmd_r->argc == 2) {
			*error_r = "Too many arguments";
			return -1;
		}
		cmd_r->args[cmd_r->argc++] = (struct slice){ line.p + start, i - start };
	}
	return 0;
}

int pop3_number_parse(struct slice s, uint32_t max, uint32_t *n_r)
{
	uint64_t v = 0;

	if (s.len == 0 || s.len > 10)
		return -1;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s.p[i] - '0');
	}
	if (v > max)
		return -1;
	*n_r = (uint32_t)v;
	return 0;
}

/* ---- byte-stuffing ---- */

void pop3_stuff_init(struct pop3_stuff *st, bool limit, uint32_t body_lines)
{
	memset(st, 0, sizeof(*st));
	st->bol = true;
	st->limit = limit;
	st->body_lines = body_lines;
	/* TOP n with n == 0 still sends the blank line after the header */
}

static void emit_run(pop3_emit_fn *emit, void *ctx, const char *p, size_t len, struct pop3_stuff *st)
{
	if (len == 0)
		return;
	emit(ctx, p, len);
	st->last_cr = p[len - 1] == '\r';
	st->any = true;
}

/* A line ended: header/body bookkeeping and the TOP limit. */
static void stuff_line_end(struct pop3_stuff *st)
{
	bool empty = st->line_bytes == 1 || (st->line_bytes == 2 && st->first_cr);

	if (!st->in_body) {
		if (empty) {
			st->in_body = true;
			if (st->limit && st->body_lines == 0)
				st->done = true;
		}
	} else if (st->limit) {
		if (--st->body_lines == 0)
			st->done = true;
	}
	st->bol = true;
	st->line_bytes = 0;
	st->first_cr = false;
}

size_t pop3_stuff_feed(struct pop3_stuff *st, const char *data, size_t len, pop3_emit_fn *emit,
		       void *ctx)
{
	size_t i = 0, run = 0;

	while (i < len && !st->done) {
		if (st->bol) {
			st->bol = false;
			st->first_cr = data[i] == '\r';
			if (data[i] == '.') {
				/* RFC 1939 3: a line starting with '.' gets one more */
				emit_run(emit, ctx, data + run, i - run, st);
				emit_run(emit, ctx, ".", 1, st);
				run = i;
			}
		}
		const char *lf = memchr(data + i, '\n', len - i);
		size_t end = lf != NULL ? (size_t)(lf - data) + 1 : len;

		st->line_bytes += end - i;
		i = end;
		if (lf != NULL)
			stuff_line_end(st);
	}
	emit_run(emit, ctx, data + run, i - run, st);
	return i;
}

void pop3_stuff_finish(struct pop3_stuff *st, pop3_emit_fn *emit, void *ctx)
{
	if (!st->bol && !st->done) {
		if (st->last_cr)
			emit(ctx, "\n", 1);
		else
			emit(ctx, "\r\n", 2);
	}
	emit(ctx, ".\r\n", 3);
}
