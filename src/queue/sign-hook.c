/* The signing hook's plumbing (sign-hook.h): registration, the checks on
 * what a hook returns, and the removal of its old fields before a
 * converted message is signed again (the ARC set our sealer added is
 * found and made again in sign-hook-arc.c; sign_hook_downgrade takes the
 * layers off outermost first and puts them back innermost first).
 *
 * Invariants: a message leaves here either unchanged or with well-formed
 * header fields prepended (RFC 5322 2.2: a name of printable ASCII
 * without ':', CRLF line ends, continuation lines starting with WSP, no
 * NUL, no bare CR or LF), all named in the hook's declared list, so
 * sign_hook_signed_prefix finds exactly them again; the fields are
 * prepended, as DKIM (RFC 6376 5.6) and trace fields are.  With no hook
 * registered every entry point returns before touching the message. */
#include "queue/sign-hook.h"

#include "lib/log.h"
#include "mail/downgrade.h"
#include "mail/header.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sign_hook_reg {
	sign_hook_fn *sign;
	sign_hook_seal_fn *seal;
	void *ctx;
	char *fields[SIGN_HOOK_FIELDS_MAX + 1];
};

/* Set at worker start before threads run, read-only afterwards. */
static struct sign_hook_reg hook;

static void hook_clear(void)
{
	for (size_t i = 0; hook.fields[i] != NULL; i++)
		free(hook.fields[i]);
	memset(&hook, 0, sizeof(hook));
}

static bool field_name_ok(const char *n, size_t len)
{
	if (len == 0 || len > 200)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)n[i];
		if (c < 33 || c > 126 || c == ':')
			return false;
	}
	return true;
}

int sign_hook_set(const struct sign_hook *h, const char **error_r)
{
	size_t n = 0;

	if (h == NULL) {
		hook_clear();
		return 0;
	}
	if (h->sign == NULL || h->fields == NULL || h->fields[0] == NULL) {
		*error_r = "a signing hook needs a function and at least one field name";
		return -1;
	}
	while (h->fields[n] != NULL) {
		if (n == SIGN_HOOK_FIELDS_MAX || !field_name_ok(h->fields[n], strlen(h->fields[n]))) {
			*error_r = "a signing hook declares a bad field name or too many";
			return -1;
		}
		n++;
	}
	hook_clear();
	hook.sign = h->sign;
	hook.seal = h->seal;
	hook.ctx = h->ctx;
	for (size_t i = 0; i < n; i++)
		hook.fields[i] = xstrdup(h->fields[i]);
	return 0;
}

bool sign_hook_active(void)
{
	return hook.sign != NULL;
}

static bool declared(const char *name, size_t len)
{
	for (size_t i = 0; hook.fields[i] != NULL; i++)
		if (strlen(hook.fields[i]) == len && strncasecmp(hook.fields[i], name, len) == 0)
			return true;
	return false;
}

/* Is h[0..len) a run of well-formed header fields, each with a declared
 * name?  (See the invariants at the top.) */
static bool output_ok(const char *h, size_t len)
{
	size_t i = 0;

	if (len > SIGN_HOOK_MAX || len < 2 || h[len - 2] != '\r' || h[len - 1] != '\n')
		return false;
	while (i < len) {
		const char *line = h + i;
		const char *lf = memchr(line, '\n', len - i);
		size_t n;
		if (lf == NULL || lf == line || lf[-1] != '\r')
			return false;
		n = (size_t)(lf - line) - 1;    /* without CRLF */
		if (memchr(line, '\0', n) != NULL || memchr(line, '\r', n) != NULL)
			return false;
		if (line[0] == ' ' || line[0] == '\t') {
			if (i == 0)
				return false;   /* a continuation needs a field before it */
		} else {
			const char *colon = memchr(line, ':', n);
			size_t nl;
			if (colon == NULL)
				return false;
			nl = (size_t)(colon - line);
			while (nl > 0 && (line[nl - 1] == ' ' || line[nl - 1] == '\t'))
				nl--;
			if (!field_name_ok(line, nl) || !declared(line, nl))
				return false;
		}
		i += n + 2;
	}
	return true;
}

/* What a hook returned (fields, freed here; valid: its check passed):
 * 0 when it added nothing, 1 with out = fields + data, -1 on malformed
 * fields or when the result is too large. */
static int prepend_fields(struct buf *fields, bool valid, bool sealing, const char *data,
			  size_t len, struct buf *out, const char **error_r)
{
	int ret = 1;

	if (fields->len == 0) {
		ret = 0;
	} else if (!valid) {
		*error_r = sealing ? "the sealing hook returned malformed header fields"
			: "the signing hook returned malformed header fields";
		ret = -1;
	} else {
		buf_reset(out);
		if (buf_append(out, fields->data, fields->len) < 0 ||
		    buf_append(out, data, len) < 0) {
			buf_reset(out);
			*error_r = sealing ? "the sealed message is too large"
				: "the signed message is too large";
			ret = -1;
		}
	}
	buf_free(fields);
	return ret;
}

