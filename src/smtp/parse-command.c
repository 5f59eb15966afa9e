/* SMTP command lines (server side): finding a line in the input, splitting
 * it into verb and argument, and the BDAT argument.
 *
 * Invariants: nothing here allocates or copies; every output is a slice into
 * the caller's bytes.  A line handed to smtp_command_parse() that contains
 * NUL, CR, LF or any other control character except TAB is refused, so no
 * such byte ever reaches an argument slice.
 *
 * RFC 5321 2.3.8 (lines end in CRLF), 4.1.1 (command syntax; verbs are
 * case-insensitive), 4.5.3.1.4 (command line length), RFC 3030 2 (BDAT).
 * Deviations, as Postfix does: a bare LF ends a command line (reported so
 * the session can log or refuse it); SP and TAB both separate the verb from
 * its argument; trailing SP/TAB are trimmed from the argument. */
#include "smtp/parse.h"

#include <string.h>
#include <strings.h>

enum smtp_line_status smtp_line_find(const char *data, size_t len, size_t max,
				     struct slice *line_r, size_t *consumed_r, bool *bare_lf_r)
{
	size_t scan = len < max ? len : max;
	const char *lf = memchr(data, '\n', scan);

	*bare_lf_r = false;
	*consumed_r = 0;
	line_r->p = data;
	line_r->len = 0;
	if (lf != NULL) {
		size_t i = (size_t)(lf - data);

		if (i > 0 && data[i - 1] == '\r') {
			line_r->len = i - 1;
		} else {
			line_r->len = i;
			*bare_lf_r = true;
		}
		*consumed_r = i + 1;
		return SMTP_LINE_OK;
	}
	if (len < max)
		return SMTP_LINE_NEED_MORE;
	/* No line end within max bytes: discard through the next LF if we
	 * already have it, else everything seen; the session keeps calling us
	 * (and discarding) until a line end arrives. */
	lf = memchr(data + max, '\n', len - max);
	*consumed_r = lf != NULL ? (size_t)(lf - data) + 1 : len;
	return SMTP_LINE_TOO_LONG;
}

static const struct {
	const char *name;
	enum smtp_verb verb;
} smtp_verbs[] = {
	{ "HELO", SMTP_VERB_HELO }, { "EHLO", SMTP_VERB_EHLO },
	{ "MAIL", SMTP_VERB_MAIL }, { "RCPT", SMTP_VERB_RCPT },
	{ "DATA", SMTP_VERB_DATA }, { "BDAT", SMTP_VERB_BDAT },
	{ "RSET", SMTP_VERB_RSET }, { "NOOP", SMTP_VERB_NOOP },
	{ "QUIT", SMTP_VERB_QUIT }, { "VRFY", SMTP_VERB_VRFY },
	{ "EXPN", SMTP_VERB_EXPN }, { "HELP", SMTP_VERB_HELP },
	{ "STARTTLS", SMTP_VERB_STARTTLS }, { "AUTH", SMTP_VERB_AUTH },
	/* An HTTP request line sent to the SMTP port (a browser or a proxy
	 * abused for spam): the session hangs up. */
	{ "GET", SMTP_VERB_HTTP }, { "POST", SMTP_VERB_HTTP },
	{ "CONNECT", SMTP_VERB_HTTP }, { "HEAD", SMTP_VERB_HTTP },
};

static bool is_sep(char c)
{
	return c == ' ' || c == '\t';
}

int smtp_command_parse(struct slice line, struct smtp_command *cmd_r)
{
	size_t i, vlen;

	memset(cmd_r, 0, sizeof(*cmd_r));
	for (i = 0; i < line.len; i++) {
		unsigned char c = (unsigned char)line.p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -1;
	}

	for (vlen = 0; vlen < line.len && !is_sep(line.p[vlen]); vlen++)
		;
	cmd_r->verb_text = (struct slice){ line.p, vlen };
	cmd_r->verb = SMTP_VERB_UNKNOWN;
	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++) {
		if (slice_eq_ci(cmd_r->verb_text, smtp_verbs[i].name)) {
			cmd_r->verb = smtp_verbs[i].verb;
			break;
		}
	}
	/* "GET" alone is not an HTTP request line; only "GET <target>" is. */
	if (cmd_r->verb == SMTP_VERB_HTTP && vlen == line.len)
		cmd_r->verb = SMTP_VERB_UNKNOWN;

	i = vlen;
	while (i < line.len && is_sep(line.p[i]))
		i++;
	size_t end = line.len;
	while (end > i && is_sep(line.p[end - 1]))
		end--;
	cmd_r->arg = (struct slice){ line.p + i, end - i };
	return 0;
}

#define BDAT_MAX_DIGITS 20

int smtp_bdat_parse(struct slice arg, uint64_t *size_r, bool *last_r,
		    struct smtp_parse_error *err)
{
	size_t i = 0;
	uint64_t v = 0;

	*size_r = 0;
	*last_r = false;
	while (i < arg.len && arg.p[i] >= '0' && arg.p[i] <= '9') {
		unsigned d = (unsigned)(arg.p[i] - '0');

		if (i >= BDAT_MAX_DIGITS || v > (UINT64_MAX - d) / 10) {
			*err = (struct smtp_parse_error){ 501, "5.5.4", "BDAT chunk size too large" };
			return -1;
		}
		v = v * 10 + d;
		i++;
	}
	if (i == 0) {
		*err = (struct smtp_parse_error){ 501, "5.5.4", "Syntax: BDAT <size> [LAST]" };
		return -1;
	}
	if (i < arg.len) {
		/* exactly one SP between size and LAST (RFC 3030 2) */
		struct slice rest = { arg.p + i + 1, arg.len - i - 1 };

		if (arg.p[i] != ' ' || !slice_eq_ci(rest, "LAST")) {
			*err = (struct smtp_parse_error){ 501, "5.5.4", "Syntax: BDAT <size> [LAST]" };
			return -1;
		}
		*last_r = true;
	}
	*size_r = v;
	return 0;
}
