/* DMARC aggregate reports (RFC 7489 7.2, appendix C): building the XML
 * report we send and parsing the ones we receive.
 *
 * Invariants:
 *  - The builder escapes every text it writes (&, <, >, ", ') and refuses
 *    control characters, so the document is always well-formed.
 *  - The parser never lets libxml2 reach the network (XML_PARSE_NONET),
 *    never substitutes entities (no XML_PARSE_NOENT; text is read from
 *    text and CDATA nodes only, never through entity references), never
 *    loads a DTD and refuses a document that declares one; decompressed
 *    input is capped at DMARC_REPORT_XML_MAX bytes (zip bombs stop there),
 *    records at DMARC_REPORT_RECORDS_MAX and each text field at
 *    DMARC_REPORT_TEXT_MAX bytes, with control characters made spaces.
 *  - Nothing a report holds can abort the process. */
#include "mailauth/dmarc-report.h"

#include "mail/mime.h"
#include "mail/mime-decode.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistr.h>
#include <zip.h>
#include <zlib.h>

/* ---- building (RFC 7489 appendix C) ---- */

static bool text_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return false;
	return true;
}

static void xml_text(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80) {
			/* UTF-8 kept as it is; a stray byte becomes '?' so the
			 * document stays well-formed */
			ucs4_t uc;
			int n = u8_mbtoucr(&uc, (const uint8_t *)s, strlen(s));
			if (n > 0) {
				buf_append(out, s, (size_t)n);
				s += n - 1;
			} else {
				buf_append(out, "?", 1);
			}
			continue;
		}
		switch (*s) {
		case '&': buf_append_str(out, "&amp;"); break;
		case '<': buf_append_str(out, "&lt;"); break;
		case '>': buf_append_str(out, "&gt;"); break;
		case '"': buf_append_str(out, "&quot;"); break;
		case '\'': buf_append_str(out, "&apos;"); break;
		default: buf_append(out, s, 1);
		}
	}
}

/* <name>text</name> at the given indentation */
static void xml_elem(struct buf *out, int indent, const char *name, const char *text)
{
	buf_printf(out, "%*s<%s>", indent, "", name);
	xml_text(out, text);
	buf_printf(out, "</%s>\n", name);
}

static int eval_cmp(const void *a, const void *b)
{
	const struct dmarc_report_eval *x = *(const struct dmarc_report_eval *const *)a;
	const struct dmarc_report_eval *y = *(const struct dmarc_report_eval *const *)b;
	int c;

	if ((c = strcmp(x->source_ip, y->source_ip)) != 0 ||
	    (c = strcmp(x->disposition, y->disposition)) != 0 ||
	    (c = (int)x->dkim_aligned - (int)y->dkim_aligned) != 0 ||
	    (c = (int)x->spf_aligned - (int)y->spf_aligned) != 0 ||
	    (c = strcmp(x->header_from, y->header_from)) != 0 ||
	    (c = strcmp(x->envelope_from, y->envelope_from)) != 0 ||
	    (c = strcmp(x->dkim, y->dkim)) != 0 ||
	    (c = strcmp(x->spf_domain, y->spf_domain)) != 0)
		return c;
	return strcmp(x->spf_result, y->spf_result);
}

/* One <dkim> per "domain:result" word of list. */
static void xml_dkim(struct buf *out, const char *list)
{
	const char *p = list;

	while (*p != '\0') {
		size_t n = strcspn(p, " ");
		const char *colon = memrchr(p, ':', n);

		if (n > 0 && colon != NULL) {
			char *d = xstrndup(p, (size_t)(colon - p));
			char *r = xstrndup(colon + 1, n - (size_t)(colon - p) - 1);
			buf_append_str(out, "      <dkim>\n");
			xml_elem(out, 8, "domain", d);
			xml_elem(out, 8, "result", r);
			buf_append_str(out, "      </dkim>\n");
			free(d);
			free(r);
		}
		p += n;
		while (*p == ' ')
			p++;
	}
}

