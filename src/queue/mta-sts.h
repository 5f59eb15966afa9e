/* MTA-STS (RFC 8461): the policy file served at
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt (section 3.2), the TXT
 * record at _mta-sts.DOMAIN (section 3.1), and MX host matching against a
 * policy's mx patterns (section 4.1).
 *
 * Pure parsing: fetching (libcurl), caching and enforcement live in the
 * queue.  Both parsers take bytes a remote party controls; they never read
 * past len, accept no NUL, and cap every size. */
#ifndef TERN_QUEUE_MTA_STS_H
#define TERN_QUEUE_MTA_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MTA_STS_POLICY_MAX 65536        /* bytes of policy text (RFC 8461 3.3: 64 KiB) */
#define MTA_STS_MAX_AGE_MAX 31557600u   /* about one year (RFC 8461 3.2) */
#define MTA_STS_MX_MAX 100              /* mx patterns kept per policy */
#define MTA_STS_ID_MAX 32               /* id length in the TXT record (RFC 8461 3.1) */

enum mta_sts_mode {
	MTA_STS_MODE_NONE,
	MTA_STS_MODE_TESTING,
	MTA_STS_MODE_ENFORCE,
};

struct mta_sts_policy {
	enum mta_sts_mode mode;
	uint32_t max_age;       /* seconds, clamped to MTA_STS_MAX_AGE_MAX */
	char **mx;              /* lowercased patterns, "*.example.com" or a host name (malloc'd) */
	size_t mx_count;
};

struct mta_sts_record {
	char id[MTA_STS_ID_MAX + 1];    /* 1..32 letters and digits */
};

/* Parse a policy file text[0..len) (RFC 8461 3.2): "key: value" lines
 * ended by CRLF or LF; version (STSv1), mode and max_age are required, mx
 * is required (one or more) unless mode is none.  Unknown keys are ignored
 * but must be well formed; for a key given twice the first one counts,
 * except mx, which may repeat.  max_age above MTA_STS_MAX_AGE_MAX is
 * clamped.  Returns 0 with *policy_r filled (release it with
 * mta_sts_policy_clear), or -1 with *error_r (policy_r left empty). */
int mta_sts_policy_parse(const char *text, size_t len, struct mta_sts_policy *policy_r,
			 const char **error_r);

/* Release what a parsed policy owns; the policy is empty afterwards. */
void mta_sts_policy_clear(struct mta_sts_policy *policy);

/* Does MX host name hostname (a trailing dot allowed, any case) match one
 * of the policy's mx patterns (RFC 8461 4.1)?  A pattern "*.example.com"
 * matches exactly one more label on the left ("mx.example.com", not
 * "example.com" nor "a.b.example.com"). */
bool mta_sts_mx_matches(const struct mta_sts_policy *policy, const char *hostname);

/* Parse one TXT record string txt[0..len) of _mta-sts.DOMAIN (RFC 8461
 * 3.1), the character-strings of a multi-string record already joined:
 * "v=STSv1; id=20160831085700Z;".  Returns 1 with *record_r filled, 0 when
 * the string is not an STS record at all (does not start with "v=STSv1";
 * such records are ignored), or -1 with *error_r when it starts like one
 * but is malformed.  The caller treats several STS records as none. */
int mta_sts_txt_parse(const char *txt, size_t len, struct mta_sts_record *record_r,
		      const char **error_r);

struct buf;

/* Append policy as a policy file text (RFC 8461 3.2, LF line ends) that
 * mta_sts_policy_parse reads back to the same policy: what the queue
 * keeps in the store's policy cache (store/mta-sts.h). */
void mta_sts_policy_format(const struct mta_sts_policy *policy, struct buf *out);

/* "none", "testing" or "enforce". */
const char *mta_sts_mode_name(enum mta_sts_mode mode);

#endif
