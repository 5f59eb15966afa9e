/* Importing the DMARC aggregate reports others send us (RFC 7489 7.2,
 * queue/dmarcrep-import.h): the code `tern dmarc import` and the server
 * share, the choice of the report mailboxes, and the periodic scan of
 * their INBOX in the server.
 *
 * Invariants:
 *  - nothing here runs on an event loop: a pass blocks on store reads,
 *    file reads and the commit of each report (store_dmarc_import waits);
 *    the service runs passes on a one-thread pool, at most one at a time;
 *  - messages are only read: never flagged, moved or removed, so the
 *    administrator still finds every report in the mailbox;
 *  - a report counts once: the store recognises org_name + report_id
 *    (RFC 7489 7.2.2 makes report_id unique per reporter), so a rescan
 *    after a restart, or the same report mailed twice, adds nothing; and
 *    a report older than dmarc_reports.keep_days is not kept, so a rescan
 *    does not bring back what the daily pruning removed;
 *  - where a pass stopped in each report mailbox (its UIDVALIDITY and
 *    the next UID) is kept in the store (store/dmarc-import.h), written
 *    after a pass that moved it and read by the first pass of an
 *    importer, so a restart goes on where the last server stopped; a
 *    changed UIDVALIDITY (RFC 9051 2.3.1.1: the UIDs mean something else)
 *    starts the mailbox again from UID 1, and the position of a mailbox
 *    that is no longer a report mailbox, or is gone, is forgotten;
 *  - bounded work: a message over DMARCREP_IMPORT_MAX bytes is not read,
 *    a pass reads at most DMARCREP_IMPORT_PASS_MESSAGES messages and
 *    DMARCREP_IMPORT_PASS_BYTES bytes, and looks at no more than
 *    DMARCREP_IMPORT_MAX_MAILBOXES mailboxes;
 *  - report fields reach the log only through log_quote(), and the store
 *    only as the parser (mailauth/dmarc-report.h) cleaned them. */
#include "queue/dmarcrep-import.h"

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/threadpool.h"
#include "mailauth/dmarc-report.h"
#include "store/dmarc.h"
#include "store/dmarc-import.h"
#include "store/store.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- one report ---- */

/* The report itself (gzip, zip or XML, maybe after a UTF-8 BOM) rather
 * than a mail carrying it? */
