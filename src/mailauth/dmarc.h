/* DMARC (RFC 7489): policy records, organisational domains, policy
 * discovery, identifier alignment and the disposition to apply.
 *
 * The library decides; it applies nothing.  The caller (the port-25
 * server) gives it the RFC5322.From domain, the SPF result with its
 * identity and the verified DKIM signatures, and gets back the DMARC result
 * and the disposition the domain owner asks for (none, quarantine, reject).
 *
 * Like SPF, discovery never blocks: DNS TXT questions go through struct
 * dmarc_dns, whose function may answer inside the call or later from the
 * event loop, and dmarc_check() ends with exactly one call of its done
 * callback.  The organisational domain comes from the Public Suffix List
 * through libpsl (struct dmarc_psl). */
#ifndef TERN_MAILAUTH_DMARC_H
#define TERN_MAILAUTH_DMARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailauth/spf.h"

/* Our caps on peer data.  A TXT value longer than DMARC_MAX_RECORD is not
 * parsed (an unusable record); rua/ruf keep at most DMARC_MAX_URIS URIs of
 * at most DMARC_MAX_URI bytes each (further URIs are dropped and counted). */
#define DMARC_MAX_RECORD 4096
#define DMARC_MAX_URIS 8
#define DMARC_MAX_URI 512
#define DMARC_MAX_DOMAIN 253

/* Policy values of p= and sp= (RFC 7489 section 6.3). */
enum dmarc_policy {
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

/* "none", "quarantine", "reject". */
const char *dmarc_policy_name(enum dmarc_policy p);

/* adkim= and aspf= (section 3.1). */
enum dmarc_align {
	DMARC_ALIGN_RELAXED,
	DMARC_ALIGN_STRICT,
};

/* fo= options (section 6.3), a bit each. */
#define DMARC_FO_0 0x01  /* report when every mechanism failed to align (default) */
#define DMARC_FO_1 0x02  /* report when any mechanism failed to align */
#define DMARC_FO_D 0x04  /* DKIM failure reports */
#define DMARC_FO_S 0x08  /* SPF failure reports */

/* One reporting URI of rua= or ruf=: the URI text (percent-escapes kept,
 * no CR/LF/NUL/space) and its "!size" limit in bytes, 0 when none. */
struct dmarc_uri {
	char *uri;
	uint64_t max_size;
};

struct dmarc_uri_list {
	struct dmarc_uri uri[DMARC_MAX_URIS];
	size_t count;
	size_t dropped;     /* invalid or over DMARC_MAX_URIS / DMARC_MAX_URI */
	bool present;       /* the tag appeared */
};

/* A parsed record.  Values that were missing or invalid (other than p) hold
 * their RFC 7489 section 6.3 defaults; the *_explicit flags say which were
 * given validly.  Owns its URI strings: release with dmarc_record_clear(). */
struct dmarc_record {
	enum dmarc_policy p;
	enum dmarc_policy sp;      /* p when absent */
	enum dmarc_align adkim, aspf;
	unsigned pct;              /* 0..100, default 100 */
	unsigned fo;               /* DMARC_FO_* bits, default DMARC_FO_0 */
	bool rf_afrf;              /* rf= lists afrf (the default) */
	uint32_t ri;               /* seconds, default 86400 */
	struct dmarc_uri_list rua, ruf;
	bool p_valid;              /* p= present and valid */
	bool sp_explicit;          /* sp= present and valid */
	bool p_fallback;           /* p= missing or invalid (or sp= invalid)
				      but rua valid: acting as p=none
				      (section 6.6.3 step 6) */
	unsigned discarded;        /* tags discarded for bad values */
};

enum dmarc_parse_status {
	DMARC_PARSE_OK = 0,
	DMARC_PARSE_NOT_DMARC = -1,  /* does not start with v=DMARC1: discard
					it (section 6.6.3 steps 2 and 4) */
	DMARC_PARSE_UNUSABLE = -2,   /* a DMARC record without a valid p= (or
					with a bad sp=) and without a valid
					rua=, or too long: no DMARC processing
					(section 6.6.3 step 6) */
};

/* Parse one TXT value (len bytes, may hold NULs, which make it not a DMARC
 * record) into rec, which is always initialised and must be cleared with
 * dmarc_record_clear() whatever the result.  Whitespace around tags, '='
 * and ';' and a trailing ';' are accepted; unknown tags are ignored; a
 * repeated tag keeps its first value; bad values of tags other than v and p
 * fall back to their defaults (section 6.3, "SHOULD"), except sp (see
 * DMARC_PARSE_UNUSABLE).  Returns a dmarc_parse_status, with *error_r set to
 * a static reason when not OK. */
int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *rec,
		       const char **error_r);

