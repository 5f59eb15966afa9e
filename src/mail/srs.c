/* Sender Rewriting Scheme (see srs.h for the address forms).
 *
 * Compatible with the libsrs2/postsrsd convention: the same hash input
 * (lowercased timestamp, domain, local part for SRS0; first-hop host and
 * the rest of the SRS0 local part for SRS1), the same 4-character base64
 * HMAC-SHA1 prefix, the same 2-character base32 day stamp (RFC 4648
 * section 6 alphabet), and '=', '+' or '-' accepted after SRS0/SRS1.
 * Invariants: nothing is appended to out unless the whole result is;
 * every hash comparison is case-insensitive and does not stop early. */
#include "mail/srs.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "mail/address.h"

#define SRS_DAY 86400
#define SRS_STAMP_MOD 1024

static const char srs_base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool is_sep(char c)
{
	return c == '=' || c == '+' || c == '-';
}

/* hash = first SRS_HASH_LEN chars of base64(HMAC-SHA1(secret, lower(a . b . c))) */
static void srs_hash(const char *secret, struct slice a, struct slice b, struct slice c,
		     char hash[SRS_HASH_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	struct buf data;
	char *enc;

	buf_init(&data, BUF_UNLIMITED);
	buf_append_slice(&data, a);
	buf_append_slice(&data, b);
	buf_append_slice(&data, c);
	for (size_t i = 0; i < data.len; i++)
		data.data[i] = lower(data.data[i]);
	HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)buf_cstr(&data),
	     data.len, md, &md_len);
	buf_free(&data);
	enc = base64_encode_str(md, md_len);
	memcpy(hash, enc, SRS_HASH_LEN);
	hash[SRS_HASH_LEN] = '\0';
	free(enc);
}

/* Does given (len bytes) equal the hash of any secret, ignoring case? */
static bool srs_hash_ok(const char *const *secrets, size_t secret_count, struct slice given,
			struct slice a, struct slice b, struct slice c)
{
	bool ok = false;

	if (given.len != SRS_HASH_LEN)
		return false;
	for (size_t i = 0; i < secret_count; i++) {
		char want[SRS_HASH_LEN + 1];
		unsigned diff = 0;
		srs_hash(secrets[i], a, b, c, want);
		for (size_t k = 0; k < SRS_HASH_LEN; k++)
			diff |= (unsigned)(lower(want[k]) ^ lower(given.p[k]));
		ok |= diff == 0;
	}
	return ok;
}

static unsigned srs_today(void)
{
	time_t now = clock_now();
	if (now < 0)
		now = 0;
	return (unsigned)((uint64_t)now / SRS_DAY % SRS_STAMP_MOD);
}

static int base32_value(char c)
{
	c = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
	const char *p = c != '\0' ? strchr(srs_base32, c) : NULL;
	return p != NULL ? (int)(p - srs_base32) : -1;
}

static bool secrets_ok(const char *const *secrets, size_t secret_count)
{
	if (secrets == NULL || secret_count == 0)
		return false;
	for (size_t i = 0; i < secret_count; i++) {
		if (secrets[i] == NULL || secrets[i][0] == '\0')
			return false;
	}
	return true;
}

/* RFC 5322 atext plus '.', and UTF-8 bytes (RFC 6531): what a local part
 * may hold without quotes, so the rewritten one needs none either. */
static bool local_char_ok(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL;
}

/* Split "local@domain" at the last '@'; both parts non-empty. */
static int split_address(const char *addr, struct slice *local_r, struct slice *domain_r)
{
	const char *at = strrchr(addr, '@');

	if (at == NULL || at == addr || at[1] == '\0')
		return -1;
	*local_r = (struct slice){ addr, (size_t)(at - addr) };
	*domain_r = slice_from(at + 1);
	for (size_t i = 0; i < local_r->len; i++) {
		if (!local_char_ok((unsigned char)local_r->p[i]))
			return -1;
	}
	return 0;
}

/* The next '='-terminated field of s starting at *pos; *pos moves past
 * the '='.  -1 when there is no '=' left. */
static int next_field(struct slice s, size_t *pos, struct slice *field_r)
{
	const char *eq = memchr(s.p + *pos, '=', s.len - *pos);

	if (eq == NULL)
		return -1;
	*field_r = (struct slice){ s.p + *pos, (size_t)(eq - (s.p + *pos)) };
	*pos = (size_t)(eq - s.p) + 1;
	return 0;
}

static bool has_prefix(struct slice local, const char *tag)
{
	return local.len > 4 && strncasecmp(local.p, tag, 4) == 0 && is_sep(local.p[4]);
}

bool srs_is_srs(const char *addr)
{
	struct slice local = slice_from(addr);
	const char *at = strrchr(addr, '@');

	if (at != NULL)
		local.len = (size_t)(at - addr);
	return has_prefix(local, "SRS0") || has_prefix(local, "SRS1");
}

static int finish(struct buf *out, struct buf *tmp, const char **error_r)
{
	int ret = buf_append(out, tmp->data, tmp->len);
	buf_free(tmp);
	if (ret < 0) {
		*error_r = "SRS address too long";
		return SRS_ERR_SYNTAX;
	}
	return 0;
}