static void xml_record(struct buf *out, const struct dmarc_report_eval *e, int64_t count)
{
	buf_append_str(out, "  <record>\n    <row>\n");
	xml_elem(out, 6, "source_ip", e->source_ip);
	buf_printf(out, "      <count>%lld</count>\n", (long long)count);
	buf_append_str(out, "      <policy_evaluated>\n");
	xml_elem(out, 8, "disposition", e->disposition);
	xml_elem(out, 8, "dkim", e->dkim_aligned ? "pass" : "fail");
	xml_elem(out, 8, "spf", e->spf_aligned ? "pass" : "fail");
	buf_append_str(out, "      </policy_evaluated>\n    </row>\n    <identifiers>\n");
	xml_elem(out, 6, "envelope_from", e->envelope_from);
	xml_elem(out, 6, "header_from", e->header_from);
	buf_append_str(out, "    </identifiers>\n    <auth_results>\n");
	xml_dkim(out, e->dkim);
	buf_append_str(out, "      <spf>\n");
	xml_elem(out, 8, "domain", e->spf_domain);
	xml_elem(out, 8, "scope", "mfrom");
	xml_elem(out, 8, "result", e->spf_result);
	buf_append_str(out, "      </spf>\n    </auth_results>\n  </record>\n");
}

int dmarc_report_xml(const struct dmarc_report_out *r, struct buf *out, const char **error_r)
{
	const struct dmarc_report_eval **v;
	size_t start = out->len;

	if (!text_ok(r->org_name) || !text_ok(r->email) || !text_ok(r->report_id) ||
	    !text_ok(r->policy_domain)) {
		*error_r = "a report field holds a control character";
		return -1;
	}
	for (size_t i = 0; i < r->count; i++) {
		const struct dmarc_report_eval *e = &r->evals[i];
		if (!text_ok(e->source_ip) || !text_ok(e->header_from) ||
		    !text_ok(e->envelope_from) || !text_ok(e->spf_domain) ||
		    !text_ok(e->spf_result) || !text_ok(e->dkim) || !text_ok(e->disposition)) {
			*error_r = "an evaluation field holds a control character";
			return -1;
		}
	}
	buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n");
	buf_append_str(out, "  <version>1.0</version>\n  <report_metadata>\n");
	xml_elem(out, 4, "org_name", r->org_name);
	xml_elem(out, 4, "email", r->email);
	xml_elem(out, 4, "report_id", r->report_id);
	buf_printf(out, "    <date_range>\n      <begin>%lld</begin>\n      <end>%lld</end>\n"
		   "    </date_range>\n  </report_metadata>\n", (long long)r->begin,
		   (long long)r->end);
	buf_append_str(out, "  <policy_published>\n");
	xml_elem(out, 4, "domain", r->policy_domain);
	xml_elem(out, 4, "adkim", r->adkim);
	xml_elem(out, 4, "aspf", r->aspf);
	xml_elem(out, 4, "p", r->p);
	xml_elem(out, 4, "sp", r->sp);
	buf_printf(out, "    <pct>%u</pct>\n  </policy_published>\n", r->pct);
	/* RFC 7489 7.2.1.1: one record per distinct result set, with its count */
	v = xcalloc(r->count ? r->count : 1, sizeof(*v));
	for (size_t i = 0; i < r->count; i++)
		v[i] = &r->evals[i];
	qsort(v, r->count, sizeof(*v), eval_cmp);
	for (size_t i = 0; i < r->count;) {
		int64_t n = 0;
		size_t k = i;
		while (k < r->count && eval_cmp(&v[i], &v[k]) == 0)
			n += v[k++]->count;
		xml_record(out, v[i], n);
		i = k;
	}
	free(v);
	if (buf_append_str(out, "</feedback>\n") < 0) {
		out->len = start;
		*error_r = "the report is too large";
		return -1;
	}
	return 0;
}

/* ---- decompression ---- */

