/* The expected DNS records of a local domain, shared by `tern dns records`
 * (which prints them) and `tern dns check` (which compares DNS with them),
 * plus the pure helpers both need: master-file formatting, TXT splitting,
 * the TLSA hash of the certificate, basic DMARC and MTA-STS record syntax.
 *
 * Invariants: every record is computed from the configuration alone (and
 * the store's DKIM keys, added in one marked place, dnsrec_add_dkim), so
 * printing and checking always agree; names are lowercase without a
 * trailing dot inside, absolute with the dot in zone lines; no text
 * written into a zone line is left unescaped.
 * RFCs: 1035 3.3 and 5.1 (master files, TXT strings of 255 bytes at most),
 * 5321 5.1 (MX), 7208 (SPF), 7489 6.3 (DMARC), 8461 3.1 (MTA-STS TXT),
 * 8460 3 (TLS-RPT), 2782 and 6186 3 (SRV, "." for a service not offered),
 * 8314 5.1 (implicit TLS SRV names), 6698 2.1 and 7671 5.1 (TLSA 3 1 1). */
#include "cli/dns-records.h"
#include "mailauth/dkim-manage.h"
#include "store/dkim-keys.h"
#include "http/http.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "dns/rdata.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LINE_MAX_BYTES 8192

static char *lower_dup(const char *s)
{
	char *d = xstrdup(s);
	size_t n = strlen(d);

	for (char *c = d; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	if (n > 1 && d[n - 1] == '.')
		d[n - 1] = '\0';
	return d;
}

static struct dnsrec *add(struct dnsrec_set *set, enum dnsrec_kind kind, const char *label,
			  char *name, const char *type, char *value, char *comment)
{
	struct dnsrec *r;

	set->items = xrealloc(set->items, (set->count + 1) * sizeof(*set->items));
	r = &set->items[set->count++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->label = label;
	r->name = name;
	r->type = type;
	r->value = value;
	r->comment = comment;
	return r;
}

static void note(struct dnsrec_set *set, char *text)
{
	set->notes = xrealloc(set->notes, (set->note_count + 1) * sizeof(*set->notes));
	set->notes[set->note_count++] = text;
}

/* A bind address that names one address, not "every address" */
static bool bind_specific(const char *bind, struct dns_address *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, bind, &a->addr.v4) == 1) {
		a->family = AF_INET;
		return a->addr.v4.s_addr != htonl(INADDR_ANY);
	}
	if (inet_pton(AF_INET6, bind, &a->addr.v6) == 1) {
		a->family = AF_INET6;
		return !IN6_IS_ADDR_UNSPECIFIED(&a->addr.v6);
	}
	return false;
}

static void add_srv(struct dnsrec_set *set, const struct config *cfg, const char *label,
		    const char *service, enum listener_kind kind)
{
	struct dnsrec *r;
	int port = cfg->port[kind];

	if (port > 0) {
		r = add(set, DNSREC_SRV, label, xasprintf("_%s._tcp.%s", service, set->domain),
			"SRV", xasprintf("0 1 %d %s", port, set->hostname), NULL);
		r->target = xstrdup(set->hostname);
		r->port = (unsigned)port;
	} else {
		r = add(set, DNSREC_SRV, label, xasprintf("_%s._tcp.%s", service, set->domain),
			"SRV", xstrdup("0 0 0 ."),
			xasprintf("listen.%s is disabled: \".\" says the service is not offered "
				  "(RFC 6186 3.4)", listener_kind_name(kind)));
		r->target = xstrdup(".");
		r->port = 0;
	}
}

