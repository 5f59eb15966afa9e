/* The DATA / BDAT message body: a resumable byte state machine that
 * normalises line ends, removes DATA dot-stuffing, finds the end of DATA,
 * and measures the message and its header section.
 *
 * Invariants:
 * - the output holds only CRLF line ends: a bare LF or a bare CR in the
 *   input becomes CRLF (bare_lf / bare_cr tell the caller);
 * - a CR is never written alone: it is held in the state until the next
 *   byte (maybe in the next feed) says whether it was CRLF or a bare CR;
 * - DATA ends only on <CRLF>.<CRLF> where both line ends are real CRLF (the
 *   first may be the start of the body): "\n.\n", "\r\n.\n", "\n.\r\n",
 *   "\r.\r" and the like are message content (RFC 5321 4.1.1.4, 2.3.8; the
 *   SMTP smuggling attack relies on servers disagreeing about this);
 * - feeding the same bytes in any split gives the same output and flags.
 *
 * RFC 5321 4.5.2: a line that starts with "." and has more characters loses
 * that first "." ("..x" -> ".x"); a line that is just "." (not the end,
 * because a line end next to it was bare) is kept as ".".  RFC 3030 2: BDAT
 * bodies are neither dot-stuffed nor terminated; the chunk sizes delimit
 * them.  RFC 5322 2.1: the header section ends at the first empty line.
 *
 * Why bytes instead of lines: a peer controls where the network splits the
 * stream, so every decision must survive a split between any two bytes. */
#include "smtp/parse.h"

#include <string.h>

enum body_state {
	ST_BOL,         /* at the start of a line (nothing of it seen yet) */
	ST_MID,         /* inside a line with content */
	ST_BOL_CR,      /* CR held, the line before it was empty */
	ST_MID_CR,      /* CR held after line content */
	ST_DOT,         /* DATA: "." held at the start of a line */
	ST_DOT_CR,      /* DATA: "." then CR held at the start of a line */
	ST_DONE,        /* DATA: <CRLF>.<CRLF> seen */
};
/* The line being started was preceded by a real CRLF (or is the first
 * line): only then can "." CRLF end DATA. */
#define ST_CLEAN 0x100
#define ST_MASK 0xff

void smtp_body_init(struct smtp_body *b, struct buf *out, size_t max_size, size_t max_header,
		    bool dot_stuffed)
{
	memset(b, 0, sizeof(*b));
	b->out = out;
	b->max_size = max_size;
	b->max_header = max_header;
	b->dot_stuffed = dot_stuffed;
	b->state = ST_BOL | ST_CLEAN;
	b->in_header = true;
	buf_reset(out);
}

/* Account for n output bytes and append them unless the message is already
 * too big.  Bytes are all-or-nothing per call, so "\r\n" is never split.
 * Once too big, the output is emptied and stays empty. */
static void emit(struct smtp_body *b, const char *p, size_t n)
{
	if (n == 0)
		return;
	b->size += n;
	if (b->in_header) {
		b->header_len += n;
		if (b->header_len > b->max_header)
			b->header_too_big = true;
	}
	if (b->too_big)
		return;
	if (b->size > b->max_size || buf_append(b->out, p, n) < 0) {
		/* The message will be refused (552): drop what we have so the
		 * result does not depend on how the input was split. */
		b->too_big = true;
		buf_reset(b->out);
	}
}

/* A line ends; empty tells whether it had no content.  The first empty
 * line ends the header section (its CRLF is not counted in it). */
static void end_line(struct smtp_body *b, bool empty)
{
	if (empty && b->in_header)
		b->in_header = false;
	emit(b, "\r\n", 2);
}

static void note_byte(struct smtp_body *b, unsigned char c)
{
	if (c >= 0x80)
		b->eight_bit = true;
	else if (c == 0)
		b->nul = true;
}

size_t smtp_body_feed(struct smtp_body *b, const char *p, size_t len)
{
	int st = b->state & ST_MASK;
	bool clean = (b->state & ST_CLEAN) != 0;
	size_t i = 0;

	if (st == ST_DONE)
		return 0;
	while (i < len) {
		unsigned char c = (unsigned char)p[i];

		switch (st) {
		case ST_BOL:
			if (c == '.' && b->dot_stuffed) {
				st = ST_DOT;
				i++;
			} else if (c == '\r') {
				st = ST_BOL_CR;
				i++;
			} else if (c == '\n') {
				b->bare_lf = true;
				end_line(b, true);
				clean = false;
				i++;
			} else {
				st = ST_MID;    /* reprocess c as content */
			}
			break;
		case ST_MID: {
			/* Hot path: copy the run up to the next CR or LF in one
			 * append. */
			size_t start = i;

			while (i < len && p[i] != '\r' && p[i] != '\n') {
				note_byte(b, (unsigned char)p[i]);
				i++;
			}
			emit(b, p + start, i - start);
			if (i == len)
				break;
			if (p[i] == '\r') {
				st = ST_MID_CR;
			} else {
				b->bare_lf = true;
				end_line(b, false);
				st = ST_BOL;
				clean = false;
			}
			i++;
			break;
		}
		case ST_BOL_CR:
		case ST_MID_CR:
			end_line(b, st == ST_BOL_CR);
			st = ST_BOL;
			if (c == '\n') {
				clean = true;
				i++;
			} else {
				/* bare CR: c starts the next line */
				b->bare_cr = true;
				clean = false;
			}
			break;
		case ST_DOT:
			if (c == '\r') {
				st = ST_DOT_CR;
				i++;
			} else if (c == '\n') {
				/* "." ended by a bare LF: content, never the end */
				b->bare_lf = true;
				emit(b, ".", 1);
				end_line(b, false);
				st = ST_BOL;
				clean = false;
				i++;
			} else {
				/* dot-stuffing: drop the first "." (RFC 5321
				 * 4.5.2); c is the line's content */
				st = ST_MID;
			}
			break;
		case ST_DOT_CR:
			if (c == '\n' && clean) {
				st = ST_DONE;
				i++;
				b->done = true;
				b->state = st;
				return i;
			}
			emit(b, ".", 1);
			end_line(b, false);
			st = ST_BOL;
			if (c == '\n') {
				clean = true;
				i++;
			} else {
				b->bare_cr = true;
				clean = false;
			}
			break;
		default:
			/* ST_DONE is handled above; nothing else exists */
			b->state = ST_DONE;
			return i;
		}
	}
	b->state = st | (clean ? ST_CLEAN : 0);
	return i;
}

void smtp_body_finish(struct smtp_body *b)
{
	int st = b->state & ST_MASK;

	switch (st) {
	case ST_BOL_CR:
	case ST_MID_CR:
		b->bare_cr = true;
		end_line(b, st == ST_BOL_CR);
		st = ST_BOL;
		break;
	case ST_DOT:
		/* DATA cut short after a "." (only when the caller gives up):
		 * keep the byte rather than lose it */
		emit(b, ".", 1);
		st = ST_MID;
		break;
	case ST_DOT_CR:
		emit(b, ".", 1);
		b->bare_cr = true;
		end_line(b, false);
		st = ST_BOL;
		break;
	default:
		return;
	}
	b->state = st;
}
