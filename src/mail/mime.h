/* MIME structure of a stored message (RFC 2045, RFC 2046, RFC 2231), as
 * IMAP needs it: every part's byte offsets, its IMAP part number, and the
 * Content-* fields that BODYSTRUCTURE reports.
 *
 * The parser works on the message bytes as stored (CRLF line ends; bare LF
 * tolerated) in one linear pass, and builds a tree:
 *  - the root is the message itself (its header is the message header);
 *  - a multipart part has its body parts as children;
 *  - a message/rfc822 (or message/global) part has exactly one child, the
 *    embedded message, whose header starts at the part's body;
 *  - other parts are leaves.
 * IMAP part numbers (RFC 3501 6.4.5 / RFC 9051 6.4.5) are derived from the
 * tree by mime_part_section() and mime_part_find().
 *
 * Limits (Dovecot's defaults, CVE-2020-12100): MIME_MAX_DEPTH nested
 * multipart/message levels and MIME_MAX_PARTS parts in all.  A part that
 * would pass them is kept as an opaque leaf (MIME_PART_OPAQUE): its bytes
 * belong to it but are not looked into.  Missing or unterminated boundaries
 * never fail the parse; see mime.c for exactly where such parts end.
 *
 * Ownership: the tree and everything in it are malloc'd and freed with
 * mime_part_free(); strings are NUL-terminated copies; offsets refer to the
 * message buffer given to mime_parse(), which the tree does not keep. */
#ifndef TERN_MAIL_MIME_H
#define TERN_MAIL_MIME_H

#include <stdbool.h>
#include <stddef.h>

#define MIME_MAX_DEPTH 100     /* nested multipart and message/rfc822 levels */
#define MIME_MAX_PARTS 10000   /* parts in one message, the root included */
#define MIME_MAX_PARAMS 256    /* parameters kept per field; more are ignored */

struct mime_param {
	/* attribute, lowercased (RFC 2045 5.1: case-insensitive).  RFC 2231
	 * continuations (name*0, name*1*, ...) are merged into one
	 * parameter; its name ends in '*' when the value is in the extended
	 * form charset'language'%XX (as Dovecot reports it in
	 * BODYSTRUCTURE). */
	char *name;
	/* the value as written: quotes and quoted-pairs removed,
	 * continuations joined in order */
	char *value;
	/* the value decoded to UTF-8 (RFC 2231 charset and %XX decoded for
	 * extended values; otherwise value made valid UTF-8) */
	char *utf8;
};

enum mime_part_flags {
	MIME_PART_MULTIPART = 1 << 0,     /* type multipart: children are its parts (maybe none) */
	MIME_PART_MESSAGE = 1 << 1,       /* message/rfc822 or message/global: one child */
	MIME_PART_OPAQUE = 1 << 2,        /* past a limit: not looked into */
	MIME_PART_HAS_CTYPE = 1 << 3,     /* a parseable Content-Type field was present */
	MIME_PART_NO_END = 1 << 4,        /* multipart whose close delimiter never came */
	MIME_PART_NO_HEADER_END = 1 << 5, /* header section without an empty line after it */
};

struct mime_part {
	struct mime_part *parent, *children, *next;
	unsigned n_children;
	unsigned flags;              /* enum mime_part_flags */

	/* byte offsets into the message */
	size_t header_offset;        /* start of the header section */
	size_t header_size;          /* including the empty line that ends it */
	size_t body_offset;          /* header_offset + header_size */
	size_t body_size;            /* without the line end before a boundary (RFC 2046 5.1.1) */
	size_t body_lines;           /* LF characters in the body */

	/* Content-Type (RFC 2045 5): type and subtype lowercased; defaults
	 * per RFC 2045 5.2 / RFC 2046 5.1.5 (text/plain; charset=us-ascii, or
	 * message/rfc822 inside multipart/digest) when absent or invalid */
	char *type, *subtype;
	struct mime_param *params;
	size_t n_params;
	const char *boundary;        /* points into params; NULL if none */

	char *encoding;              /* Content-Transfer-Encoding, lowercased; NULL = 7bit */
	char *id;                    /* Content-ID, unfolded; NULL if absent */
	char *description;           /* Content-Description, unfolded (RFC 2047 words kept) */
	char *md5;                   /* Content-MD5, unfolded */
	char *location;              /* Content-Location (RFC 2557), unfolded */
	char *disposition;           /* Content-Disposition value (RFC 2183), lowercased */
	struct mime_param *disp_params;
	size_t n_disp_params;
	char **languages;            /* Content-Language tags (RFC 3282) */
	size_t n_languages;
};

/* Parse the MIME structure of msg[0..len).  Never fails on malformed
 * input (it always yields a tree); returns 0 with *root_r, or -1 with
 * *error_r only if len is too large to index.  The caller frees the tree
 * with mime_part_free().  Thread-safe; no global state. */
int mime_parse(const char *msg, size_t len, struct mime_part **root_r, const char **error_r);

/* Free a tree from its root and set *root to NULL.  NULL is fine. */
void mime_part_free(struct mime_part **root);

/* The part with IMAP part number section ("1", "2.1.3"; digits and dots,
 * no trailing text) under root, or NULL when there is none.  For a
 * non-multipart message "1" is the message body itself (the root); for a
 * message/rfc822 part N, "N.M" numbers the embedded message's parts. */
struct mime_part *mime_part_find(struct mime_part *root, const char *section);

/* The IMAP part number of part as a malloc'd string, the one
 * mime_part_find() takes: "1" for a non-multipart root (its body), "" for
 * a multipart root; a multipart embedded message has the number of its
 * message/rfc822 part (its parts are numbered N.1, N.2, ...), a
 * non-multipart one N.1. */
char *mime_part_section(const struct mime_part *part);

/* The value of parameter name (lowercase) in UTF-8: the RFC 2231 form
 * "name*" when present, else plain "name".  NULL when absent.  Points into
 * params. */
const char *mime_param_get(const struct mime_param *params, size_t n, const char *name);

/* Parse a parameter list "; a=b; c*0=..." (the text after the value of a
 * Content-Type or Content-Disposition field, unfolded, from its first ';')
 * with RFC 2231 continuations merged and values decoded.  Appends at most
 * MIME_MAX_PARAMS parameters to a malloc'd array.  Returns the count. */
size_t mime_params_parse(const char *s, size_t len, struct mime_param **params_r);
/* Free an array from mime_params_parse(). */
void mime_params_free(struct mime_param *params, size_t n);

#endif
