/* The MTA-STS policy Tern publishes for its domains (RFC 8461), the
 * _mta-sts TXT record that announces it, and the Host header check of a
 * policy request.
 *
 * Invariants:
 *  - The policy text depends only on the configuration (mode, mx, max_age),
 *    so it is the same for every local domain, and its id is a hash of
 *    that text: changing the policy changes the id, which is what tells
 *    senders to refetch it (RFC 8461 3.1).
 *  - The Host check reads at most len bytes, accepts only printable ASCII
 *    and yields a lowercased host name, never anything a peer could use to
 *    reach a header or a log line with CR, LF or NUL.
 * RFC 8461 3.1 (TXT record: v=STSv1; id= 1*32 ALPHA/DIGIT), 3.2 (policy
 * file: version, mode, mx, max_age, lines ended by CRLF), 3.3 (served at
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt). */
#include "http/http.h"
#include "lib/buf.h"
#include "lib/config.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <string.h>

int http_mta_sts_policy(const struct config *cfg, struct buf *out)
{
	const char *mode = cfg->mta_sts.mode != NULL ? cfg->mta_sts.mode : "testing";
	size_t start = out->len;
	int r = 0;

	r |= buf_printf(out, "version: STSv1\r\nmode: %s\r\n", mode);
	for (unsigned i = 0; i < cfg->mta_sts.mx_count || (i == 0 && cfg->mta_sts.mx_count == 0);
	     i++) {
		const char *mx = cfg->mta_sts.mx_count > 0 ? cfg->mta_sts.mx[i] : cfg->hostname;
		r |= buf_append_str(out, "mx: ");
		for (const char *c = mx; *c != '\0'; c++) {
			char l = (char)tolower((unsigned char)*c);
			r |= buf_append(out, &l, 1);
		}
		r |= buf_append_str(out, "\r\n");
	}
	r |= buf_printf(out, "max_age: %u\r\n", cfg->mta_sts.max_age);
	if (r != 0) {
		out->len = start;   /* never a partial policy */
		if (out->data != NULL)
			out->data[start] = '\0';
		return -1;
	}
	return 0;
}

void http_mta_sts_id(const struct config *cfg, char id_r[HTTP_MTA_STS_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	http_mta_sts_policy(cfg, &b);
	if (EVP_Digest(b.data != NULL ? b.data : "", b.len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen * 2 < HTTP_MTA_STS_ID_LEN)
		memset(md, 0, sizeof(md));   /* not reached with a working libcrypto */
	for (size_t i = 0; i < HTTP_MTA_STS_ID_LEN / 2; i++) {
		id_r[2 * i] = hex[md[i] >> 4];
		id_r[2 * i + 1] = hex[md[i] & 15];
	}
	id_r[HTTP_MTA_STS_ID_LEN] = '\0';
	buf_free(&b);
}

int http_mta_sts_txt_record(const struct config *cfg, const char *domain, struct buf *out)
{
	char id[HTTP_MTA_STS_ID_LEN + 1];
	size_t dlen = strlen(domain);

	http_mta_sts_id(cfg, id);
	if (dlen > 0 && domain[dlen - 1] == '.')
		dlen--;
	return buf_printf(out, "_mta-sts.%.*s. IN TXT \"v=STSv1; id=%s\"", (int)dlen, domain, id);
}

int http_mta_sts_host_domain(const char *host, size_t len, char **domain_r)
{
	static const char prefix[] = "mta-sts.";
	const size_t plen = sizeof(prefix) - 1;
	size_t end = len;

	*domain_r = NULL;
	if (host == NULL)
		return -1;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)host[i] <= ' ' || (unsigned char)host[i] >= 0x7f)
			return -1;
	/* ":PORT" (RFC 9110 7.2: Host = uri-host [ ":" port ]) */
	for (size_t i = len; i > 0; i--) {
		if (host[i - 1] == ':') {
			for (size_t j = i; j < len; j++)
				if (!isdigit((unsigned char)host[j]) || j - i >= 5)
					return -1;
			end = i - 1;
			break;
		}
		if (!isdigit((unsigned char)host[i - 1]))
			break;
	}
	if (end > 0 && host[end - 1] == '.')
		end--;
	if (end <= plen || strncasecmp(host, prefix, plen) != 0)
		return -1;
	if (!config_hostname_valid(host + plen, end - plen))
		return -1;
	char *d = xstrndup(host + plen, end - plen);
	for (char *c = d; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	*domain_r = d;
	return 0;
}
