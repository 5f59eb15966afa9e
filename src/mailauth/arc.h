/* ARC (RFC 8617): verification of the Authenticated Received Chain of an
 * inbound message.
 *
 * Use as the DKIM verifier (dkim.h): create, feed the message as it
 * arrives (chunks of any size, CRLF or bare LF), then arc_verify_finish()
 * looks up the sealers' keys through the same injectable struct dkim_dns
 * and calls the done callback exactly once with the chain's result
 * (RFC 8617 section 5.2: none, pass or fail) and the oldest-pass instance.
 *
 * The DKIM library does the work that is the same in both: the tag-list
 * parser, header and body canonicalisation, key records, key cache and
 * signature checks; this module adds the ARC structure (instances, cv=)
 * and the ARC-Seal hash (section 5.1.1). */
#ifndef TERN_MAILAUTH_ARC_H
#define TERN_MAILAUTH_ARC_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "mailauth/dkim.h"

struct buf;

#define ARC_MAX_SETS 50              /* RFC 8617 section 4.2.1: i= 1..50 */
#define ARC_MAX_AMS_CHECKED 10       /* newest AMSs hashed for oldest-pass */
#define ARC_MAX_KEYS 16              /* distinct key names looked up */

enum arc_result {
	ARC_RESULT_NONE,   /* no ARC header field */
	ARC_RESULT_PASS,
	ARC_RESULT_FAIL,
};

/* "none", "pass", "fail". */
const char *arc_result_name(enum arc_result r);

struct arc_outcome {
	enum arc_result result;
	const char *reason;          /* short static text, "" on pass and none */
	unsigned instances;          /* N, the highest instance (0 for none or
					when the structure is broken) */
	unsigned oldest_pass;        /* RFC 8617 5.2 step 5: 0 when every AMS
					checked verified, else the lowest
					instance from which all newer verify */
	/* d= of the newest ARC-Seal (the sealer whose trust decides) and of
	 * the newest ARC-Message-Signature; "" when unknown.  Only DNS-name
	 * characters, owned by the verifier (valid until destroy). */
	const char *sealer;
	const char *ams_domain;
};

typedef void arc_done_cb(void *ctx, const struct arc_outcome *outcome);

struct arc_verify_options {
	time_t now;                  /* 0: clock_now() */
};

struct arc_verify;

/* A verifier for one message; opts may be NULL. */
struct arc_verify *arc_verify_create(const struct arc_verify_options *opts);
/* Feed the next bytes of the message (after SMTP dot-unstuffing). */
void arc_verify_feed(struct arc_verify *v, const char *data, size_t len);
/* The message is complete: check the chain (key lookups in parallel) and
 * call cb exactly once, inside this call or later.  *outcome is valid
 * during cb only; its strings until arc_verify_destroy(), which cb may
 * call.  dns must stay valid until cb has run or the verifier is
 * destroyed.  Call at most once. */
void arc_verify_finish(struct arc_verify *v, const struct dkim_dns *dns,
		       arc_done_cb *cb, void *ctx);
/* Free the verifier; a pending cb will not run.  *v becomes NULL; NULL is
 * ignored. */
void arc_verify_destroy(struct arc_verify **v);

/* Append the RFC 8601 resinfo of an outcome, e.g. "arc=pass
 * header.oldest-pass=0 smtp.remote-ip=192.0.2.1" (RFC 8617 section 10.1
 * registers both properties); with the reason as a comment when not pass.
 * remote_ip (quoted when it is not a token, as an IPv6 address) may be
 * NULL.  0, or -1 when out is full. */
int arc_result_format(const struct arc_outcome *o, const char *remote_ip, struct buf *out);

/* ---- sealing (arc-seal.c, RFC 8617 section 5.1) ---- */

struct arc_seal_request {
	const char *domain;          /* d= of the AMS and AS */
	const char *selector;        /* s= */
	enum dkim_alg alg;           /* RSA_SHA256 (what every verifier knows) or
					ED25519_SHA256 */
	const char *key_id;          /* handed to signer->sign() */
	/* the value of our Authentication-Results field ("host;\r\n\tspf=..."),
	 * copied into the ARC-Authentication-Results */
	const char *auth_results;
	time_t timestamp;            /* t=; 0: clock_now() */
};

/* Append a new ARC set for msg (CRLF line ends), instance one above the
 * highest in it, to header_out: "ARC-Seal: ...", "ARC-Message-Signature:
 * ...", "ARC-Authentication-Results: ...", each folded and ending in
 * CRLF, ready to put on top of the message.  cv= is none for instance 1,
 * else pass: seal only a chain that verified.  -1 with *error_r when the
 * message has a broken ARC structure or 50 sets already, no From, a header
 * section too large, or the signer fails. */
int arc_seal_message(const struct arc_seal_request *req, const struct dkim_signer *signer,
		     const char *msg, size_t len, struct buf *header_out, const char **error_r);

#endif