int dnsrec_expected(const struct config *cfg, const char *domain, struct dnsrec_set *set,
		    const char **error_r)
{
	struct dnsrec *r;
	bool any_bind = false;
	const char *err;
	char hex[65];

	memset(set, 0, sizeof(*set));
	if (cfg->hostname == NULL || domain == NULL || domain[0] == '\0') {
		*error_r = "no hostname or domain";
		return -1;
	}
	set->domain = lower_dup(domain);
	set->hostname = lower_dup(cfg->hostname);
	set->smarthost = cfg->queue.smarthost.host != NULL;
	set->https = cfg->port[LISTENER_HTTPS] > 0;
	const char *d = set->domain, *h = set->hostname;

	/* MX (RFC 5321 5.1): this server receives the domain's mail */
	r = add(set, DNSREC_MX, "MX", xstrdup(d), "MX", xasprintf("10 %s", h),
		xasprintf("mail for %s goes to this server (the hostname in tern.conf)", d));
	r->target = xstrdup(h);

	/* the hostname's addresses, when the listeners bind specific ones */
	for (unsigned i = 0; i < cfg->bind_count; i++) {
		struct dns_address a;
		char text[INET6_ADDRSTRLEN];
		if (!bind_specific(cfg->bind[i], &a)) {
			any_bind = true;
			continue;
		}
		inet_ntop(a.family, &a.addr, text, sizeof(text));
		r = add(set, DNSREC_HOST_ADDR, a.family == AF_INET ? "A" : "AAAA", xstrdup(h),
			a.family == AF_INET ? "A" : "AAAA", xstrdup(text),
			xasprintf("the address of %s (listen.bind); skip it if the hostname "
				  "lives in another zone that has it already", h));
		r->addr = a;
	}
	if (any_bind)
		note(set, xasprintf("%s needs A (and AAAA) records of its public addresses: "
				    "listen.bind covers every address, so they are not listed here",
				    h));

	/* SPF (RFC 7208): mx allows the MX hosts, i.e. this server */
	r = add(set, DNSREC_SPF, "SPF", xstrdup(d), "TXT", xstrdup("v=spf1 mx -all"), NULL);
	if (set->smarthost)
		r->comment = xasprintf("SPF: mail leaves through the smarthost %s: add the "
				       "provider's include: term (its documentation names it) "
				       "before -all", cfg->queue.smarthost.host);
	else
		r->comment = xstrdup("SPF: \"mx\" allows the hosts of the MX records, this server; "
				     "if it sends from another address than its MX address, add "
				     "ip4:/ip6: terms for it before -all");

	/* DKIM: filled in by the store's keys */

	/* DMARC (RFC 7489 6.3), starting at quarantine with aggregate reports */
	add(set, DNSREC_DMARC, "DMARC", xasprintf("_dmarc.%s", d), "TXT",
	    xasprintf("v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@%s", d),
	    xasprintf("DMARC: create the report mailbox first: tern user add "
		      "dmarc-reports@%s (or an alias to an existing one)", d));

	/* MTA-STS (RFC 8461 3.1): the id of the policy the https listener serves */
	if (set->https) {
		char id[HTTP_MTA_STS_ID_LEN + 1];
		struct buf line;
		/* the same text http_mta_sts_txt_record() writes, from the same id */
		http_mta_sts_id(cfg, id);
		buf_init(&line, LINE_MAX_BYTES);
		if (http_mta_sts_txt_record(cfg, d, &line) < 0 || strstr(buf_cstr(&line), id) == NULL)
			panic("dns records: MTA-STS record and id disagree");
		buf_free(&line);
		add(set, DNSREC_MTA_STS, "MTA-STS", xasprintf("_mta-sts.%s", d), "TXT",
		    xasprintf("v=STSv1; id=%s", id),
		    xstrdup("MTA-STS: the id changes with the policy (mta_sts in tern.conf): "
			    "update this record after every policy change"));
		r = add(set, DNSREC_MTA_STS_HOST, "MTA-STS host", xasprintf("mta-sts.%s", d),
			"CNAME", xstrdup(h),
			xasprintf("mta-sts.%s must reach this server's https listener (or give it "
				  "A/AAAA records of this server); the certificate must name it", d));
		r->target = xstrdup(h);
	} else {
		note(set, xstrdup("listen.https is disabled: the MTA-STS policy is not served, so no "
				  "_mta-sts record is listed"));
	}

	/* TLS-RPT (RFC 8460 3) */
	add(set, DNSREC_TLSRPT, "TLS-RPT", xasprintf("_smtp._tls.%s", d), "TXT",
	    xasprintf("v=TLSRPTv1; rua=mailto:tlsrpt@%s", d),
	    xasprintf("TLS-RPT: create the report mailbox first: tern user add tlsrpt@%s", d));

	/* client autoconfiguration (RFC 6186 3, RFC 8314 5.1) */
	add_srv(set, cfg, "SRV submissions", "submissions", LISTENER_SUBMISSIONS);
	add_srv(set, cfg, "SRV submission", "submission", LISTENER_SUBMISSION);
	add_srv(set, cfg, "SRV imaps", "imaps", LISTENER_IMAPS);
	add_srv(set, cfg, "SRV imap", "imap", LISTENER_IMAP);
	add_srv(set, cfg, "SRV pop3s", "pop3s", LISTENER_POP3S);
	add_srv(set, cfg, "SRV pop3", "pop3", LISTENER_POP3);
	r = &set->items[set->count - 6];
	char *first = xasprintf("client autoconfiguration (RFC 6186, RFC 8314): the enabled "
				"listeners%s%s", r->comment != NULL ? "\n" : "",
				r->comment != NULL ? r->comment : "");
	free(r->comment);
	r->comment = first;

	/* TLSA 3 1 1 of the SMTP listener (RFC 7672): DANE-EE, SPKI, SHA-256 */
	if (cfg->port[LISTENER_SMTP] > 0) {
		if (cfg->tls_cert != NULL && dnsrec_tlsa_hash(cfg->tls_cert, hex, &err) == 0) {
			r = add(set, DNSREC_TLSA, "TLSA",
				xasprintf("_%d._tcp.%s", cfg->port[LISTENER_SMTP], h), "TLSA",
				xasprintf("3 1 1 %s", hex),
				xstrdup("DANE (RFC 7672), with the provider of the hostname's zone: "
					"publish only in a DNSSEC-signed zone; it pins the key of "
					"tls.cert, so renew the certificate with the same key"));
			r->port = (unsigned)cfg->port[LISTENER_SMTP];
			r->target = xstrdup(h);
		} else {
			note(set, xasprintf("no TLSA record: cannot read the certificate %s: %s",
					    cfg->tls_cert != NULL ? cfg->tls_cert : "(none)",
					    cfg->tls_cert != NULL ? err : "tls.cert is not set"));
		}
	}

	/* PTR (reverse DNS), set with the provider of each address */
	for (unsigned i = 0; i < cfg->bind_count; i++) {
		struct dns_address a;
		if (!bind_specific(cfg->bind[i], &a))
			continue;
		set->items = xrealloc(set->items, (set->count + 1) * sizeof(*set->items));
		r = &set->items[set->count];
		if (dnsrec_ptr(r, &a, h) == 0)
			set->count++;
	}
	if (any_bind)
		note(set, xasprintf("PTR: ask the provider of each public address of this server to "
				    "set its reverse name to %s (\"tern dns check\" checks the "
				    "addresses %s resolves to)", h, h));
	return 0;
}