static int gunzip(const unsigned char *data, size_t len, struct buf *out, const char **error_r)
{
	z_stream z = { 0 };
	unsigned char chunk[16384];
	int rc;

	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
		*error_r = "cannot start gzip decompression";
		return -1;
	}
	z.next_in = (unsigned char *)data;
	z.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		rc = inflate(&z, Z_NO_FLUSH);
		if (rc != Z_OK && rc != Z_STREAM_END) {
			inflateEnd(&z);
			*error_r = "corrupt gzip data";
			return -1;
		}
		if (out->len + (sizeof(chunk) - z.avail_out) > DMARC_REPORT_XML_MAX ||
		    buf_append(out, chunk, sizeof(chunk) - z.avail_out) < 0) {
			inflateEnd(&z);
			*error_r = "the report is too large once decompressed";
			return -1;
		}
		if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
			inflateEnd(&z);
			*error_r = "truncated gzip data";
			return -1;
		}
	} while (rc != Z_STREAM_END);
	inflateEnd(&z);
	return 0;
}

static bool name_is_xml(const char *name)
{
	size_t n = name != NULL ? strlen(name) : 0;

	return n >= 4 && strcasecmp(name + n - 4, ".xml") == 0;
}

static int unzip(const void *data, size_t len, struct buf *out, const char **error_r)
{
	zip_error_t ze;
	zip_source_t *src;
	zip_t *za;
	zip_int64_t n, pick = -1;
	zip_file_t *f;
	char chunk[16384];
	int ret = -1;

	zip_error_init(&ze);
	if ((src = zip_source_buffer_create(data, len, 0, &ze)) == NULL) {
		zip_error_fini(&ze);
		*error_r = "cannot read the zip archive";
		return -1;
	}
	if ((za = zip_open_from_source(src, ZIP_RDONLY, &ze)) == NULL) {
		zip_source_free(src);
		zip_error_fini(&ze);
		*error_r = "not a readable zip archive";
		return -1;
	}
	n = zip_get_num_entries(za, 0);
	for (zip_int64_t i = 0; i < n && i < 1000; i++) {
		const char *name = zip_get_name(za, (zip_uint64_t)i, 0);
		if (name == NULL || (name[0] != '\0' && name[strlen(name) - 1] == '/'))
			continue;
		if (pick < 0)
			pick = i;
		if (name_is_xml(name)) {
			pick = i;
			break;
		}
	}
	if (pick < 0) {
		*error_r = "the zip archive holds no file";
		goto out;
	}
	if ((f = zip_fopen_index(za, (zip_uint64_t)pick, 0)) == NULL) {
		*error_r = "cannot open the zip member (encrypted or unsupported)";
		goto out;
	}
	for (;;) {
		zip_int64_t got = zip_fread(f, chunk, sizeof(chunk));
		if (got < 0) {
			*error_r = "corrupt zip member";
			break;
		}
		if (got == 0) {
			ret = 0;
			break;
		}
		if (out->len + (size_t)got > DMARC_REPORT_XML_MAX ||
		    buf_append(out, chunk, (size_t)got) < 0) {
			*error_r = "the report is too large once decompressed";
			break;
		}
	}
	zip_fclose(f);
out:
	zip_close(za);   /* frees src too */
	zip_error_fini(&ze);
	return ret;
}

/* ---- XML ---- */

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
	xmlInitParser();
}

