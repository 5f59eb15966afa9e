/* libFuzzer target for the DMARC aggregate report parser
 * (src/mailauth/dmarc-report.c, RFC 7489 appendix C): the input is parsed
 * as a report (XML, gzip'd XML or a zip archive, chosen by its first
 * bytes), then as a mail whose attachment is parsed the same way.  Nothing
 * may crash, leak, read past the input or reach the network; every kept
 * text is free of control characters. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mailauth/dmarc-report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s < 0x20)
			abort();
}

static void parse(const void *data, size_t size)
{
	struct dmarc_report_in r;
	const char *err = NULL;

	if (dmarc_report_parse(data, size, &r, &err) < 0)
		return;
	check_text(r.org_name);
	check_text(r.report_id);
	check_text(r.domain);
	for (size_t i = 0; i < r.count; i++) {
		check_text(r.rows[i].source_ip);
		check_text(r.rows[i].dkim_result);
		if (r.rows[i].count < 0)
			abort();
	}
	dmarc_report_clear(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf att;
	const char *err = NULL;

	parse(data, size);
	buf_init(&att, DMARC_REPORT_XML_MAX);
	if (dmarc_report_from_message((const char *)data, size, &att, &err) == 0)
		parse(att.data != NULL ? att.data : "", att.len);
	buf_free(&att);
	return 0;
}