/* ---- DKIM ------------------------------------------------------------
 * The published keys of the domain (pending, active, retiring) from the
 * store, one TXT record each, in the text `tern dkim keygen` prints. */
struct dkim_ctx {
	struct dnsrec_set *set;
};

static int dkim_key_cb(void *arg, const struct store_dkim_key *k)
{
	struct dkim_ctx *d = arg;
	enum dkim_key_type type;
	struct buf text;

	if (k->state == STORE_DKIM_RETIRED ||
	    dkim_key_type_from_algorithm(k->algorithm, &type) < 0)
		return 0;
	buf_init(&text, BUF_UNLIMITED);
	dkim_record_text(type, k->public_key, &text);
	add(d->set, DNSREC_DKIM, "DKIM", xasprintf("%s._domainkey.%s", k->selector, d->set->domain),
	    "TXT", buf_steal(&text),
	    xasprintf("DKIM %s key, selector %s: %s", type == DKIM_KEY_ED25519 ? "Ed25519" : "RSA",
		      k->selector, store_dkim_state_name(k->state)));
	return 0;
}

int dnsrec_add_dkim(struct dnsrec_set *set, struct store *store, const char **error_r)
{
	struct dkim_ctx d = { set };

	return store_dkim_keys_list(store, set->domain, dkim_key_cb, &d, error_r);
}

int dnsrec_ptr(struct dnsrec *r, const struct dns_address *addr, const char *hostname)
{
	struct buf name;
	char text[INET6_ADDRSTRLEN];

	memset(r, 0, sizeof(*r));
	buf_init(&name, DNS_NAME_TEXT_MAX);
	if (dns_reverse_name(addr->family, &addr->addr, &name) < 0 ||
	    inet_ntop(addr->family, &addr->addr, text, sizeof(text)) == NULL) {
		buf_free(&name);
		return -1;
	}
	r->kind = DNSREC_PTR;
	r->label = "PTR";
	r->name = buf_steal(&name);
	r->type = "PTR";
	r->value = xstrdup(hostname);
	r->target = xstrdup(hostname);
	r->addr = *addr;
	r->provider = true;
	r->comment = xasprintf("reverse DNS of %s: set it with the provider of the address, "
			       "not in your zone", text);
	return 0;
}

void dnsrec_clear(struct dnsrec *r)
{
	free(r->name);
	free(r->value);
	free(r->comment);
	free(r->target);
	memset(r, 0, sizeof(*r));
}

void dnsrec_set_clear(struct dnsrec_set *set)
{
	for (size_t i = 0; i < set->count; i++)
		dnsrec_clear(&set->items[i]);
	free(set->items);
	for (size_t i = 0; i < set->note_count; i++)
		free(set->notes[i]);
	free(set->notes);
	free(set->domain);
	free(set->hostname);
	memset(set, 0, sizeof(*set));
}