int srs_forward(const char *const *secrets, size_t secret_count, const char *our_domain,
		const char *sender, struct buf *out, const char **error_r)
{
	struct slice local, domain, none = { "", 0 };
	char hash[SRS_HASH_LEN + 1];
	struct buf tmp;

	if (!secrets_ok(secrets, secret_count)) {
		*error_r = "No SRS secret configured";
		return SRS_ERR_CONFIG;
	}
	if (our_domain == NULL || our_domain[0] == '[' ||
	    !address_domain_valid(our_domain, strlen(our_domain), false)) {
		*error_r = "Invalid SRS domain";
		return SRS_ERR_CONFIG;
	}
	if (sender == NULL || sender[0] == '\0') {
		*error_r = "The null sender is not rewritten";
		return SRS_ERR_SYNTAX;
	}
	if (split_address(sender, &local, &domain) < 0 || domain.p[0] == '[' ||
	    !address_domain_valid(domain.p, domain.len, true)) {
		*error_r = "Sender address cannot be rewritten";
		return SRS_ERR_SYNTAX;
	}

	buf_init(&tmp, BUF_UNLIMITED);
	if (has_prefix(local, "SRS1")) {
		/* SRS1=HHHH=host==rest: keep host and rest, hash them anew */
		struct slice s = local, h, host;
		size_t pos = 5;
		if (next_field(s, &pos, &h) < 0 || next_field(s, &pos, &host) < 0 ||
		    host.len == 0 || pos >= s.len) {
			buf_free(&tmp);
			*error_r = "Malformed SRS1 sender";
			return SRS_ERR_SYNTAX;
		}
		struct slice rest = { s.p + pos, s.len - pos };
		srs_hash(secrets[0], host, rest, none, hash);
		buf_printf(&tmp, "SRS1=%s=%.*s=%.*s@%s", hash, (int)host.len, host.p,
			   (int)rest.len, rest.p, our_domain);
	} else if (has_prefix(local, "SRS0")) {
		/* SRS0 from the previous hop: it becomes our SRS1 */
		struct slice rest = { local.p + 4, local.len - 4 };
		srs_hash(secrets[0], domain, rest, none, hash);
		buf_printf(&tmp, "SRS1=%s=%.*s=%.*s@%s", hash, (int)domain.len, domain.p,
			   (int)rest.len, rest.p, our_domain);
	} else {
		unsigned today = srs_today();
		char stamp[3] = { srs_base32[today >> 5 & 31], srs_base32[today & 31], '\0' };
		srs_hash(secrets[0], slice_from(stamp), domain, local, hash);
		buf_printf(&tmp, "SRS0=%s=%s=%.*s=%.*s@%s", hash, stamp, (int)domain.len,
			   domain.p, (int)local.len, local.p, our_domain);
	}
	return finish(out, &tmp, error_r);
}

int srs_reverse(const char *const *secrets, size_t secret_count, const char *address,
		unsigned max_age_days, struct buf *out, const char **error_r)
{
	struct slice local, domain, none = { "", 0 }, h;
	struct buf tmp;
	size_t pos = 5;

	if (!secrets_ok(secrets, secret_count)) {
		*error_r = "No SRS secret configured";
		return SRS_ERR_CONFIG;
	}
	if (max_age_days == 0)
		max_age_days = SRS_MAX_AGE_DEFAULT;
	if (address == NULL || split_address(address, &local, &domain) < 0) {
		*error_r = "Not an address";
		return SRS_ERR_SYNTAX;
	}
	if (!has_prefix(local, "SRS0") && !has_prefix(local, "SRS1")) {
		*error_r = "Not an SRS address";
		return SRS_ERR_NOT_SRS;
	}
	if (next_field(local, &pos, &h) < 0) {
		*error_r = "Malformed SRS address";
		return SRS_ERR_SYNTAX;
	}

	if (has_prefix(local, "SRS1")) {
		struct slice host;
		if (next_field(local, &pos, &host) < 0 || host.len == 0 || pos >= local.len) {
			*error_r = "Malformed SRS1 address";
			return SRS_ERR_SYNTAX;
		}
		struct slice rest = { local.p + pos, local.len - pos };
		if (!srs_hash_ok(secrets, secret_count, h, host, rest, none)) {
			*error_r = "SRS hash does not match";
			return SRS_ERR_HASH;
		}
		buf_init(&tmp, BUF_UNLIMITED);
		buf_printf(&tmp, "SRS0%.*s@%.*s", (int)rest.len, rest.p, (int)host.len, host.p);
		return finish(out, &tmp, error_r);
	}

	struct slice stamp, odomain;
	if (next_field(local, &pos, &stamp) < 0 || next_field(local, &pos, &odomain) < 0 ||
	    stamp.len != 2 || odomain.len == 0 || pos >= local.len) {
		*error_r = "Malformed SRS0 address";
		return SRS_ERR_SYNTAX;
	}
	struct slice olocal = { local.p + pos, local.len - pos };
	if (!address_domain_valid(odomain.p, odomain.len, true)) {
		*error_r = "Malformed SRS0 domain";
		return SRS_ERR_SYNTAX;
	}
	int hi = base32_value(stamp.p[0]), lo = base32_value(stamp.p[1]);
	if (hi < 0 || lo < 0) {
		*error_r = "Malformed SRS timestamp";
		return SRS_ERR_SYNTAX;
	}
	if (!srs_hash_ok(secrets, secret_count, h, stamp, odomain, olocal)) {
		*error_r = "SRS hash does not match";
		return SRS_ERR_HASH;
	}
	/* age in days modulo the stamp period: a stamp from the future wraps
	 * to an old one and is refused too */
	unsigned then = (unsigned)(hi << 5 | lo);
	unsigned age = (srs_today() + SRS_STAMP_MOD - then) % SRS_STAMP_MOD;
	if (age > max_age_days) {
		*error_r = "SRS address expired";
		return SRS_ERR_EXPIRED;
	}
	buf_init(&tmp, BUF_UNLIMITED);
	buf_printf(&tmp, "%.*s@%.*s", (int)olocal.len, olocal.p, (int)odomain.len, odomain.p);
	return finish(out, &tmp, error_r);
}
