/* Where the DMARC report import (queue/dmarcrep-import.c) stopped in each
 * report mailbox, kept in the store's meta table so that a restart does
 * not read every report mailbox again.  No schema change: one meta row per
 * mailbox, key "dmarc_import:<mailbox id>", value "<uidvalidity>:<next
 * uid>".  Reads use the calling thread's reader; the write runs on the
 * commit thread and is waited for (the import pass blocks anyway). */
#ifndef TERN_STORE_DMARC_IMPORT_H
#define TERN_STORE_DMARC_IMPORT_H

#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

/* The most positions store_dmarc_import_pos_list hands out. */
#define STORE_DMARC_IMPORT_POS_MAX 8192

struct store_dmarc_import_pos {
	int64_t mailbox_id;
	uint32_t uidvalidity;
	uint32_t next_uid;          /* the first UID not looked at yet (>= 1) */
};

/* Each recorded position (at most STORE_DMARC_IMPORT_POS_MAX, by mailbox
 * id); a row whose value is not "<uidvalidity>:<next uid>" is skipped.  cb
 * non-zero stops (not an error).  0, or -1 with *error_r. */
int store_dmarc_import_pos_list(struct store *store,
				int (*cb)(void *ctx, const struct store_dmarc_import_pos *p),
				void *ctx, const char **error_r);

/* In one transaction (waits): record each of the set_count positions of
 * set (replacing a mailbox's previous one), and remove the positions of
 * the forget_count mailbox ids of forget.  0, or -1 with *error_r. */
int store_dmarc_import_pos_save(struct store *store,
				const struct store_dmarc_import_pos *set, size_t set_count,
				const int64_t *forget, size_t forget_count,
				const char **error_r);

#endif
