/* Fuzz target for SMTP command lines: the input (after one flag byte) is a
 * stream of command lines; each line found by smtp_line_find() goes through
 * smtp_command_parse() and then the MAIL / RCPT / BDAT argument parsers
 * with extension flags chosen by the first byte.
 *
 * Input layout: byte 0 = flags (bit 0-5: SIZE, 8BITMIME, BINARYMIME,
 * SMTPUTF8, DSN, AUTH offered; bits 0 and 5 both set: REQUIRETLS offered
 * too (a TLS session); bit 6: MAIL had SMTPUTF8 for RCPT; bit 7: small
 * line limit), bytes 1.. = the command stream.
 *
 * Invariants checked: consumed byte counts stay within the input and make
 * progress; no accepted line or argument has a control character other
 * than TAB; no output string of the MAIL/RCPT parsers holds CR, LF or NUL
 * or a non-printable byte where only printable ASCII is allowed; error
 * replies always carry a code, an enhanced code and a text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/parse.h"

#define FUZZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz-smtp-command: assertion failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

static void check_no_ctl(const char *s, bool printable_only)
{
	if (s == NULL)
		return;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		FUZZ_ASSERT(c != '\r' && c != '\n');
		if (printable_only)
			FUZZ_ASSERT(c >= 0x20 && c <= 0x7e);
	}
}

static void check_err(const struct smtp_parse_error *err)
{
	FUZZ_ASSERT(err->code >= 500 && err->code <= 599);
	FUZZ_ASSERT(err->enhanced != NULL && err->enhanced[0] == '5');
	FUZZ_ASSERT(err->text != NULL && err->text[0] != '\0');
}

static void check_address(const struct address *a)
{
	check_no_ctl(a->local, false);
	check_no_ctl(a->domain, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	struct smtp_param_ext ext = {
		.size = flags & 1, .eightbitmime = flags & 2, .binarymime = flags & 4,
		.smtputf8 = flags & 8, .dsn = flags & 16, .auth = flags & 32,
		.requiretls = (flags & 33) == 33,
	};
	bool rcpt_utf8 = flags & 64;
	size_t max = flags & 128 ? 16 : 2048;
	const char *p = (const char *)data + 1;
	size_t len = size - 1;

	while (len > 0) {
		struct slice line;
		size_t used;
		bool bare;
		enum smtp_line_status st = smtp_line_find(p, len, max, &line, &used, &bare);

		if (st == SMTP_LINE_NEED_MORE) {
			FUZZ_ASSERT(len < max && memchr(p, '\n', len) == NULL);
			/* treat the rest as a final line, as if the peer
			 * closed after sending it */
			line = (struct slice){ p, len };
			used = len;
		} else if (st == SMTP_LINE_TOO_LONG) {
			FUZZ_ASSERT(used > 0 && used <= len && used >= max);
			p += used;
			len -= used;
			continue;
		} else {
			FUZZ_ASSERT(used > 0 && used <= len && used <= max);
			FUZZ_ASSERT(line.p == p && line.len < used);
			FUZZ_ASSERT(p[used - 1] == '\n');
			FUZZ_ASSERT(bare == (used < 2 || p[used - 2] != '\r'));
		}
		p += used;
		len -= used;

		struct smtp_command cmd;
		if (smtp_command_parse(line, &cmd) < 0)
			continue;
		for (size_t i = 0; i < line.len; i++) {
			unsigned char c = (unsigned char)line.p[i];
			FUZZ_ASSERT(c == '\t' || (c >= 0x20 && c != 0x7f));
		}
		FUZZ_ASSERT(cmd.arg.p >= line.p && cmd.arg.p + cmd.arg.len <= line.p + line.len);
		FUZZ_ASSERT(cmd.verb_text.p == line.p && cmd.verb_text.len <= line.len);

		struct smtp_parse_error err;
		char *x = smtp_xtext_decode(cmd.arg);
		check_no_ctl(x, true);
		free(x);

		switch (cmd.verb) {
		case SMTP_VERB_MAIL: {
			struct smtp_mail_params mp;
			if (smtp_mail_parse(cmd.arg, &ext, &mp, &err) == 0) {
				check_address(&mp.from);
				check_no_ctl(mp.envid, true);
				check_no_ctl(mp.auth, true);
				FUZZ_ASSERT(mp.envid == NULL || strlen(mp.envid) <= 100);
				FUZZ_ASSERT(!mp.from.utf8 || mp.smtputf8);
				FUZZ_ASSERT(mp.size >= -1);
				free(address_format(&mp.from));
			} else {
				check_err(&err);
				FUZZ_ASSERT(mp.envid == NULL && mp.auth == NULL && mp.from.local == NULL);
			}
			smtp_mail_params_clear(&mp);
			break;
		}
		case SMTP_VERB_RCPT: {
			struct smtp_rcpt_params rp;
			if (smtp_rcpt_parse(cmd.arg, &ext, rcpt_utf8, &rp, &err) == 0) {
				check_address(&rp.to);
				check_no_ctl(rp.orcpt, true);
				FUZZ_ASSERT(!rp.to.utf8 || rcpt_utf8);
				FUZZ_ASSERT(!(rp.notify & SMTP_NOTIFY_NEVER) ||
					    rp.notify == SMTP_NOTIFY_NEVER);
			} else {
				check_err(&err);
				FUZZ_ASSERT(rp.orcpt == NULL && rp.to.local == NULL);
			}
			smtp_rcpt_params_clear(&rp);
			break;
		}
		case SMTP_VERB_BDAT: {
			uint64_t n;
			bool last;
			if (smtp_bdat_parse(cmd.arg, &n, &last, &err) < 0)
				check_err(&err);
			break;
		}
		default:
			break;
		}
	}
	return 0;
}
