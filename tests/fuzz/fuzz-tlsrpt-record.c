/* Fuzz target: queue/tlsrpt's `_smtp._tls` TXT record parser (RFC 8460
 * 3) on arbitrary bytes.  Beyond not crashing, it checks what the report
 * sender relies on: at most TLSRPT_RUA_MAX URIs, each printable ASCII
 * without spaces (safe in a header, a log line and a URL) and at most
 * TLSRPT_URI_MAX bytes; a mailto: value is an address with one '@'; an
 * https: value starts with "https://"; and a kept address makes a report
 * mail the builder accepts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "queue/tlsrpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tlsrpt_record r;
	const char *err = NULL;
	int rc;

	log_set_level(LOG_LEVEL_ERROR);
	rc = tlsrpt_record_parse((const char *)data, size, &r, &err);
	if (rc < 0 && err == NULL)
		panic("an error without a reason");
	if (rc <= 0) {
		if (r.rua_count != 0)
			panic("URIs kept from a refused record");
		return 0;
	}
	if (r.rua_count > TLSRPT_RUA_MAX)
		panic("too many URIs");
	for (size_t i = 0; i < r.rua_count; i++) {
		const char *v = r.rua[i].value;
		size_t n = strlen(v);
		if (n == 0 || n > TLSRPT_URI_MAX)
			panic("URI length out of range");
		for (size_t k = 0; k < n; k++)
			if ((unsigned char)v[k] <= ' ' || (unsigned char)v[k] > '~')
				panic("unprintable URI byte");
		if (r.rua[i].kind == TLSRPT_URI_MAILTO) {
			const char *at = strchr(v, '@');
			if (at == NULL || at == v || strchr(at + 1, '@') != NULL)
				panic("mailto: value is not an address");
			struct buf m;
			struct tlsrpt_mail mail = {
				.from = "noreply@a.test", .to = v, .submitter = "a.test",
				.policy_domain = at + 1, .report_id = "x@a.test",
				.gz = "x", .gz_len = 1,
			};
			buf_init(&m, BUF_UNLIMITED);
			if (tlsrpt_mail_build(&mail, &m, &err) < 0)
				panic("a parsed address refused by the mail builder");
			buf_free(&m);
		} else if (strncmp(v, "https://", 8) != 0) {
			panic("https: value without https://");
		}
	}
	tlsrpt_record_clear(&r);
	return 0;
}