/* Free rec's URI strings and reset it to the defaults. */
void dmarc_record_clear(struct dmarc_record *rec);

/* --- organisational domains (section 3.2) --- */

struct dmarc_psl;

/* Load a Public Suffix List (a few milliseconds: load it once and share it;
 * lookups only read it, from any thread).  path NULL takes libpsl's newest of its
 * built-in list and the system's (Debian's publicsuffix package,
 * /usr/share/publicsuffix); a path names a public_suffix_list.dat file.
 * Both the ICANN and the private sections are used (docs/dmarc.md says
 * why).  Returns NULL with *error_r set when the list cannot be loaded. */
struct dmarc_psl *dmarc_psl_open(const char *path, const char **error_r);

/* Free a list from dmarc_psl_open(); *psl becomes NULL. */
void dmarc_psl_free(struct dmarc_psl **psl);

/* The registrable domain of domain under psl: the public suffix plus one
 * label, lower-cased, as a malloc'd string; NULL when domain is empty,
 * starts with a dot, is itself a public suffix, or is not a domain (these
 * are the PSL test vectors' null answers). */
char *dmarc_psl_registrable(const struct dmarc_psl *psl, const char *domain);

/* Slots in each thread's cache of registrable-domain answers (see
 * dmarc-psl.c): every answer dmarc_psl_registrable() gives goes through
 * it, so at most this many names are remembered per thread. */
#define DMARC_PSL_CACHE_SLOTS 128

/* Counters of the calling thread's registrable-domain cache. */
struct dmarc_psl_cache_stats {
	uint64_t hits, misses;
	size_t used;		/* slots holding an answer, <= DMARC_PSL_CACHE_SLOTS */
};

/* The calling thread's cache counters into *st (for tests and debugging). */
void dmarc_psl_cache_stats(struct dmarc_psl_cache_stats *st);

/* The organisational domain of domain (section 3.2): its registrable
 * domain, or domain itself (lower-cased, without a trailing dot) when it
 * has none.  malloc'd; never NULL. */
char *dmarc_org_domain(const struct dmarc_psl *psl, const char *domain);

/* Whether two domains are aligned (section 3.1): equal ignoring ASCII case
 * and a trailing dot in strict mode, the same organisational domain in
 * relaxed mode. */
bool dmarc_aligned(const struct dmarc_psl *psl, const char *a, const char *b,
		   enum dmarc_align mode);

/* --- evaluation --- */

/* The dmarc= result words of Authentication-Results (RFC 7489 section
 * 11.2, RFC 8601). */
enum dmarc_result {
	DMARC_RESULT_NONE,       /* no usable policy record */
	DMARC_RESULT_PASS,
	DMARC_RESULT_FAIL,
	DMARC_RESULT_TEMPERROR,  /* DNS failed: try again later */
	DMARC_RESULT_PERMERROR,  /* unusable record, or no From domain */
};

/* "none", "pass", "fail", "temperror", "permerror". */
const char *dmarc_result_name(enum dmarc_result r);

/* What the domain owner asks the receiver to do with the message. */
enum dmarc_disposition {
	DMARC_DISPOSITION_NONE,        /* deliver as usual */
	DMARC_DISPOSITION_QUARANTINE,  /* deliver as suspicious (Junk) */
	DMARC_DISPOSITION_REJECT,      /* refuse (550 5.7.1) */
};

/* "none", "quarantine", "reject". */
const char *dmarc_disposition_name(enum dmarc_disposition d);

/* One DKIM signature's outcome as DMARC needs it: its d= and whether it
 * verified (dkim=pass).  Other results do not count (section 4.2). */
struct dmarc_dkim {
	const char *domain;
	bool pass;
};

/* A number in [0, 100) for pct sampling (section 6.6.4); NULL in the
 * request means a random one from arc4random(). */
typedef unsigned dmarc_random_fn(void *ctx);

/* What to evaluate.  Strings are copied by dmarc_check().  mail_from is
 * the RFC5321.MailFrom domain (or the whole address: the part after its
 * last '@' is used), "" or NULL for the null reverse-path; then
 * SPF checked postmaster@<HELO> (RFC 7208 section 2.4), so helo is the
 * SPF-authenticated identifier used for alignment. */
struct dmarc_request {
	const char *from_domain;           /* RFC5322.From domain */
	enum spf_result spf;               /* of the MAIL FROM (or HELO) check */
	const char *mail_from;
	const char *helo;
	const struct dmarc_dkim *dkim;
	size_t dkim_count;
	dmarc_random_fn *random;
	void *random_ctx;
};

/* The outcome, valid during the done callback (or until
 * dmarc_outcome_clear() for dmarc_evaluate()). */