int dnsrec_txt_quote(const char *text, size_t len, struct buf *out)
{
	size_t i = 0;
	int r = 0;

	if (len == 0)
		return buf_append_str(out, "\"\"") < 0 ? -1 : 0;
	while (i < len) {
		/* one <character-string>: 255 bytes of the text (before escaping) */
		size_t end = i + DNSREC_TXT_STRING_MAX < len ? i + DNSREC_TXT_STRING_MAX : len;
		if (i > 0)
			r |= buf_append_str(out, " ");
		r |= buf_append_str(out, "\"");
		for (; i < end; i++) {
			unsigned char c = (unsigned char)text[i];
			if (c == '"' || c == '\\')
				r |= buf_printf(out, "\\%c", c);
			else if (c < 0x20 || c >= 0x7f)
				r |= buf_printf(out, "\\%03u", c);
			else
				r |= buf_append(out, &text[i], 1);
		}
		r |= buf_append_str(out, "\"");
	}
	return r < 0 ? -1 : 0;
}

/* Append host absolute ("." stays ".") */
static int abs_name(struct buf *out, const char *host)
{
	if (strcmp(host, ".") == 0)
		return buf_append_str(out, ".");
	return buf_printf(out, "%s.", host);
}

int dnsrec_zone_line(const struct dnsrec *r, struct buf *out)
{
	int ret = 0;

	ret |= buf_printf(out, "%s. %d IN %s ", r->name, DNSREC_TTL, r->type);
	switch (r->kind) {
	case DNSREC_MX:
		ret |= buf_printf(out, "10 ");
		ret |= abs_name(out, r->target);
		break;
	case DNSREC_SRV:
		if (strcmp(r->target, ".") == 0)
			ret |= buf_append_str(out, "0 0 0 .");
		else {
			ret |= buf_printf(out, "0 1 %u ", r->port);
			ret |= abs_name(out, r->target);
		}
		break;
	case DNSREC_MTA_STS_HOST:
	case DNSREC_PTR:
		ret |= abs_name(out, r->target);
		break;
	case DNSREC_SPF:
	case DNSREC_DKIM:
	case DNSREC_DMARC:
	case DNSREC_MTA_STS:
	case DNSREC_TLSRPT:
		ret |= dnsrec_txt_quote(r->value, strlen(r->value), out);
		break;
	case DNSREC_HOST_ADDR:
	case DNSREC_TLSA:
		ret |= buf_append_str(out, r->value);
		break;
	}
	return ret < 0 ? -1 : 0;
}

int dnsrec_tlsa_hash(const char *path, char hex_r[65], const char **error_r)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	X509 *x;
	FILE *f;
	int n;

	f = fopen(path, "r");
	if (f == NULL) {
		*error_r = "cannot open the file";
		return -1;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL) {
		*error_r = "no PEM certificate in the file";
		return -1;
	}
	n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	X509_free(x);
	if (n <= 0) {
		*error_r = "cannot encode the public key";
		return -1;
	}
	if (EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		OPENSSL_free(der);
		*error_r = "SHA-256 failed";
		return -1;
	}
	OPENSSL_free(der);
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex_r + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* Skip RFC 7489 / RFC 8461 whitespace (SP and HTAB) */
static size_t skip_ws(const char *t, size_t i, size_t len)
{
	while (i < len && (t[i] == ' ' || t[i] == '\t'))
		i++;
	return i;
}

/* Next "tag=value" of a ';'-separated list from *pos; returns 1 with the
 * tag and value slices (whitespace trimmed), 0 at the end, -1 when the
 * part has no '=' or an empty/invalid tag name. */
static int next_tag(const char *t, size_t len, size_t *pos, const char **tag, size_t *tlen,
		    const char **val, size_t *vlen)
{
	size_t i = skip_ws(t, *pos, len), end, eq;

	while (i < len && t[i] == ';')        /* empty parts, e.g. a trailing ';' */
		i = skip_ws(t, i + 1, len);
	if (i >= len)
		return 0;
	for (end = i; end < len && t[end] != ';'; end++)
		;
	*pos = end < len ? end + 1 : end;
	for (eq = i; eq < end && t[eq] != '='; eq++)
		;
	if (eq == end)
		return -1;
	*tag = t + i;
	*tlen = eq - i;
	while (*tlen > 0 && (t[i + *tlen - 1] == ' ' || t[i + *tlen - 1] == '\t'))
		(*tlen)--;
	if (*tlen == 0)
		return -1;
	for (size_t k = 0; k < *tlen; k++)
		if (!isalnum((unsigned char)(*tag)[k]) && (*tag)[k] != '_')
			return -1;
	eq = skip_ws(t, eq + 1, end);
	*val = t + eq;
	*vlen = end - eq;
	while (*vlen > 0 && (t[eq + *vlen - 1] == ' ' || t[eq + *vlen - 1] == '\t'))
		(*vlen)--;
	return 1;
}

