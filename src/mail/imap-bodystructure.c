/* IMAP BODY / BODYSTRUCTURE, RFC 3501 7.4.2 and 9 (body, body-type-1part,
 * body-type-mpart, body-ext-*), RFC 9051 7.5.2 (message/global like
 * message/rfc822).  See imap-bodystructure.h.
 *
 * Output choices where the RFC leaves room follow Dovecot 2.3:
 *  - a text/ part without a charset parameter gets ("charset" "us-ascii")
 *    (RFC 2045 5.2 default made explicit);
 *  - a multipart with no parts (boundary never seen, or a limit reached)
 *    shows one empty text/plain part, since the grammar needs one;
 *  - a message/rfc822 part that was not looked into (encoded, or past a
 *    limit) gets an all-NIL envelope and an empty text/plain body;
 *  - body-fld-lang is always the list form, body-fld-loc NIL when absent.
 * Differences from Dovecot (deliberate): type, subtype, encoding and
 * disposition are lowercased (Dovecot keeps the case of the header); sizes
 * are the stored bytes (the store keeps CRLF, so they are what FETCH
 * BODY[n] sends; Dovecot counts a bare LF as two bytes).
 *
 * Recursion follows the tree, whose depth mime.c bounds (MIME_MAX_DEPTH
 * levels of multipart and message parts). */
#include "mail/imap-bodystructure.h"
#include "mail/imap-envelope.h"
#include "mail/imap-string.h"
#include "mail/mime.h"

#include <string.h>

#define EMPTY_BODY "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0"

static void write_params(struct buf *out, const struct mime_param *params, size_t n,
			 bool add_charset)
{
	bool have_charset = false;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(params[i].name, "charset") == 0)
			have_charset = true;
	}
	if (n == 0 && !(add_charset && !have_charset)) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_str(out, "(");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_append_str(out, " ");
		imap_append_nstr(out, params[i].name);
		buf_append_str(out, " ");
		imap_append_nstr(out, params[i].value);
	}
	if (add_charset && !have_charset)
		buf_append_str(out, n > 0 ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"");
	buf_append_str(out, ")");
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static void write_disp_lang_loc(struct buf *out, const struct mime_part *p)
{
	if (p->disposition == NULL)
		buf_append_str(out, "NIL");
	else {
		buf_append_str(out, "(");
		imap_append_nstr(out, p->disposition);
		buf_append_str(out, " ");
		write_params(out, p->disp_params, p->n_disp_params, false);
		buf_append_str(out, ")");
	}
	buf_append_str(out, " ");
	if (p->n_languages == 0)
		buf_append_str(out, "NIL");
	else {
		buf_append_str(out, "(");
		for (size_t i = 0; i < p->n_languages; i++) {
			if (i > 0)
				buf_append_str(out, " ");
			imap_append_nstr(out, p->languages[i]);
		}
		buf_append_str(out, ")");
	}
	buf_append_str(out, " ");
	imap_append_nstr(out, p->location);
}

void imap_bodystructure_write(struct buf *out, const char *msg, const struct mime_part *p,
			      bool extended)
{
	if (strcmp(p->type, "multipart") == 0) {
		buf_append_str(out, "(");
		if (p->children == NULL)
			buf_append_str(out, extended ? EMPTY_BODY " NIL NIL NIL NIL)" : EMPTY_BODY ")");
		for (const struct mime_part *c = p->children; c != NULL; c = c->next)
			imap_bodystructure_write(out, msg, c, extended);
		buf_append_str(out, " ");
		imap_append_nstr(out, p->subtype);
		if (extended) {
			buf_append_str(out, " ");
			write_params(out, p->params, p->n_params, false);
			buf_append_str(out, " ");
			write_disp_lang_loc(out, p);
		}
		buf_append_str(out, ")");
		return;
	}

	/* body-type-1part: body-fields first */
	bool text = strcmp(p->type, "text") == 0;
	/* message/rfc822 always has the message form (the grammar wants it);
	 * an encoded one that was not looked into gets an empty envelope and
	 * body, as in Dovecot */
	bool message = (p->flags & MIME_PART_MESSAGE) != 0 ||
		       (strcmp(p->type, "message") == 0 && (strcmp(p->subtype, "rfc822") == 0 ||
							     strcmp(p->subtype, "global") == 0));

	buf_append_str(out, "(");
	imap_append_nstr(out, p->type);
	buf_append_str(out, " ");
	imap_append_nstr(out, p->subtype);
	buf_append_str(out, " ");
	write_params(out, p->params, p->n_params, text);
	buf_append_str(out, " ");
	imap_append_nstr(out, p->id);
	buf_append_str(out, " ");
	imap_append_nstr(out, p->description);
	buf_append_str(out, " ");
	imap_append_nstr(out, p->encoding != NULL ? p->encoding : "7bit");
	buf_printf(out, " %zu", p->body_size);
	if (message) {
		const struct mime_part *m = p->children;
		buf_append_str(out, " ");
		if (m != NULL) {
			imap_envelope_write(out, msg + m->header_offset, m->header_size);
			buf_append_str(out, " ");
			imap_bodystructure_write(out, msg, m, extended);
		} else {
			/* encoded, or past a limit: an empty message */
			imap_envelope_write(out, "", 0);
			buf_append_str(out, extended ? " " EMPTY_BODY " NIL NIL NIL NIL)" :
						       " " EMPTY_BODY ")");
		}
		buf_printf(out, " %zu", p->body_lines);
	} else if (text)
		buf_printf(out, " %zu", p->body_lines);
	if (extended) {
		buf_append_str(out, " ");
		imap_append_nstr(out, p->md5);
		buf_append_str(out, " ");
		write_disp_lang_loc(out, p);
	}
	buf_append_str(out, ")");
}