struct dmarc_outcome {
	enum dmarc_result result;
	bool spf_aligned, dkim_aligned;
	const char *aligned_dkim_domain;   /* d= of the aligned signature */
	const char *from_domain;           /* lower-cased */
	const char *policy_domain;         /* where the record was found, or
					      NULL */
	const struct dmarc_record *record; /* the record used, or NULL */
	enum dmarc_policy policy;          /* p, or sp for a subdomain's
					      record found at the org domain */
	bool sampled;                      /* selected by pct */
	enum dmarc_disposition disposition;
	bool local_policy;                 /* not selected by pct under
					      quarantine: classify as usual */
	const char *reason;                /* short text for logs */
	/* private */
	char *owned_from, *owned_policy_domain;
};

/* Evaluate req against rec, a record found at policy_domain (the From
 * domain or its organisational domain): alignment, the result, the policy
 * (sp when policy_domain differs from the From domain) and the disposition
 * with pct sampling (a message not selected under p=reject is quarantined,
 * under p=quarantine left to local policy; section 6.6.4).  rec must
 * outlive o.  Release o with dmarc_outcome_clear(). */
void dmarc_evaluate(const struct dmarc_psl *psl, const struct dmarc_request *req,
		    const struct dmarc_record *rec, const char *policy_domain,
		    struct dmarc_outcome *o);

/* Free what dmarc_evaluate() allocated in o. */
void dmarc_outcome_clear(struct dmarc_outcome *o);

/* --- policy discovery through DNS (section 6.6.3) --- */

enum dmarc_dns_status {
	DMARC_DNS_OK,        /* count >= 0 records (0 = NODATA) */
	DMARC_DNS_NXDOMAIN,
	DMARC_DNS_TEMPFAIL,  /* timeout, SERVFAIL, DNSSEC bogus */
};

/* One TXT answer, borrowed during the callback: each record's strings
 * joined; lengths may be NULL (then strlen()). */
struct dmarc_dns_answer {
	enum dmarc_dns_status status;
	size_t count;
	const char *const *strings;
	const size_t *lengths;
};

typedef void dmarc_dns_cb(void *query_ctx, const struct dmarc_dns_answer *answer);

/* The DNS the discovery asks: txt must call cb exactly once with query_ctx,
 * before it returns or later.  name has no trailing dot.  cancel is
 * optional, as in struct spf_dns. */
struct dmarc_dns {
	void *ctx;
	void (*txt)(void *ctx, const char *name, dmarc_dns_cb *cb, void *query_ctx);
	void (*cancel)(void *ctx, void *query_ctx);
};

typedef void dmarc_done_cb(void *ctx, const struct dmarc_outcome *outcome);

struct dmarc_eval;

/* Discover the policy for req->from_domain (_dmarc.<From domain>, then
 * _dmarc.<organisational domain> when the first gives no record) and
 * evaluate req against it.  A DNS failure gives temperror, more than one
 * DMARC record none, an unusable record permerror.  cb runs exactly once
 * unless cancelled.  Returns NULL when cb has already run, else a handle
 * for dmarc_cancel() that becomes invalid once cb starts.  psl and dns
 * must stay valid until then. */
struct dmarc_eval *dmarc_check(const struct dmarc_psl *psl, const struct dmarc_request *req,
			       const struct dmarc_dns *dns, dmarc_done_cb *cb, void *ctx);

/* Stop a discovery: cb will not run.  With dns->cancel the state is freed
 * at once, else when the outstanding answer arrives.  *ev becomes NULL; a
 * NULL *ev is ignored. */
void dmarc_cancel(struct dmarc_eval **ev);

/* --- DMARC's DNS over SPF's (mailauth/spf.h, spf-dns.h) --- */

struct dmarc_spf_dns;

/* A struct dmarc_dns whose TXT questions go to spf->txt (for instance the
 * resolver adapter of mailauth/spf-dns.h), so port 25 needs one DNS
 * adapter for both.  spf must outlive the result.  Answers keep their
 * timing: at once if spf answers at once, later otherwise. */
struct dmarc_spf_dns *dmarc_spf_dns_new(const struct spf_dns *spf);

/* The interface to give dmarc_check(); valid while a lives. */
const struct dmarc_dns *dmarc_spf_dns_get(struct dmarc_spf_dns *a);

/* Cancel the questions still in flight (through spf->cancel when it has
 * one; their callbacks never run) and free a; *a becomes NULL.  Cancel or
 * finish the discoveries using it first.  Without spf->cancel, questions
 * still in flight keep a until their answers arrive and are dropped. */
void dmarc_spf_dns_free(struct dmarc_spf_dns **a);

#endif
