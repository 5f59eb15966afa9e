/* The signing hook: one process-wide extension point through which
 * outbound mail from our domains is signed (DKIM fills it; nothing is
 * registered by default, and then every call below returns at once).
 *
 * Where it is called:
 *   - as a message from one of our senders enters the queue (submission,
 *     `tern sendmail`, forwarded alias mail whose sender is ours:
 *     smtp/receive.c), with sign_hook_sign;
 *   - by the scheduler after mail/downgrade.c converted the message for a
 *     peer without 8BITMIME, with sign_hook_resign: the fields the hook
 *     added at queue entry are removed and the converted message is
 *     signed again, so a signature is replaced, never stacked, and never
 *     breaks in transit; an ARC set the sealer added to forwarded mail
 *     is made again the same way (sign_hook_arc_reseal, same i= and cv=).
 *
 * Contract for the hook: it gets the sender's domain and the message as
 * it will be sent (CRLF line ends), and appends zero or more header
 * fields to *out, each "Name: value" ending in CRLF (folded continuation
 * lines start with SP or HTAB).  Every field name must be one of the
 * names it declared in sign_hook.fields, so the scheduler can find them
 * again at the top of the queued message.  Appending nothing means "not
 * signed".  The plumbing checks the output (names, line ends, no NUL, no
 * bare CR or LF, at most SIGN_HOOK_MAX bytes) and prepends it.
 *
 * Threads: the hook is called from every event-loop thread at once (SMTP
 * sessions and the queue), so it must be thread-safe and quick (a key
 * operation, no network).  Register it once at worker start, before any
 * thread runs; it is read without locks afterwards. */
#ifndef TERN_QUEUE_SIGN_HOOK_H
#define TERN_QUEUE_SIGN_HOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

#define SIGN_HOOK_MAX (64 * 1024)   /* bytes of header fields one call may add */
#define SIGN_HOOK_FIELDS_MAX 8      /* field names a hook may declare */

struct sign_hook_request {
	const char *domain;         /* the sender's domain (one of ours) */
	const char *data;           /* the message as it will be sent, CRLF line ends */
	size_t len;
	bool resign;                /* after a conversion: the earlier signature was removed */
	const char *log_id;         /* queue or session id for log lines; may be NULL */
};

/* Append the signature header fields for req to out (nothing: unsigned).
 * 0, or <0 with *error_r (a static or long-lived string). */
typedef int sign_hook_fn(void *ctx, const struct sign_hook_request *req, struct buf *out,
			 const char **error_r);

/* ARC sealing (docs/arc.md) of a message Tern forwards for domain (one of
 * ours): append the three fields of a new ARC set to *out, nothing when
 * the domain has no key; auth_results is the value of our
 * Authentication-Results field.  The caller seals only a chain that
 * verified (or none).  0, or <0 with *error_r. */
typedef int sign_hook_seal_fn(void *ctx, const char *domain, const char *data, size_t len,
			      const char *auth_results, struct buf *out, const char **error_r);

struct sign_hook {
	sign_hook_fn *sign;
	void *ctx;
	sign_hook_seal_fn *seal;    /* optional: ARC sealing, same ctx */
	/* the names of the fields sign adds ("DKIM-Signature"), NULL-terminated,
	 * 1 to SIGN_HOOK_FIELDS_MAX of them; copied by sign_hook_set */
	const char *const *fields;
};

/* Register h (copied; h->ctx must live until unregistered), or unregister
 * with NULL.  Call before any thread uses the hook (worker start, tests).
 * Returns 0, or -1 with *error_r when h is malformed. */
int sign_hook_set(const struct sign_hook *h, const char **error_r);

/* Is a hook registered?  The callers' fast path: false costs one load. */
bool sign_hook_active(void);

/* Sign data[0..len) for domain: on 1, out (reset first) holds the hook's
 * fields followed by the message; 0 when no hook is registered or it
 * added nothing (out untouched); <0 with *error_r when the hook failed or
 * its output broke the contract (out untouched). */