static bool slice_is(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

int dnsrec_dmarc_syntax(const char *text, size_t len, const char **error_r)
{
	const char *tag, *val;
	size_t tlen, vlen, pos = 0;
	bool first = true, have_p = false;
	int r;

	if (memchr(text, '\0', len) != NULL) {
		*error_r = "the record holds a NUL byte";
		return -1;
	}
	while ((r = next_tag(text, len, &pos, &tag, &tlen, &val, &vlen)) != 0) {
		if (r < 0) {
			*error_r = "a part is not tag=value";
			return -1;
		}
		if (first) {
			/* RFC 7489 6.4: v must be the first tag, value exactly DMARC1 */
			if (!slice_is(tag, tlen, "v") || vlen != 6 || strncmp(val, "DMARC1", 6) != 0) {
				*error_r = "the record must start with v=DMARC1";
				return -1;
			}
			first = false;
			continue;
		}
		if (slice_is(tag, tlen, "p")) {
			if (!slice_is(val, vlen, "none") && !slice_is(val, vlen, "quarantine") &&
			    !slice_is(val, vlen, "reject")) {
				*error_r = "p= must be none, quarantine or reject";
				return -1;
			}
			have_p = true;
		} else if (slice_is(tag, tlen, "sp")) {
			if (!slice_is(val, vlen, "none") && !slice_is(val, vlen, "quarantine") &&
			    !slice_is(val, vlen, "reject")) {
				*error_r = "sp= must be none, quarantine or reject";
				return -1;
			}
		} else if (slice_is(tag, tlen, "rua") || slice_is(tag, tlen, "ruf")) {
			if (vlen < 7 || strncasecmp(val, "mailto:", 7) != 0) {
				*error_r = "rua= and ruf= take mailto: URIs";
				return -1;
			}
		} else if (slice_is(tag, tlen, "pct")) {
			long n = 0;
			if (vlen == 0 || vlen > 3) {
				*error_r = "pct= must be a number from 0 to 100";
				return -1;
			}
			for (size_t k = 0; k < vlen; k++) {
				if (!isdigit((unsigned char)val[k])) {
					*error_r = "pct= must be a number from 0 to 100";
					return -1;
				}
				n = n * 10 + (val[k] - '0');
			}
			if (n > 100) {
				*error_r = "pct= must be a number from 0 to 100";
				return -1;
			}
		}
	}
	if (first) {
		*error_r = "the record must start with v=DMARC1";
		return -1;
	}
	if (!have_p) {
		*error_r = "the p= tag is missing";
		return -1;
	}
	return 0;
}

int dnsrec_sts_id(const char *text, size_t len, char **id_r, const char **error_r)
{
	const char *tag, *val;
	size_t tlen, vlen, pos = 0;
	char *id = NULL;
	int r;

	*id_r = NULL;
	if (len < 7 || strncmp(text, "v=STSv1", 7) != 0)
		return 0;
	if (len > 7 && text[7] != ';' && text[7] != ' ' && text[7] != '\t')
		return 0;
	if (memchr(text, '\0', len) != NULL) {
		*error_r = "the record holds a NUL byte";
		return -1;
	}
	while ((r = next_tag(text, len, &pos, &tag, &tlen, &val, &vlen)) != 0) {
		if (r < 0) {
			*error_r = "a field is not name=value";
			free(id);
			return -1;
		}
		if (!slice_is(tag, tlen, "id"))
			continue;
		if (id != NULL) {
			*error_r = "more than one id= field";
			free(id);
			return -1;
		}
		/* RFC 8461 3.1: sts-id = 1*32( ALPHA / DIGIT ) */
		bool ok = vlen >= 1 && vlen <= 32;
		for (size_t k = 0; ok && k < vlen; k++)
			ok = isalnum((unsigned char)val[k]) != 0;
		if (!ok) {
			*error_r = "the id must be 1 to 32 letters and digits";
			return -1;
		}
		id = xstrndup(val, vlen);
	}
	if (id == NULL) {
		*error_r = "the id= field is missing";
		return -1;
	}
	*id_r = id;
	return 1;
}
