/* IMAP METADATA (RFC 5464) argument parsing: GETMETADATA options and entry
 * lists, SETMETADATA entry/value lists, and entry-name validation.  Pure
 * functions over the argument tree of imap/parse.h; results live in the
 * caller's arena or borrow from the reader, as parse.h describes. */
#ifndef TERN_IMAP_METADATA_H
#define TERN_IMAP_METADATA_H

#include "imap/parse.h"

#define IMAP_METADATA_MAX_ENTRY 1024    /* bytes of one entry name */
#define IMAP_METADATA_MAX_ITEMS 1000    /* entries named in one command */

struct imap_getmetadata_request {
	struct slice mailbox;           /* "" = server entries */
	bool has_maxsize;
	uint64_t maxsize;               /* MAXSIZE: longer values are left out */
	int depth;                      /* DEPTH 0, 1, or -1 for "infinity" */
	char **entries;                 /* lowercased, NUL-terminated (arena) */
	size_t nentries;
};

struct imap_metadata_value {
	char *entry;                    /* lowercased, NUL-terminated (arena) */
	bool nil;                       /* NIL: remove the entry */
	struct slice value;             /* the bytes (quoted, literal or literal8) */
};

struct imap_setmetadata_request {
	struct slice mailbox;
	struct imap_metadata_value *values;
	size_t count;
};

/* true when entry is a valid RFC 5464 3.2 entry name: "/private/..." or
 * "/shared/..." (any case), printable US-ASCII, no '*' or '%', no "//",
 * not ending in '/', at most IMAP_METADATA_MAX_ENTRY bytes.  top_allowed:
 * "/private" and "/shared" themselves are accepted (GETMETADATA with a
 * DEPTH, not SETMETADATA). */
bool imap_metadata_entry_valid(struct slice entry, bool top_allowed);

/* GETMETADATA [(options)] mailbox (entry ...) | entry.  0, or -1 with *err. */
int imap_getmetadata_parse(const struct imap_arg *args, size_t nargs, struct imap_arena *a,
			   struct imap_getmetadata_request *req_r, struct imap_parse_error *err);

/* SETMETADATA mailbox (entry value ...).  Every value is an nstring or a
 * literal8; an entry named twice keeps its last value.  0, or -1 with *err. */
int imap_setmetadata_parse(const struct imap_arg *args, size_t nargs, struct imap_arena *a,
			   struct imap_setmetadata_request *req_r, struct imap_parse_error *err);

#endif
