/* SPF (RFC 7208): check_host() evaluation with an injectable DNS interface.
 *
 * The engine is a state machine that never blocks: every DNS question goes
 * through struct spf_dns, whose functions may answer at once (inside the
 * call, as the in-memory test zone does) or later (from the event loop, as
 * the real resolver does).  Either way the evaluation continues in a loop,
 * never by recursion, and ends with exactly one call of the done callback. */
#ifndef TERN_MAILAUTH_SPF_H
#define TERN_MAILAUTH_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* RFC 7208 section 4.6.4 limits, and our own caps on peer data. */
#define SPF_MAX_DNS_MECHANISMS 10  /* include a mx ptr exists redirect */
#define SPF_MAX_VOID_LOOKUPS 2
#define SPF_MAX_MX_NAMES 10
#define SPF_MAX_PTR_NAMES 10
#define SPF_MAX_RECORD 4096        /* longer TXT answers are a permerror */
#define SPF_MAX_EXPLANATION 1024

/* RFC 7208 section 2.6, in the order of the enum names. */
enum spf_result {
	SPF_RESULT_NONE,
	SPF_RESULT_NEUTRAL,
	SPF_RESULT_PASS,
	SPF_RESULT_FAIL,
	SPF_RESULT_SOFTFAIL,
	SPF_RESULT_TEMPERROR,
	SPF_RESULT_PERMERROR,
};

/* "none", "neutral", "pass", ... (the RFC 8601 result words). */
const char *spf_result_name(enum spf_result r);

/* An IPv4 or IPv6 address.  family is 4 or 6; IPv4 uses addr[0..3]. */
struct spf_ip {
	int family;
	uint8_t addr[16];
};

/* Parse "1.2.3.4" or an IPv6 text form into ip; an IPv4-mapped IPv6
 * address becomes IPv4 (RFC 7208 section 5).  Returns 0 or -1. */
int spf_ip_parse(const char *s, struct spf_ip *ip);

enum spf_dns_status {
	SPF_DNS_OK,        /* answer has >= 0 records (0 = NODATA) */
	SPF_DNS_NXDOMAIN,  /* name error */
	SPF_DNS_TEMPFAIL,  /* timeout, SERVFAIL, ... */
};

/* One DNS answer, borrowed by the engine only during the callback. */
struct spf_dns_answer {
	enum spf_dns_status status;
	size_t count;
	const char *const *strings;    /* TXT: each record's strings joined;
					  MX: exchange names; PTR: names */
	const struct spf_ip *addrs;    /* A/AAAA answers (count of them) */
	const size_t *lengths;         /* TXT: byte lengths, when a string may
					  hold NULs (then it is a permerror);
					  NULL means strlen() */
};

typedef void spf_dns_cb(void *query_ctx, const struct spf_dns_answer *answer);

/* The DNS the engine asks.  Each function must call cb exactly once with
 * query_ctx, either before it returns or later.  name is a domain without
 * the trailing dot.  addr asks for A (family 4) or AAAA (family 6); ptr
 * asks for the PTR names of ip.  MX answers need not be sorted. */
struct spf_dns {
	void *ctx;
	void (*txt)(void *ctx, const char *name, spf_dns_cb *cb, void *query_ctx);
	void (*addr)(void *ctx, const char *name, int family, spf_dns_cb *cb,
		     void *query_ctx);
	void (*mx)(void *ctx, const char *name, spf_dns_cb *cb, void *query_ctx);
	void (*ptr)(void *ctx, const struct spf_ip *ip, spf_dns_cb *cb, void *query_ctx);
	/* Optional: forget the outstanding question of query_ctx, whose cb must
	 * then never run.  Without it, spf_cancel() waits for the answer. */
	void (*cancel)(void *ctx, void *query_ctx);
};

/* What to check.  Strings are copied by spf_check().  For a MAIL FROM check
 * give sender (may be "" for the null reverse-path, then postmaster@helo is
 * used); for a HELO check give sender "postmaster@" HELO or leave sender
 * NULL.  domain, if NULL, is taken from the sender. */
struct spf_request {
	struct spf_ip ip;
	const char *sender;
	const char *helo;
	const char *domain;
	const char *receiver;  /* %{r}; "unknown" when NULL */
	time_t now;            /* %{t} */
};

/* The outcome, valid during the done callback only. */
struct spf_outcome {
	enum spf_result result;
	const char *explanation; /* on fail with a usable exp=, else NULL */
	const char *reason;      /* short text for logs and Received-SPF */
	int dns_mechanisms;      /* lookups counted against the limit of 10 */
};

typedef void spf_done_cb(void *ctx, const struct spf_outcome *outcome);

struct spf_eval;

/* Evaluate check_host() for req.  cb is called exactly once, unless the
 * evaluation is cancelled; the engine frees its own state after cb.  Returns
 * NULL when cb has already run (all answers came at once), else a handle
 * for spf_cancel() that becomes invalid once cb starts.  dns must stay
 * valid until cb has run or spf_cancel() returned. */
struct spf_eval *spf_check(const struct spf_request *req, const struct spf_dns *dns,
			   spf_done_cb *cb, void *ctx);

/* Stop an evaluation: cb will not run.  With dns->cancel the state is freed
 * at once; without it, when the outstanding answer arrives (the DNS
 * interface and its ctx must stay valid until then).  *ev becomes NULL; a
 * NULL *ev is ignored. */
void spf_cancel(struct spf_eval **ev);

/* Syntax-check one SPF record ("v=spf1 ..."), as check_host() would before
 * evaluating it (terms, CIDR lengths, macro syntax).  Returns 0, or -1 with
 * *error_r set to a static message.  For `tern dns check` and the fuzzer. */
int spf_record_check(const char *record, const char **error_r);

/* Expand a macro string (RFC 7208 section 7) with the values of req and the
 * current domain, for tests and the fuzzer; %{p} expands to "unknown".
 * exp selects explanation rules (c, r, t allowed; spaces kept).  Returns a
 * malloc'd string or NULL with *error_r set. */
char *spf_macro_expand(const char *macro, const struct spf_request *req,
		       const char *domain, bool exp, const char **error_r);

#endif