static bool looks_like_report(const unsigned char *d, size_t len)
{
	size_t i = 0;

	if (len >= 2 && d[0] == 0x1f && d[1] == 0x8b)
		return true;
	if (len >= 4 && memcmp(d, "PK\003\004", 4) == 0)
		return true;
	if (len >= 3 && memcmp(d, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < len && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n'))
		i++;
	return i < len && d[i] == '<';
}

int64_t dmarcrep_import_not_before(const struct config *cfg, int64_t now)
{
	int64_t today = now / 86400;

	return (today - (int64_t)cfg->dmarc_reports.keep_days) * 86400;
}

int dmarcrep_import_bytes(struct store *store, const void *data, size_t len,
			  int64_t not_before, struct dmarcrep_import_info *info_r,
			  const char **error_r)
{
	const struct buf *rep;
	struct buf in = { .data = (char *)data, .len = len }, att;
	struct dmarc_report_in r;
	int rc;

	memset(info_r, 0, sizeof(*info_r));
	buf_init(&att, DMARCREP_IMPORT_MAX);
	rep = &in;
	if (!looks_like_report(data, len)) {
		if (dmarc_report_from_message(len > 0 ? data : "", len, &att, error_r) < 0) {
			buf_free(&att);
			return DMARCREP_IMPORT_NOT_REPORT;
		}
		rep = &att;
	}
	rc = dmarc_report_parse(buf_cstr(rep), rep->len, &r, error_r);
	buf_free(&att);
	if (rc < 0)
		return DMARCREP_IMPORT_FAILED;
	if (r.end < not_before) {
		*error_r = "the report ended before the days kept (dmarc_reports.keep_days)";
		dmarc_report_clear(&r);
		return DMARCREP_IMPORT_TOO_OLD;
	}
	struct store_dmarc_row *rows = xcalloc(r.count ? r.count : 1, sizeof(*rows));
	for (size_t i = 0; i < r.count; i++) {
		const struct dmarc_report_row *w = &r.rows[i];
		rows[i] = (struct store_dmarc_row){
			.source_ip = w->source_ip, .count = w->count, .disposition = w->disposition,
			.eval_dkim = w->eval_dkim, .eval_spf = w->eval_spf,
			.header_from = w->header_from, .dkim_result = w->dkim_result,
			.spf_result = w->spf_result,
		};
	}
	struct store_dmarc_report sr = {
		.org_name = r.org_name, .email = r.email, .report_id = r.report_id,
		.domain = r.domain, .date_begin = r.begin, .date_end = r.end,
		.rows = rows, .count = r.count,
	};
	rc = store_dmarc_import(store, &sr, error_r);
	free(rows);
	if (rc >= 0) {
		info_r->org_name = xstrdup(r.org_name);
		info_r->report_id = xstrdup(r.report_id);
		info_r->domain = xstrdup(r.domain);
		info_r->records = r.count;
	}
	dmarc_report_clear(&r);
	return rc < 0 ? DMARCREP_IMPORT_FAILED : rc;
}

void dmarcrep_import_info_clear(struct dmarcrep_import_info *info)
{
	free(info->org_name);
	free(info->report_id);
	free(info->domain);
	memset(info, 0, sizeof(*info));
}

int dmarcrep_import_read(int fd, char **data_r, size_t *len_r, const char **error_r)
{
	struct buf in;

	buf_init(&in, DMARCREP_IMPORT_MAX);
	for (;;) {
		char chunk[65536];
		ssize_t got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			*error_r = "read failed";
			buf_free(&in);
			return -1;
		}
		if (got == 0)
			break;
		if (buf_append(&in, chunk, (size_t)got) < 0) {
			*error_r = "larger than 64 MiB";
			buf_free(&in);
			return -1;
		}
	}
	*len_r = in.len;
	*data_r = buf_steal(&in);
	return 0;
}

/* ---- the report mailboxes ---- */

char *dmarcrep_import_default_address(const char *domain)
{
	return xasprintf("dmarc-reports@%s", domain);
}

struct mailboxes_ctx {
	struct store *store;
	const struct config *cfg;
	int (*cb)(void *ctx, int64_t user_id, const char *address);
	void (*skipped)(void *ctx, const char *address);
	void *ctx;
	int64_t *seen;               /* user ids already passed to cb */
	size_t seen_count;
	int stop;                    /* cb returned non-zero, or the limit */
	const char *error;
};

static int first_alias(void *ctx, const struct store_alias *a)
{
	(void)a;
	*(bool *)ctx = true;
	return 1;
}

/* cb for each local user address reaches, each user once */
static void offer(struct mailboxes_ctx *c, const char *address, bool configured)
{
	struct store_rcpt r = { 0 };
	const char *sep = c->cfg->subaddress_separator != NULL ? c->cfg->subaddress_separator : "";
	size_t found = 0;

	if (store_rcpt_resolve(c->store, address, sep, &r, &c->error) < 0) {
		c->stop = -1;
		return;
	}
	for (size_t i = 0; r.kind == STORE_RCPT_LOCAL && i < r.user_count && c->stop == 0; i++) {
		bool dup = false;
		found++;
		for (size_t k = 0; k < c->seen_count && !dup; k++)
			dup = c->seen[k] == r.users[i].user_id;
		if (dup)
			continue;
		if (c->seen_count >= DMARCREP_IMPORT_MAX_MAILBOXES) {
			c->stop = 1;
			break;
		}
		c->seen[c->seen_count++] = r.users[i].user_id;
		if (c->cb(c->ctx, r.users[i].user_id, r.users[i].address) != 0)
			c->stop = 1;
	}
	if (found == 0 && configured && c->skipped != NULL)
		c->skipped(c->ctx, address);
	store_rcpt_clear(&r);
}

struct names {
	char **v;
	size_t n, cap;
};

static int add_domain(void *ctx, const struct store_domain *d)
{
	struct names *l = ctx;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = xstrdup(d->name);
	return l->n >= DMARCREP_IMPORT_MAX_MAILBOXES;
}

/* The default address of domain, when it is a user or an alias of its
 * own: a catch-all or a subaddress would make some person's INBOX a
 * report mailbox */
static void domain_mailbox(struct mailboxes_ctx *c, const char *domain)
{
	char *address = dmarcrep_import_default_address(domain);
	struct store_user u = { 0 };
	bool alias = false;
	int rc;

	rc = store_user_get(c->store, address, &u, &c->error);
	store_user_clear(&u);
	if (rc == 0)
		rc = store_alias_list(c->store, address, first_alias, &alias, &c->error);
	if (rc < 0)
		c->stop = -1;
	else if (rc > 0 || alias)
		offer(c, address, false);
	free(address);
}

int dmarcrep_import_mailboxes(struct store *store, const struct config *cfg,
			      int (*cb)(void *ctx, int64_t user_id, const char *address),
			      void (*skipped)(void *ctx, const char *address), void *ctx,
			      const char **error_r)
{
	struct mailboxes_ctx c = {
		.store = store, .cfg = cfg, .cb = cb, .skipped = skipped, .ctx = ctx,
		.seen = xcalloc(DMARCREP_IMPORT_MAX_MAILBOXES, sizeof(int64_t)),
	};
	struct names domains = { 0 };

	/* the listing ends before anything else reads or waits for a commit */
	if (store_domain_list(store, add_domain, &domains, &c.error) < 0)
		c.stop = -1;
	for (size_t i = 0; i < domains.n && c.stop == 0; i++)
		domain_mailbox(&c, domains.v[i]);
	for (unsigned i = 0; i < cfg->dmarc_reports.import_address_count && c.stop == 0; i++)
		offer(&c, cfg->dmarc_reports.import_addresses[i], true);
	for (size_t i = 0; i < domains.n; i++)
		free(domains.v[i]);
	free(domains.v);
	free(c.seen);
	if (c.stop < 0) {
		*error_r = c.error != NULL ? c.error : "store error";
		return -1;
	}
	return 0;
}

/* ---- the scanner ---- */

struct seen_mailbox {
	int64_t mailbox_id;
	uint32_t uidvalidity;
	uint32_t next_uid;           /* the first UID not looked at yet */
	bool present;                /* found in this pass */
	bool dirty;                  /* differs from what the store has */
	bool stored;                 /* the store has a position for it */
};

struct dmarcrep_importer {
	struct store *store;
	const struct config *cfg;
	struct seen_mailbox *boxes;
	size_t box_count, box_cap;
	atomic_bool *stopping;       /* the service's flag, or NULL */
	bool loaded;                 /* the stored positions were read */
};

struct dmarcrep_importer *dmarcrep_importer_new(struct store *store, const struct config *cfg)
{
	struct dmarcrep_importer *imp = xcalloc(1, sizeof(*imp));

	imp->store = store;
	imp->cfg = cfg;
	return imp;
}

void dmarcrep_importer_free(struct dmarcrep_importer **impp)
{
	struct dmarcrep_importer *imp = *impp;

	if (imp == NULL)
		return;
	free(imp->boxes);
	free(imp);
	*impp = NULL;
}

static struct seen_mailbox *seen_get(struct dmarcrep_importer *imp, int64_t id,
				     uint32_t uidvalidity)
{
	struct seen_mailbox *b = NULL;

	for (size_t i = 0; i < imp->box_count && b == NULL; i++)
		if (imp->boxes[i].mailbox_id == id)
			b = &imp->boxes[i];
	if (b == NULL) {
		if (imp->box_count == imp->box_cap) {
			imp->box_cap = imp->box_cap ? imp->box_cap * 2 : 16;
			imp->boxes = xrealloc(imp->boxes, imp->box_cap * sizeof(*imp->boxes));
		}
		b = &imp->boxes[imp->box_count++];
		*b = (struct seen_mailbox){ .mailbox_id = id, .uidvalidity = uidvalidity,
					    .next_uid = 1 };
	}
	if (b->uidvalidity != uidvalidity) {
		/* the mailbox was rebuilt: its UIDs mean something else now */
		b->uidvalidity = uidvalidity;
		b->next_uid = 1;
		b->dirty = true;
	}
	b->present = true;
	return b;
}

struct pending {
	uint32_t uid;
	int64_t size;
	char *path;
};

struct pass {
	struct dmarcrep_importer *imp;
	struct dmarcrep_import_stats *st;
	unsigned messages_left;
	uint64_t bytes_left;
	struct pending *list;        /* this mailbox's new messages */
	size_t count;
	const char *error;
	bool failed;
};

static int collect(void *ctx, const struct store_message *m)
{
	struct pass *p = ctx;

	if (p->count >= p->messages_left)
		return 1;
	p->list[p->count++] = (struct pending){ .uid = m->uid, .size = m->size,
						.path = xstrdup(m->path) };
	return 0;
}

static void import_one(struct pass *p, const char *address, const struct pending *m)
{
	struct dmarcrep_import_info info;
	const char *error = NULL;
	char *data = NULL;
	size_t len = 0;
	int rc, fd;

	if (m->size < 0 || (uint64_t)m->size > DMARCREP_IMPORT_MAX) {
		log_warn("dmarc", "event=report_import_failed mailbox=%s uid=%u "
			 "error=\"larger than 64 MiB\"", log_quote(address), m->uid);
		p->st->failed++;
		return;
	}
	fd = open(m->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		/* expunged since the listing: nothing to import */
		if (errno != ENOENT) {
			log_warn("dmarc", "event=report_import_failed mailbox=%s uid=%u error=%s",
				 log_quote(address), m->uid, log_quote(strerror(errno)));
			p->st->failed++;
		}
		return;
	}
	rc = dmarcrep_import_read(fd, &data, &len, &error);
	close(fd);
	if (rc == 0)
		rc = dmarcrep_import_bytes(p->imp->store, data, len,
					   dmarcrep_import_not_before(p->imp->cfg, clock_now()),
					   &info, &error);
	free(data);
	if (rc == 1) {
		log_info("dmarc", "event=report_imported mailbox=%s uid=%u org=%s report_id=%s "
			 "domain=%s records=%zu", log_quote(address), m->uid,
			 log_quote(info.org_name), log_quote(info.report_id), log_quote(info.domain),
			 info.records);
		p->st->imported++;
	} else if (rc == 0) {
		log_debug("dmarc", "event=report_known mailbox=%s uid=%u org=%s report_id=%s",
			  log_quote(address), m->uid, log_quote(info.org_name),
			  log_quote(info.report_id));
		p->st->known++;
	} else if (rc == DMARCREP_IMPORT_NOT_REPORT || rc == DMARCREP_IMPORT_TOO_OLD) {
		log_info("dmarc", "event=report_import_skipped mailbox=%s uid=%u reason=%s",
			 log_quote(address), m->uid, log_quote(error ? error : "no report"));
		p->st->other++;
	} else {
		log_warn("dmarc", "event=report_import_failed mailbox=%s uid=%u error=%s",
			 log_quote(address), m->uid, log_quote(error ? error : "failed"));
		p->st->failed++;
	}
	if (rc >= 0)
		dmarcrep_import_info_clear(&info);
}

static bool stopping(const struct dmarcrep_importer *imp)
{
	return imp->stopping != NULL && atomic_load(imp->stopping);
}

static int scan_mailbox(void *ctx, int64_t user_id, const char *address)
{
	struct pass *p = ctx;
	struct store_mailbox mb = { 0 };
	struct seen_mailbox *b;
	const char *error = NULL;
	int rc;

	if (stopping(p->imp))
		return 1;
	if (p->messages_left == 0 || p->bytes_left == 0) {
		p->st->more = true;
		return 1;
	}
	rc = store_mailbox_get(p->imp->store, user_id, "INBOX", &mb, &error);
	if (rc <= 0) {
		if (rc < 0) {
			p->error = error;
			p->failed = true;
		}
		store_mailbox_clear(&mb);
		return rc < 0;
	}
	p->st->mailboxes++;
	b = seen_get(p->imp, mb.id, mb.uidvalidity);
	uint32_t first = b->next_uid;
	if (mb.uidnext <= b->next_uid) {
		store_mailbox_clear(&mb);
		return 0;   /* nothing new */
	}
	p->list = xcalloc(p->messages_left, sizeof(*p->list));
	p->count = 0;
	rc = store_message_list(p->imp->store, mb.id, b->next_uid, collect, p, &error);
	if (rc < 0) {
		p->error = error;
		p->failed = true;
	}
	for (size_t i = 0; i < p->count && rc >= 0; i++) {
		const struct pending *m = &p->list[i];
		uint64_t size = m->size > 0 ? (uint64_t)m->size : 0;
		if (stopping(p->imp))
			break;
		if (size > p->bytes_left && size <= DMARCREP_IMPORT_MAX &&
		    p->st->imported + p->st->known + p->st->other + p->st->failed > 0) {
			p->st->more = true;    /* the next pass takes it */
			p->bytes_left = 0;
			break;
		}
		p->bytes_left = size > p->bytes_left ? 0 : p->bytes_left - size;
		p->messages_left--;
		import_one(p, address, m);
		b->next_uid = m->uid + 1;
	}
	if (p->count > 0 && p->messages_left == 0)
		p->st->more = true;
	for (size_t i = 0; i < p->count; i++)
		free(p->list[i].path);
	free(p->list);
	p->list = NULL;
	if (rc >= 0 && p->messages_left > 0 && p->bytes_left > 0 && !stopping(p->imp) &&
	    b->next_uid < mb.uidnext)
		b->next_uid = mb.uidnext;   /* the rest of the range was expunged */
	if (b->next_uid != first)
		b->dirty = true;
	store_mailbox_clear(&mb);
	return p->failed ? 1 : 0;
}

static void skipped(void *ctx, const char *address)
{
	struct pass *p = ctx;

	(void)p;
	log_debug("dmarc", "event=report_mailbox_missing address=%s", log_quote(address));
}

/* The positions an earlier importer (an earlier server) left in the
 * store: they wait, not present, until a pass finds their mailbox. */
static int load_one(void *ctx, const struct store_dmarc_import_pos *pos)
{
	struct dmarcrep_importer *imp = ctx;
	struct seen_mailbox *b;

	if (imp->box_count == imp->box_cap) {
		imp->box_cap = imp->box_cap ? imp->box_cap * 2 : 16;
		imp->boxes = xrealloc(imp->boxes, imp->box_cap * sizeof(*imp->boxes));
	}
	b = &imp->boxes[imp->box_count++];
	*b = (struct seen_mailbox){ .mailbox_id = pos->mailbox_id,
				    .uidvalidity = pos->uidvalidity,
				    .next_uid = pos->next_uid, .stored = true };
	return 0;
}

static int load_positions(struct dmarcrep_importer *imp, const char **error_r)
{
	if (imp->loaded)
		return 0;
	imp->box_count = 0;
	if (store_dmarc_import_pos_list(imp->store, load_one, imp, error_r) < 0) {
		imp->box_count = 0;
		return -1;
	}
	imp->loaded = true;
	return 0;
}

/* Write the positions that moved and remove those of forget; a failure is
 * logged and the positions stay dirty for the next pass (losing one only
 * makes a restart read again). */
static void save_positions(struct dmarcrep_importer *imp, const int64_t *forget,
			   size_t forget_count)
{
	struct store_dmarc_import_pos *set = NULL;
	size_t set_count = 0;
	const char *error = NULL;

	for (size_t i = 0; i < imp->box_count; i++)
		if (imp->boxes[i].dirty)
			set_count++;
	if (set_count == 0 && forget_count == 0)
		return;
	set = xcalloc(set_count ? set_count : 1, sizeof(*set));
	set_count = 0;
	for (size_t i = 0; i < imp->box_count; i++) {
		const struct seen_mailbox *b = &imp->boxes[i];
		if (b->dirty)
			set[set_count++] = (struct store_dmarc_import_pos){
				.mailbox_id = b->mailbox_id, .uidvalidity = b->uidvalidity,
				.next_uid = b->next_uid };
	}
	if (store_dmarc_import_pos_save(imp->store, set, set_count, forget, forget_count,
					&error) < 0) {
		log_warn("dmarc", "event=report_import_position_failed error=%s",
			 log_quote(error ? error : "store error"));
	} else {
		for (size_t i = 0; i < imp->box_count; i++)
			if (imp->boxes[i].dirty) {
				imp->boxes[i].dirty = false;
				imp->boxes[i].stored = true;
			}
	}
	free(set);
}

int dmarcrep_importer_pass(struct dmarcrep_importer *imp, struct dmarcrep_import_stats *st,
			   const char **error_r)
{
	struct pass p = {
		.imp = imp, .st = st, .messages_left = DMARCREP_IMPORT_PASS_MESSAGES,
		.bytes_left = DMARCREP_IMPORT_PASS_BYTES,
	};
	int64_t *forget = NULL;
	size_t kept = 0, forget_count = 0;
	int rc;

	memset(st, 0, sizeof(*st));
	if (load_positions(imp, error_r) < 0)
		return -1;
	for (size_t i = 0; i < imp->box_count; i++)
		imp->boxes[i].present = false;
	rc = dmarcrep_import_mailboxes(imp->store, imp->cfg, scan_mailbox, skipped, &p,
				       error_r);
	if (rc == 0 && p.failed) {
		*error_r = p.error != NULL ? p.error : "store error";
		rc = -1;
	}
	/* forget mailboxes that are gone (a user removed) or no longer report
	 * mailboxes, unless the pass stopped before it could see them */
	if (rc == 0 && !st->more && !stopping(imp))
		forget = xcalloc(imp->box_count ? imp->box_count : 1, sizeof(*forget));
	for (size_t i = 0; i < imp->box_count; i++) {
		if (forget == NULL || imp->boxes[i].present)
			imp->boxes[kept++] = imp->boxes[i];
		else if (imp->boxes[i].stored)
			forget[forget_count++] = imp->boxes[i].mailbox_id;
	}
	imp->box_count = kept;
	/* what a failed pass read is not read again either */
	save_positions(imp, forget, forget_count);
	free(forget);
	return rc;
}

/* ---- the service ---- */

struct dmarcrep_import_service {
	struct dmarcrep_importer *imp;
	struct threadpool *pool;
	struct event *timer;
	unsigned interval;
	atomic_bool running, stopping, more;
	_Atomic int64_t next_due;    /* CLOCK_MONOTONIC seconds of the next pass */
};

static int64_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

static void service_work(void *arg)
{
	struct dmarcrep_import_service *s = arg;
	struct dmarcrep_import_stats st;
	const char *error = NULL;

	if (dmarcrep_importer_pass(s->imp, &st, &error) < 0) {
		log_error("dmarc", "event=report_import_failed error=%s",
			  log_quote(error ? error : "store error"));
		st.more = false;
	} else if (st.imported + st.failed > 0 || st.more) {
		log_info("dmarc", "event=report_import_pass mailboxes=%u imported=%u known=%u "
			 "other=%u failed=%u more=%s", st.mailboxes, st.imported, st.known,
			 st.other, st.failed, st.more ? "yes" : "no");
	}
	atomic_store(&s->more, st.more);
	atomic_store(&s->next_due, mono_now() + (int64_t)s->interval);
	atomic_store(&s->running, false);
}

/* Every second on the loop: cheap unless a pass is due. */
static void service_tick(evutil_socket_t fd, short what, void *arg)
{
	struct dmarcrep_import_service *s = arg;

	(void)fd; (void)what;
	if (atomic_load(&s->running))
		return;
	if (!atomic_load(&s->more) && mono_now() < atomic_load(&s->next_due))
		return;
	atomic_store(&s->running, true);
	threadpool_submit(s->pool, NULL, service_work, NULL, s);
}

struct dmarcrep_import_service *dmarcrep_import_start(struct event_base *base,
						      struct store *store,
						      const struct config *cfg)
{
	struct dmarcrep_import_service *s;
	struct timeval tv = { 1, 0 };

	if (!cfg->dmarc_reports.import)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->imp = dmarcrep_importer_new(store, cfg);
	s->imp->stopping = &s->stopping;
	s->interval = cfg->dmarc_reports.import_interval;
	atomic_store(&s->next_due, mono_now() + 1);
	s->pool = threadpool_create(1);
	s->timer = event_new(base, -1, EV_PERSIST, service_tick, s);
	event_add(s->timer, &tv);
	return s;
}

void dmarcrep_import_stop(struct dmarcrep_import_service **sp)
{
	struct dmarcrep_import_service *s = *sp;

	if (s == NULL)
		return;
	event_free(s->timer);
	atomic_store(&s->stopping, true);
	threadpool_destroy(&s->pool);
	dmarcrep_importer_free(&s->imp);
	free(s);
	*sp = NULL;
}
