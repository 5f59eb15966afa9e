/* Fuzz target: the DNS texts `tern dns check` reads (cli/dns-records.c)
 * and SRV rdata (dns/rdata.c).  The input, as DNS data, goes through the
 * DMARC syntax check, the MTA-STS id reader, the SRV decoder and the TXT
 * quoting of `tern dns records`, each on an exact-size copy so ASan sees
 * any over-read.  Checked: an accepted MTA-STS id is 1-32 letters and
 * digits; a quoted TXT value has only printable ASCII, strings of at most
 * 255 bytes before escaping, and unquotes back to the input. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/dns-records.h"
#include "dns/rdata.h"
#include "lib/buf.h"
#include "lib/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Undo dnsrec_txt_quote: returns the bytes, checks the string sizes */
static void check_quoted(const char *q, size_t qlen, const uint8_t *want, size_t want_len)
{
	size_t i = 0, got = 0;

	while (i < qlen) {
		size_t in_string = 0;
		if (q[i] != '"')
			panic("quoted TXT: expected a quote at %zu", i);
		i++;
		while (i < qlen && q[i] != '"') {
			unsigned char c;
			if (q[i] < 0x20 || q[i] >= 0x7f)
				panic("quoted TXT: unprintable byte");
			if (q[i] == '\\') {
				if (i + 1 < qlen && isdigit((unsigned char)q[i + 1])) {
					if (i + 3 >= qlen)
						panic("quoted TXT: short \\DDD");
					c = (unsigned char)((q[i + 1] - '0') * 100 + (q[i + 2] - '0') * 10 +
							    (q[i + 3] - '0'));
					i += 4;
				} else {
					c = (unsigned char)q[i + 1];
					i += 2;
				}
			} else {
				c = (unsigned char)q[i++];
			}
			if (got >= want_len || want[got] != c)
				panic("quoted TXT: does not unquote to the input");
			got++;
			in_string++;
		}
		if (in_string > DNSREC_TXT_STRING_MAX)
			panic("quoted TXT: a string of %zu bytes", in_string);
		i++;
		if (i < qlen && q[i++] != ' ')
			panic("quoted TXT: strings not separated by a space");
	}
	if (got != want_len)
		panic("quoted TXT: %zu bytes back, %zu in", got, want_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1);
	const char *err = NULL;
	struct dns_srv_rr rr;
	struct buf q;
	char *id = NULL;
	int r;

	if (size > 0)
		memcpy(copy, data, size);
	copy[size] = '\0';

	(void)dnsrec_dmarc_syntax(copy, size, &err);

	r = dnsrec_sts_id(copy, size, &id, &err);
	if (r == 1) {
		size_t n = strlen(id);
		if (n < 1 || n > 32)
			panic("MTA-STS id of %zu bytes accepted", n);
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)id[i]))
				panic("MTA-STS id with a non-alphanumeric byte");
		free(id);
	} else if (id != NULL) {
		panic("MTA-STS id set on r=%d", r);
	} else if (r == -1 && err == NULL) {
		panic("MTA-STS error without a message");
	}

	free(copy);
	copy = malloc(size > 0 ? size : 1);
	if (size > 0)
		memcpy(copy, data, size);
	if (dns_rdata_srv((const unsigned char *)copy, size, &rr, &err) == 0) {
		if (rr.target == NULL || rr.target[0] == '\0')
			panic("SRV without a target");
		free(rr.target);
	}
	free(copy);

	buf_init(&q, 8 * size + 64);
	if (dnsrec_txt_quote((const char *)data, size, &q) < 0)
		panic("TXT quoting ran out of room");
	check_quoted(q.data != NULL ? q.data : "", q.len, data, size);
	buf_free(&q);
	return 0;
}
