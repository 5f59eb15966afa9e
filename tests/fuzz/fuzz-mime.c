/* Fuzz target: mail/mime, imap-bodystructure and imap-envelope on
 * arbitrary bytes.  Parses the input as a message, writes BODY,
 * BODYSTRUCTURE and ENVELOPE, decodes every leaf part to UTF-8, looks up
 * every part by its own section number, and checks the tree's invariants:
 * offsets inside the input, header + body contiguous, children inside
 * their parent's body, part count within MIME_MAX_PARTS. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "mail/imap-bodystructure.h"
#include "mail/imap-envelope.h"
#include "mail/mime-decode.h"
#include "mail/mime.h"
#include "mail/rfc2047.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk(const char *msg, size_t len, struct mime_part *root, struct mime_part *p)
{
	size_t n = 1;

	if (p->header_offset + p->header_size != p->body_offset ||
	    p->body_offset + p->body_size > len)
		panic("part outside the message");
	if (p->parent != NULL && (p->header_offset < p->parent->body_offset ||
				  p->body_offset + p->body_size >
					  p->parent->body_offset + p->parent->body_size))
		panic("child outside its parent");
	if (p->children == NULL) {
		struct buf b;
		buf_init(&b, 1 << 20);
		(void)mime_part_decoded_text(msg, p, &b);
		buf_free(&b);
	}
	char *sec = mime_part_section(p);
	if (sec[0] != '\0' && mime_part_find(root, sec) == NULL)
		panic("section %s not found", sec);
	free(sec);
	for (struct mime_part *c = p->children; c != NULL; c = c->next)
		n += walk(msg, len, root, c);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *msg = xmalloc(size ? size : 1);  /* exact size: ASan sees over-reads */
	struct mime_part *root;
	const char *err;
	struct buf b;

	memcpy(msg, data, size);
	if (mime_parse(msg, size, &root, &err) < 0)
		panic("mime_parse failed: %s", err);
	if (walk(msg, size, root, root) > MIME_MAX_PARTS)
		panic("too many parts");
	buf_init(&b, BUF_UNLIMITED);
	imap_bodystructure_write(&b, msg, root, true);
	buf_reset(&b);
	imap_bodystructure_write(&b, msg, root, false);
	buf_reset(&b);
	imap_envelope_write(&b, msg, root->header_size);
	buf_reset(&b);
	rfc2047_decode(msg, size < 4096 ? size : 4096, &b);
	buf_free(&b);
	mime_part_free(&root);
	free(msg);
	return 0;
}