/* Call the hook; on 1 out = fields + data. */
static int call_hook(const char *domain, const char *data, size_t len, bool resign,
		     const char *log_id, struct buf *out, const char **error_r)
{
	struct sign_hook_request req = {
		.domain = domain, .data = data, .len = len, .resign = resign, .log_id = log_id,
	};
	struct buf fields;
	int ret;

	buf_init(&fields, SIGN_HOOK_MAX + 1);
	ret = hook.sign(hook.ctx, &req, &fields, error_r);
	if (ret < 0) {
		buf_free(&fields);
		return -1;
	}
	return prepend_fields(&fields, output_ok(fields.data, fields.len), false, data, len, out,
			      error_r);
}

int sign_hook_sign(const char *domain, const char *data, size_t len, const char *log_id,
		   struct buf *out, const char **error_r)
{
	if (hook.sign == NULL)
		return 0;
	return call_hook(domain, data, len, false, log_id, out, error_r);
}

/* Sealer output: header lines ending in CRLF, no NUL, no bare CR or LF. */
static bool seal_output_ok(const char *p, size_t len)
{
	if (len < 2 || p[len - 2] != '\r' || p[len - 1] != '\n')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\0')
			return false;
		if (p[i] == '\r' && (i + 1 >= len || p[i + 1] != '\n'))
			return false;
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			return false;
	}
	return true;
}

int sign_hook_seal(const char *domain, const char *data, size_t len,
		   const char *auth_results, struct buf *out, const char **error_r)
{
	struct buf fields;

	if (hook.seal == NULL)
		return 0;
	buf_init(&fields, SIGN_HOOK_MAX + 1);
	if (hook.seal(hook.ctx, domain, data, len, auth_results, &fields, error_r) < 0) {
		buf_free(&fields);
		return -1;
	}
	return prepend_fields(&fields, seal_output_ok(fields.data, fields.len), true, data, len,
			      out, error_r);
}

size_t sign_hook_signed_prefix(const char *data, size_t len)
{
	struct header_iter it;
	struct header_field f;
	size_t end = 0;

	if (hook.sign == NULL)
		return 0;
	header_iter_init(&it, data, len);
	while (header_iter_next(&it, &f) == 1 && declared(f.name.p, f.name.len)) {
		size_t off = (size_t)(f.raw.p - data);
		if (off != end)
			break;      /* not contiguous from the top */
		end = off + f.raw.len;
	}
	return end;
}

int sign_hook_resign(const char *domain, const char *data, size_t len, const char *log_id,
		     struct buf *out, const char **error_r)
{
	size_t skip = sign_hook_signed_prefix(data, len);
	int ret;

	if (skip == 0)
		return 0;
	ret = call_hook(domain, data + skip, len - skip, true, log_id, out, error_r);
	if (ret == 1)
		return 1;
	/* unsigned rather than carrying a signature that no longer verifies */
	buf_reset(out);
	if (buf_append(out, data + skip, len - skip) < 0)
		*error_r = "the message is too large";
	return ret < 0 || out->len != len - skip ? -1 : 2;
}

int sign_hook_downgrade(const char *domain, const char *data, size_t len, const char *log_id,
			struct buf *out, const char **error_r)
{
	struct buf conv, resigned;
	struct sign_hook_arc_set set;
	const char *error = NULL, *body;
	size_t arc_len = 0, body_len;
	int ret;

	buf_init(&conv, out->max);
	if (mail_downgrade_7bit(data, len, &conv, error_r) < 0) {
		buf_free(&conv);
		return -1;
	}
	body = buf_cstr(&conv);
	body_len = conv.len;
	memset(&set, 0, sizeof(set));
	/* outermost first: our ARC set, whose message signature covers any
	 * DKIM-Signature under it, comes off first and goes back on last */
	if (hook.seal != NULL)
		arc_len = sign_hook_arc_top(body, body_len, &set);
	body += arc_len;
	body_len -= arc_len;
	buf_init(&resigned, out->max);
	ret = hook.sign != NULL ? sign_hook_resign(domain, body, body_len, log_id, &resigned,
						   &error) : 0;
	if (ret < 0) {
		log_error("queue", "event=resign_failed id=%s domain=%s error=%s",
			  log_id != NULL ? log_id : "", log_quote(domain), log_quote(error));
	} else if (ret > 0) {
		log_info("queue", "event=resigned id=%s domain=%s signed=%s",
			 log_id != NULL ? log_id : "", log_quote(domain), ret == 1 ? "yes" : "no");
	}
	if (ret != 0) {
		body = buf_cstr(&resigned);
		body_len = resigned.len;
	}
	if (arc_len > 0) {
		error = NULL;
		if (sign_hook_arc_reseal(&set, body, body_len, out, &error) == 0) {
			log_info("queue", "event=arc_resealed id=%s domain=%s instance=%u cv=%s",
				 log_id != NULL ? log_id : "", log_quote(set.domain), set.instance,
				 set.cv_pass ? "pass" : "none");
		} else {
			/* sent without it: a set that no longer verifies makes the
			 * next hop's whole chain fail */
			log_error("queue", "event=arc_reseal_failed id=%s domain=%s instance=%u "
				  "error=%s", log_id != NULL ? log_id : "", log_quote(set.domain),
				  set.instance, log_quote(error));
			arc_len = 0;
		}
	}
	sign_hook_arc_set_free(&set);
	if (arc_len == 0) {
		buf_reset(out);
		if (buf_append(out, body, body_len) < 0) {
			buf_free(&resigned);
			buf_free(&conv);
			*error_r = "the converted message is too large";
			return -1;
		}
	}
	buf_free(&resigned);
	buf_free(&conv);
	return 0;
}
