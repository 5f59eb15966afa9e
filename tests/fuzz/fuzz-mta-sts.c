/* Fuzz target: queue/mta-sts on arbitrary bytes: the policy parser, MX
 * matching and the TXT record parser.  Beyond not crashing, it checks what
 * the queue relies on: a parsed policy has max_age within the RFC 8461
 * maximum, 1..MTA_STS_MX_MAX lowercase patterns unless its mode is none,
 * a pattern matches itself (or one label under a wildcard), and a parsed
 * TXT id is 1..32 letters and digits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "queue/mta-sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_policy(const struct mta_sts_policy *pol)
{
	if (pol->max_age > MTA_STS_MAX_AGE_MAX)
		panic("max_age above the maximum");
	if (pol->mode != MTA_STS_MODE_NONE && pol->mx_count == 0)
		panic("enforcing policy without mx");
	if (pol->mx_count > MTA_STS_MX_MAX)
		panic("too many mx patterns");
	for (size_t i = 0; i < pol->mx_count; i++) {
		const char *mx = pol->mx[i];
		for (const char *p = mx; *p != '\0'; p++) {
			if ((*p >= 'A' && *p <= 'Z') || (unsigned char)*p <= 0x20 ||
			    (unsigned char)*p >= 0x7f)
				panic("mx pattern not lowercase ASCII");
		}
		if (mx[0] == '*') {
			char *host = malloc(strlen(mx) + 2);
			sprintf(host, "x%s", mx + 1);
			if (!mta_sts_mx_matches(pol, host))
				panic("wildcard pattern does not match one label");
			free(host);
		} else if (!mta_sts_mx_matches(pol, mx)) {
			panic("mx pattern does not match itself");
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mta_sts_policy pol;
	struct mta_sts_record rec;
	const char *err = NULL;

	if (mta_sts_policy_parse((const char *)data, size, &pol, &err) == 0) {
		check_policy(&pol);
		mta_sts_mx_matches(&pol, "mx.example.com");
		mta_sts_mx_matches(&pol, "a.b.example.net.");
		mta_sts_policy_clear(&pol);
	} else if (err == NULL) {
		panic("policy refused without a reason");
	}

	/* the same bytes as a host name against a fixed policy */
	static const char fixed[] = "version: STSv1\nmode: enforce\nmx: *.example.net\n"
				    "mx: mail.example.com\nmax_age: 86400\n";
	if (mta_sts_policy_parse(fixed, sizeof(fixed) - 1, &pol, &err) != 0)
		panic("fixed policy refused");
	char *host = malloc(size + 1);
	memcpy(host, data, size);
	host[size] = '\0';
	mta_sts_mx_matches(&pol, host);
	free(host);
	mta_sts_policy_clear(&pol);

	int r = mta_sts_txt_parse((const char *)data, size, &rec, &err);
	if (r == 1) {
		size_t n = strlen(rec.id);
		if (n == 0 || n > MTA_STS_ID_MAX)
			panic("bad TXT id length");
		for (size_t i = 0; i < n; i++) {
			char c = rec.id[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
				panic("TXT id not alphanumeric");
		}
	}
	return 0;
}
