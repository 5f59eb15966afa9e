/* Deferred unlinking of released message files (unlink.c).
 *
 * An operation that sets store_op.unlink_later (the POP3 maildrop update)
 * is completed as soon as its index transaction has committed; the files
 * its removed rows named are unlinked afterwards by a background thread.
 * A journal in dir/unlink/ lists them first, so a crash between the commit
 * and the unlink leaves nothing behind for long: the next read-write open
 * of the store removes every listed file that no row names.
 * store_unlinker_* are for the commit thread (commit.c) only. */
#ifndef TERN_STORE_UNLINK_H
#define TERN_STORE_UNLINK_H

#include <stdbool.h>
#include <stddef.h>

struct store;
struct store_op;

/* Wait until every file handed to the background thread so far is
 * unlinked (tests, and anything that must see the files gone). */
void store_unlink_wait(struct store *store);

/* Start the background thread, after removing the files listed in the
 * journals that dead processes left.  Runs on the opening thread before
 * the commit thread starts (it uses the writer connection).  Never fails:
 * without a journal every unlink stays synchronous. */
void store_unlinker_start(struct store *store);

/* Unlink everything still queued, stop the thread, remove the journal. */
void store_unlinker_stop(struct store *store);

/* Before COMMIT: list op's non-recycled files in the journal.  true when
 * they are listed (op->unlink_journaled set): the caller then hands the
 * files over with store_unlinker_push() after the commit and calls
 * store_unlinker_release() once for op.  false: unlink them as usual. */
bool store_unlinker_journal(struct store *store, struct store_op *op);

/* After the commit: unlink path (malloc'd, taken over) in the background. */
void store_unlinker_push(struct store *store, char *path);

/* Every file of one journaled op was pushed (or kept): the journal may be
 * emptied once the queue is drained. */
void store_unlinker_release(struct store *store);

#endif