static bool is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static const xmlNode *child(const xmlNode *n, const char *name)
{
	for (const xmlNode *c = n != NULL ? n->children : NULL; c != NULL; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

/* The direct text of n (text and CDATA children only: entity references
 * are never followed), trimmed, controls made spaces, cut at
 * DMARC_REPORT_TEXT_MAX; "" when n is NULL.  malloc'd. */
static char *text_of(const xmlNode *n)
{
	struct buf b;
	char *s, *e;

	buf_init(&b, DMARC_REPORT_TEXT_MAX);
	for (const xmlNode *c = n != NULL ? n->children : NULL; c != NULL; c = c->next) {
		if ((c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) ||
		    c->content == NULL)
			continue;
		size_t l = strlen((const char *)c->content);
		if (b.len + l > DMARC_REPORT_TEXT_MAX)
			l = DMARC_REPORT_TEXT_MAX - b.len;
		buf_append(&b, c->content, l);
	}
	s = buf_steal(&b);
	for (char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	for (e = s + strlen(s); e > s && e[-1] == ' '; e--)
		;
	*e = '\0';
	e = s;
	while (*e == ' ')
		e++;
	memmove(s, e, strlen(e) + 1);
	return s;
}

static char *text_at(const xmlNode *n, const char *a, const char *b)
{
	const xmlNode *c = child(n, a);

	return text_of(b != NULL ? child(c, b) : c);
}

static int64_t number_of(const xmlNode *n)
{
	char *s = text_of(n), *end;
	long long v = strtoll(s, &end, 10);

	if (end == s || *end != '\0' || v < 0)
		v = 0;
	free(s);
	return v;
}

static void row_from(const xmlNode *rec, struct dmarc_report_row *w)
{
	const xmlNode *row = child(rec, "row"), *pe = child(row, "policy_evaluated");
	const xmlNode *auth = child(rec, "auth_results");

	w->source_ip = text_at(row, "source_ip", NULL);
	w->count = number_of(child(row, "count"));
	w->disposition = text_at(pe, "disposition", NULL);
	w->eval_dkim = text_at(pe, "dkim", NULL);
	w->eval_spf = text_at(pe, "spf", NULL);
	w->header_from = text_at(rec, "identifiers", "header_from");
	w->dkim_result = NULL;
	w->spf_result = NULL;
	for (const xmlNode *c = auth != NULL ? auth->children : NULL; c != NULL; c = c->next) {
		if (is(c, "dkim")) {
			char *r = text_at(c, "result", NULL);
			if (w->dkim_result == NULL || strcmp(r, "pass") == 0) {
				free(w->dkim_result);
				w->dkim_result = r;
			} else {
				free(r);
			}
		} else if (is(c, "spf") && w->spf_result == NULL) {
			w->spf_result = text_at(c, "result", NULL);
		}
	}
	if (w->dkim_result == NULL)
		w->dkim_result = xstrdup("none");
	if (w->spf_result == NULL)
		w->spf_result = xstrdup("none");
}

static int parse_xml(const char *xml, size_t len, struct dmarc_report_in *r, const char **error_r)
{
	xmlDoc *doc;
	const xmlNode *root, *meta, *range;
	size_t alloc = 0;

	if (len > DMARC_REPORT_XML_MAX || len > INT32_MAX) {
		*error_r = "the report is too large";
		return -1;
	}
	pthread_once(&xml_once, xml_init);
	/* no NOENT (entities stay references), no DTDLOAD, NONET: nothing is
	 * fetched or expanded */
	doc = xmlReadMemory(xml, (int)len, "report.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
			    XML_PARSE_NOBLANKS);
	if (doc == NULL) {
		*error_r = "not well-formed XML";
		return -1;
	}
	if (doc->intSubset != NULL || doc->extSubset != NULL) {
		xmlFreeDoc(doc);
		*error_r = "the report declares a DTD (refused)";
		return -1;
	}
	root = xmlDocGetRootElement(doc);
	if (root == NULL || !is(root, "feedback")) {
		xmlFreeDoc(doc);
		*error_r = "not a DMARC aggregate report (no <feedback>)";
		return -1;
	}
	meta = child(root, "report_metadata");
	range = child(meta, "date_range");
	r->org_name = text_at(meta, "org_name", NULL);
	r->email = text_at(meta, "email", NULL);
	r->report_id = text_at(meta, "report_id", NULL);
	r->begin = number_of(child(range, "begin"));
	r->end = number_of(child(range, "end"));
	r->domain = text_at(root, "policy_published", "domain");
	for (const xmlNode *c = root->children; c != NULL; c = c->next) {
		if (!is(c, "record"))
			continue;
		if (r->count == DMARC_REPORT_RECORDS_MAX)
			break;
		if (r->count == alloc) {
			alloc = alloc ? alloc * 2 : 16;
			r->rows = xrealloc(r->rows, alloc * sizeof(*r->rows));
		}
		row_from(c, &r->rows[r->count++]);
	}
	xmlFreeDoc(doc);
	if (r->org_name[0] == '\0' || r->report_id[0] == '\0' || r->domain[0] == '\0') {
		*error_r = "the report lacks org_name, report_id or the policy domain";
		return -1;
	}
	return 0;
}

int dmarc_report_parse(const void *data, size_t len, struct dmarc_report_in *r,
		       const char **error_r)
{
	const unsigned char *d = data;
	struct buf x;
	int rc;

	memset(r, 0, sizeof(*r));
	if (len >= 2 && d[0] == 0x1f && d[1] == 0x8b) {
		buf_init(&x, DMARC_REPORT_XML_MAX);
		rc = gunzip(d, len, &x, error_r);
	} else if (len >= 4 && memcmp(d, "PK\003\004", 4) == 0) {
		buf_init(&x, DMARC_REPORT_XML_MAX);
		rc = unzip(d, len, &x, error_r);
	} else {
		return (rc = parse_xml(data, len, r, error_r)) < 0 ? (dmarc_report_clear(r), -1) : 0;
	}
	if (rc == 0)
		rc = parse_xml(x.data != NULL ? x.data : "", x.len, r, error_r);
	buf_free(&x);
	if (rc < 0)
		dmarc_report_clear(r);
	return rc;
}

void dmarc_report_clear(struct dmarc_report_in *r)
{
	for (size_t i = 0; i < r->count; i++) {
		struct dmarc_report_row *w = &r->rows[i];
		free(w->source_ip);
		free(w->disposition);
		free(w->eval_dkim);
		free(w->eval_spf);
		free(w->header_from);
		free(w->dkim_result);
		free(w->spf_result);
	}
	free(r->rows);
	free(r->org_name);
	free(r->email);
	free(r->report_id);
	free(r->domain);
	memset(r, 0, sizeof(*r));
}

/* ---- a report attached to a mail ---- */

static bool part_is_report(const struct mime_part *p)
{
	static const char *const types[] = {
		"application/gzip", "application/x-gzip", "application/zip",
		"application/x-zip-compressed", "application/x-zip", "text/xml",
		"application/xml",
	};
	const char *name;
	size_t n;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		size_t tl = strcspn(types[i], "/");
		if (strlen(p->type) == tl && strncmp(p->type, types[i], tl) == 0 &&
		    strcmp(p->subtype, types[i] + tl + 1) == 0)
			return true;
	}
	name = mime_param_get(p->disp_params, p->n_disp_params, "filename");
	if (name == NULL)
		name = mime_param_get(p->params, p->n_params, "name");
	n = name != NULL ? strlen(name) : 0;
	return n > 4 && (strcasecmp(name + n - 4, ".xml") == 0 ||
			 strcasecmp(name + n - 3, ".gz") == 0 ||
			 strcasecmp(name + n - 4, ".zip") == 0);
}

static const struct mime_part *find_report(const struct mime_part *p, unsigned depth)
{
	if (depth > MIME_MAX_DEPTH)
		return NULL;
	if (p->flags & MIME_PART_OPAQUE)
		return NULL;
	if (p->children == NULL)
		return part_is_report(p) ? p : NULL;
	for (const struct mime_part *c = p->children; c != NULL; c = c->next) {
		const struct mime_part *f = find_report(c, depth + 1);
		if (f != NULL)
			return f;
	}
	return NULL;
}

int dmarc_report_from_message(const char *msg, size_t len, struct buf *out,
			      const char **error_r)
{
	struct mime_part *root = NULL;
	const struct mime_part *p;
	bool invalid = false;
	int rc;

	if (mime_parse(msg, len, &root, error_r) < 0)
		return -1;
	if ((p = find_report(root, 0)) == NULL) {
		mime_part_free(&root);
		*error_r = "the message has no report attached";
		return -1;
	}
	rc = mime_decode_body(mime_encoding_parse(p->encoding), msg + p->body_offset,
			      p->body_size, out, &invalid);
	mime_part_free(&root);
	if (rc < 0)
		*error_r = "the attached report is too large";
	return rc;
}