int sign_hook_sign(const char *domain, const char *data, size_t len, const char *log_id,
		   struct buf *out, const char **error_r);

/* Seal data[0..len) (a forwarded message) with an ARC set of domain:
 * on 1, out (reset first) holds the set followed by the message; 0 when no
 * sealer is registered or it added nothing (out untouched); <0 with
 * *error_r (out untouched).  The same output checks as sign_hook_sign. */
int sign_hook_seal(const char *domain, const char *data, size_t len,
		   const char *auth_results, struct buf *out, const char **error_r);

/* The length of the run of header fields at the very top of data that
 * carry the registered hook's field names (0 without a hook). */
size_t sign_hook_signed_prefix(const char *data, size_t len);

/* After a conversion: data (the converted message) starts with the
 * fields the hook added at queue entry?  Then out (reset first) gets the
 * message without them, signed again: returns 1 (signed again) or 2 (the
 * hook added nothing this time: out holds the unsigned message, since an
 * old signature would no longer verify).  0 when there is no hook or
 * data has none of its fields at the top (out untouched).  <0 with
 * *error_r when signing failed: out then holds the unsigned message, so
 * the caller may still send it. */
int sign_hook_resign(const char *domain, const char *data, size_t len, const char *log_id,
		     struct buf *out, const char **error_r);

/* ---- ARC sets after a conversion (sign-hook-arc.c, docs/arc.md) ---- */

/* The ARC set our sealer put on top of a queued message. */
struct sign_hook_arc_set {
	unsigned instance;          /* i=, 1..50 */
	bool cv_pass;               /* cv=pass (instance > 1), else cv=none */
	char *domain;               /* d= of the ARC-Seal (= that of the AMS) */
	char *aar;                  /* the ARC-Authentication-Results value after
				       "i=N;", folds kept: our results on arrival */
};

/* Does data start with an ARC set made by our sealer (the three fields in
 * the order sign_hook_seal writes them, one instance N on all of them, N
 * above every other ARC instance in the message, the seal's d= equal to
 * the message signature's, cv= none for N = 1 and pass above)?  Then
 * *set is filled (free it with sign_hook_arc_set_free) and the length of
 * the three fields is returned; else 0 and *set is empty. */
size_t sign_hook_arc_top(const char *data, size_t len, struct sign_hook_arc_set *set);

/* Free set's strings and clear it. */
void sign_hook_arc_set_free(struct sign_hook_arc_set *set);

/* Seal data (a message whose own set `set` was removed) again with the
 * same instance, cv= and ARC-Authentication-Results payload, through the
 * registered sealer and set->domain's key.  0 with out (reset first)
 * holding the new set followed by data; -1 with *error_r when there is no
 * sealer or key, the sealer failed, or its set differs from the removed
 * one (out then holds nothing useful). */
int sign_hook_arc_reseal(const struct sign_hook_arc_set *set, const char *data, size_t len,
			 struct buf *out, const char **error_r);

/* Convert data for a peer without 8BITMIME (mail_downgrade_7bit) and
 * make what the hook added at queue entry valid again for the converted
 * form: when it starts with our ARC set (sign_hook_arc_top) that set is
 * removed; the DKIM fields now on top, if any, are signed again
 * (sign_hook_resign); then the removed ARC set is made again over that
 * (sign_hook_arc_reseal; its message signature covers the new
 * DKIM-Signature fields).  A failure is logged (event=resign_failed,
 * event=arc_reseal_failed) and the message sent without the fields that
 * would no longer verify.  out (reset first, its max applies) gets what
 * to send.  0, or -1 with *error_r when the message cannot be
 * converted. */
int sign_hook_downgrade(const char *domain, const char *data, size_t len, const char *log_id,
			struct buf *out, const char **error_r);

#endif
