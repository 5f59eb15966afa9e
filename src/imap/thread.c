/* THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 section 3) over
 * the summaries of the messages a search selected, and the thread-list
 * output of RFC 5256 section 4 ("(1 2)(3 (4)(5))").
 *
 * The tree lives in one array of nodes linked by index (parent, first and
 * last child, siblings), so growing the array never leaves a dangling
 * pointer.  Nothing here recurses: loop checks walk up parent links,
 * traversals use an explicit stack, so a References chain thousands of
 * messages deep costs memory in proportion, never C stack.
 *
 * REFERENCES follows the six steps of RFC 5256 section 3:
 *  (1) link by Message-ID: References (or, when it holds no valid
 *      msg-id, the first valid one of In-Reply-To) chains parent to
 *      child, never re-parenting a reference and never making a loop; a
 *      missing message becomes a dummy; the message then hangs under its
 *      last reference (replacing an earlier parent unless that loops).  A
 *      message without a valid Message-ID, or repeating one already seen
 *      on a message, gets a unique one (a node of its own);
 *  (2) parentless nodes go under a root;
 *  (3) dummies are pruned: childless ones deleted, others replaced by
 *      their children except directly under the root with 2+ children;
 *  (4) top-level siblings sorted by sent date (a dummy by its earliest
 *      child), ties by sequence number (RFC 5256 2.2);
 *  (5) top-level threads with the same base subject are merged, with the
 *      reply / forward rules of 5.B and 5.C;
 *  (6) every set of siblings sorted by sent date, children before
 *      parents.
 * Message-IDs are compared as octets; base subjects after
 * i;unicode-casemap folding. */
#include "imap/sort.h"
#include "mail/base-subject.h"

#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

struct tnode {
	uint32_t msg;           /* index into msgs, NONE for a dummy */
	uint32_t parent, first, last, next, prev;
	uint32_t nchildren;
	time_t date;            /* sort key: sent date and sequence number */
	uint32_t seq;
};

struct tree {
	struct tnode *n;
	uint32_t count, alloc;
};

/* Per message: base subject key and the reply-or-forward mark. */
struct minfo {
	char *subj;
	size_t subj_len;
	bool refwd;
};

static uint32_t node_new(struct tree *t, uint32_t msg)
{
	if (t->count == t->alloc) {
		t->alloc = t->alloc ? t->alloc * 2 : 64;
		t->n = xrealloc(t->n, (size_t)t->alloc * sizeof(*t->n));
	}
	t->n[t->count] = (struct tnode){ msg, NONE, NONE, NONE, NONE, NONE, 0, 0, 0 };
	return t->count++;
}

static void node_link(struct tree *t, uint32_t child, uint32_t parent)
{
	struct tnode *c = &t->n[child], *p = &t->n[parent];

	c->parent = parent;
	c->next = NONE;
	c->prev = p->last;
	if (p->last != NONE)
		t->n[p->last].next = child;
	else
		p->first = child;
	p->last = child;
	p->nchildren++;
}

static void node_unlink(struct tree *t, uint32_t child)
{
	struct tnode *c = &t->n[child];
	struct tnode *p;

	if (c->parent == NONE)
		return;
	p = &t->n[c->parent];
	if (c->prev != NONE)
		t->n[c->prev].next = c->next;
	else
		p->first = c->next;
	if (c->next != NONE)
		t->n[c->next].prev = c->prev;
	else
		p->last = c->prev;
	p->nchildren--;
	c->parent = c->next = c->prev = NONE;
}

/* Move every child of from under to. */
static void node_adopt(struct tree *t, uint32_t from, uint32_t to)
{
	while (t->n[from].first != NONE) {
		uint32_t c = t->n[from].first;
		node_unlink(t, c);
		node_link(t, c, to);
	}
}

/* true when a is b or an ancestor of b (linking b over a would loop). */
static bool is_ancestor(const struct tree *t, uint32_t a, uint32_t b)
{
	if (t->n[a].first == NONE)  /* a leaf is nobody's ancestor: the usual case */
		return a == b;
	for (uint32_t x = b; x != NONE; x = t->n[x].parent)
		if (x == a)
			return true;
	return false;
}

static int node_cmp(const void *pa, const void *pb, void *arg)
{
	const struct tree *t = arg;
	const struct tnode *a = &t->n[*(const uint32_t *)pa], *b = &t->n[*(const uint32_t *)pb];

	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sort the children of p by (sent date, sequence number). */
static void sort_children(struct tree *t, uint32_t p, uint32_t **scratch, size_t *scratch_n)
{
	uint32_t k = 0, n = t->n[p].nchildren;

	if (n < 2)
		return;
	if (*scratch_n < n) {
		*scratch = xrealloc(*scratch, n * sizeof(**scratch));
		*scratch_n = n;
	}
	for (uint32_t c = t->n[p].first; c != NONE; c = t->n[c].next)
		(*scratch)[k++] = c;
	qsort_r(*scratch, n, sizeof(**scratch), node_cmp, t);
	t->n[p].first = t->n[p].last = NONE;
	t->n[p].nchildren = 0;
	for (uint32_t i = 0; i < n; i++)
		node_link(t, (*scratch)[i], p);
}

/* A dummy takes the sort key of its first child. */
static void dummy_key(struct tree *t, uint32_t d)
{
	uint32_t f = t->n[d].first;

	if (t->n[d].msg == NONE && f != NONE) {
		t->n[d].date = t->n[f].date;
		t->n[d].seq = t->n[f].seq;
	}
}

/* ---- string -> node map (open addressing, FNV-1a) ---- */

struct smap {
	struct slice *keys;
	uint32_t *vals;
	size_t cap, count;
};

static uint64_t smap_hash(struct slice k)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < k.len; i++) {
		h ^= (unsigned char)k.p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static size_t smap_slot(const struct smap *m, struct slice k)
{
	size_t i = (size_t)smap_hash(k) & (m->cap - 1);

	while (m->keys[i].p != NULL && !slice_eq(m->keys[i], k))
		i = (i + 1) & (m->cap - 1);
	return i;
}

static uint32_t smap_get(const struct smap *m, struct slice k)
{
	size_t i;

	if (m->cap == 0)
		return NONE;
	i = smap_slot(m, k);
	return m->keys[i].p != NULL ? m->vals[i] : NONE;
}

static void smap_set(struct smap *m, struct slice k, uint32_t v)
{
	size_t i;

	if ((m->count + 1) * 2 > m->cap) {
		struct smap old = *m;
		m->cap = m->cap ? m->cap * 2 : 64;
		m->keys = xcalloc(m->cap, sizeof(*m->keys));
		m->vals = xcalloc(m->cap, sizeof(*m->vals));
		m->count = 0;
		for (size_t j = 0; j < old.cap; j++) {
			if (old.keys[j].p != NULL) {
				size_t s = smap_slot(m, old.keys[j]);
				m->keys[s] = old.keys[j];
				m->vals[s] = old.vals[j];
				m->count++;
			}
		}
		free(old.keys);
		free(old.vals);
	}
	i = smap_slot(m, k);
	if (m->keys[i].p == NULL) {
		m->keys[i] = k;
		m->count++;
	}
	m->vals[i] = v;
}

static void smap_free(struct smap *m)
{
	free(m->keys);
	free(m->vals);
	*m = (struct smap){ 0 };
}

/* ---- msg-ids ---- */

bool imap_thread_next_msgid(const char *s, size_t len, size_t *pos, struct slice *id_r)
{
	size_t i = *pos;

	while (i < len) {
		const char *lt = memchr(s + i, '<', len - i);
		size_t start, j;
		bool at = false, ok = true;

		if (lt == NULL)
			break;
		start = (size_t)(lt - s) + 1;
		for (j = start; j < len && s[j] != '>'; j++) {
			unsigned char c = (unsigned char)s[j];
			if (c == '<')
				break;
			if (c <= ' ' || c == 0x7f)
				ok = false;
			if (c == '@')
				at = true;
		}
		if (j >= len)
			break;
		if (s[j] == '<') {          /* "<junk <id>": start again at this '<' */
			i = j;
			continue;
		}
		if (ok && at && j > start && s[start] != '@' && s[j - 1] != '@') {
			*id_r = (struct slice){ s + start, j - start };
			*pos = j + 1;
			return true;
		}
		i = j + 1;
	}
	*pos = len;
	return false;
}

static const char *str_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

/* ---- output ---- */

static void emit_num(const struct imap_sort_msg *msgs, uint32_t msg, bool uid, struct buf *out)
{
	buf_printf(out, "%u", uid ? msgs[msg].uid : msgs[msg].seq);
}

/* One thread-list for the tree under top (RFC 5256 section 4):
 * a chain of single children is "a b c", a node with 2+ children is
 * followed by one parenthesised list per child, a dummy prints nothing. */
static void emit_thread(const struct tree *t, const struct imap_sort_msg *msgs, uint32_t top,
			bool uid, struct buf *out, uint32_t **stack, size_t *stack_alloc)
{
	size_t depth = 0;
	uint32_t cur = top;
	bool space = false;

	buf_append_str(out, "(");
	for (;;) {
		for (;;) {             /* a chain, inside an open list */
			uint32_t c;

			if (t->n[cur].msg != NONE) {
				if (space)
					buf_append_str(out, " ");
				emit_num(msgs, t->n[cur].msg, uid, out);
				space = true;
			}
			c = t->n[cur].first;
			if (c == NONE)
				break;
			if (t->n[c].next == NONE) {
				cur = c;
				continue;
			}
			if (space)
				buf_append_str(out, " ");
			if (depth == *stack_alloc) {
				*stack_alloc = *stack_alloc ? *stack_alloc * 2 : 64;
				*stack = xrealloc(*stack, *stack_alloc * sizeof(**stack));
			}
			(*stack)[depth++] = t->n[c].next;
			buf_append_str(out, "(");
			cur = c;
			space = false;
		}
		buf_append_str(out, ")");
		for (;;) {             /* close lists until a sibling is pending */
			uint32_t s;

			if (depth == 0)
				return;
			s = (*stack)[--depth];
			if (s != NONE) {
				(*stack)[depth++] = t->n[s].next;
				buf_append_str(out, "(");
				cur = s;
				space = false;
				break;
			}
			buf_append_str(out, ")");
		}
	}
}

static void emit_all(const struct tree *t, const struct imap_sort_msg *msgs, uint32_t root,
		     bool uid, struct buf *out)
{
	uint32_t *stack = NULL;
	size_t stack_alloc = 0;

	for (uint32_t r = t->n[root].first; r != NONE; r = t->n[r].next)
		emit_thread(t, msgs, r, uid, out, &stack, &stack_alloc);
	free(stack);
}

/* ---- the algorithms ---- */

static struct minfo *subjects(const struct imap_sort_msg *msgs, size_t n)
{
	struct minfo *info = xcalloc(n ? n : 1, sizeof(*info));
	struct buf base, key;

	buf_init(&base, BUF_UNLIMITED);
	buf_init(&key, BUF_UNLIMITED);
	for (size_t i = 0; i < n; i++) {
		const char *s = str_or_empty(msgs[i].subject);
		buf_reset(&base);
		buf_reset(&key);
		base_subject(s, strlen(s), &base, &info[i].refwd);
		unicode_casemap_key(buf_cstr(&base), base.len, &key);
		info[i].subj_len = key.len;
		info[i].subj = xstrndup(buf_cstr(&key), key.len);
	}
	buf_free(&base);
	buf_free(&key);
	return info;
}

static uint32_t msg_node(struct tree *t, const struct imap_sort_msg *msgs, uint32_t i,
			 uint32_t node)
{
	if (node == NONE)
		node = node_new(t, i);
	t->n[node].msg = i;
	t->n[node].date = msgs[i].sent_date;
	t->n[node].seq = msgs[i].seq;
	return node;
}

struct subj_order_ctx {
	const struct imap_sort_msg *msgs;
	const struct minfo *info;
};

static int subj_order_cmp(const void *pa, const void *pb, void *arg)
{
	const struct subj_order_ctx *c = arg;
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	const struct minfo *ia = &c->info[a], *ib = &c->info[b];
	size_t l = ia->subj_len < ib->subj_len ? ia->subj_len : ib->subj_len;
	int r = memcmp(ia->subj, ib->subj, l);

	if (r != 0)
		return r < 0 ? -1 : 1;
	if (ia->subj_len != ib->subj_len)
		return ia->subj_len < ib->subj_len ? -1 : 1;
	if (c->msgs[a].sent_date != c->msgs[b].sent_date)
		return c->msgs[a].sent_date < c->msgs[b].sent_date ? -1 : 1;
	return c->msgs[a].seq < c->msgs[b].seq ? -1 : c->msgs[a].seq > c->msgs[b].seq;
}

/* ORDEREDSUBJECT (RFC 5256 section 3): sort by base subject then sent
 * date; each run of one base subject is a thread whose first message is
 * the parent of all the others; threads ordered by their first message. */
static void thread_orderedsubject(struct tree *t, const struct imap_sort_msg *msgs, size_t n,
				  const struct minfo *info, uint32_t root)
{
	struct subj_order_ctx c = { msgs, info };
	uint32_t *order = xmalloc(n * sizeof(*order));
	uint32_t head = NONE;
	uint32_t *scratch = NULL;
	size_t scratch_n = 0;

	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	qsort_r(order, n, sizeof(*order), subj_order_cmp, &c);
	for (size_t i = 0; i < n; i++) {
		uint32_t m = order[i], node = msg_node(t, msgs, m, NONE);
		if (head != NONE && info[m].subj_len == info[t->n[head].msg].subj_len &&
		    memcmp(info[m].subj, info[t->n[head].msg].subj, info[m].subj_len) == 0) {
			node_link(t, node, head);
		} else {
			node_link(t, node, root);
			head = node;
		}
	}
	sort_children(t, root, &scratch, &scratch_n);
	free(scratch);
	free(order);
}

/* The message that names a top-level node's thread subject: itself, or
 * its first child for a dummy. */
static uint32_t subject_msg(const struct tree *t, uint32_t node)
{
	if (t->n[node].msg != NONE)
		return t->n[node].msg;
	node = t->n[node].first;
	return node != NONE ? t->n[node].msg : NONE;
}

static void thread_references(struct tree *t, const struct imap_sort_msg *msgs, size_t n,
			      const struct minfo *info, uint32_t *root_r)
{
	struct smap ids = { 0 }, subj = { 0 };
	uint32_t root, *scratch = NULL, *list;
	size_t scratch_n = 0, nlist = 0, nroots;

	/* (1) */
	for (size_t i = 0; i < n; i++) {
		const char *refs = str_or_empty(msgs[i].references);
		const char *irt = str_or_empty(msgs[i].in_reply_to);
		const char *mid = str_or_empty(msgs[i].message_id);
		size_t pos = 0, rlen = strlen(refs), nrefs = 0;
		uint32_t prev = NONE, node = NONE;
		struct slice id;

		/* (A) References, else the first valid msg-id of In-Reply-To */
		for (;;) {
			uint32_t r;

			if (!imap_thread_next_msgid(refs, rlen, &pos, &id)) {
				if (nrefs > 0 || refs == irt)
					break;
				refs = irt;
				rlen = strlen(irt);
				pos = 0;
				if (!imap_thread_next_msgid(refs, rlen, &pos, &id))
					break;
				pos = rlen;     /* only the first one */
			}
			nrefs++;
			r = smap_get(&ids, id);
			if (r == NONE) {
				r = node_new(t, NONE);
				smap_set(&ids, id, r);
			}
			if (prev != NONE && t->n[r].parent == NONE && !is_ancestor(t, r, prev))
				node_link(t, r, prev);
			prev = r;
		}
		/* the message's own node: a dummy waiting for it, or a new one
		 * (no valid Message-ID, or a duplicate: unique id) */
		pos = 0;
		if (imap_thread_next_msgid(mid, strlen(mid), &pos, &id)) {
			uint32_t x = smap_get(&ids, id);
			if (x == NONE) {
				node = msg_node(t, msgs, (uint32_t)i, NONE);
				smap_set(&ids, id, node);
			} else if (t->n[x].msg == NONE) {
				node = msg_node(t, msgs, (uint32_t)i, x);
			}
		}
		if (node == NONE)
			node = msg_node(t, msgs, (uint32_t)i, NONE);
		/* (B) hang it under the last reference */
		if (prev == NONE) {
			node_unlink(t, node);
		} else if (!is_ancestor(t, node, prev)) {
			node_unlink(t, node);
			node_link(t, node, prev);
		}
	}

	/* (2) */
	root = node_new(t, NONE);
	for (uint32_t j = 0; j < root; j++)
		if (t->n[j].parent == NONE)
			node_link(t, j, root);

	/* (3) children before parents: reversed pre-order */
	list = xmalloc((size_t)t->count * sizeof(*list));
	{
		uint32_t *stack = xmalloc((size_t)t->count * sizeof(*stack));
		size_t depth = 0;
		stack[depth++] = root;
		while (depth > 0) {
			uint32_t x = stack[--depth];
			list[nlist++] = x;
			for (uint32_t c = t->n[x].first; c != NONE; c = t->n[c].next)
				stack[depth++] = c;
		}
		free(stack);
	}
	for (size_t k = nlist; k-- > 0;) {
		uint32_t d = list[k], p = t->n[d].parent;

		if (d == root || t->n[d].msg != NONE)
			continue;
		if (t->n[d].first == NONE) {
			node_unlink(t, d);
		} else if (p != root || t->n[d].nchildren == 1) {
			node_adopt(t, d, p);
			node_unlink(t, d);
		}
	}

	/* (4) */
	for (uint32_t r = t->n[root].first; r != NONE; r = t->n[r].next) {
		if (t->n[r].msg == NONE) {
			sort_children(t, r, &scratch, &scratch_n);
			dummy_key(t, r);
		}
	}
	sort_children(t, root, &scratch, &scratch_n);

	/* (5.B) one node per thread subject */
	for (uint32_t r = t->n[root].first; r != NONE; r = t->n[r].next) {
		uint32_t m = subject_msg(t, r), x;
		struct slice k;

		if (m == NONE || info[m].subj_len == 0)
			continue;
		k = (struct slice){ info[m].subj, info[m].subj_len };
		x = smap_get(&subj, k);
		if (x == NONE)
			smap_set(&subj, k, r);
		else if (t->n[x].msg != NONE &&
			 (t->n[r].msg == NONE || (info[t->n[x].msg].refwd && !info[m].refwd)))
			smap_set(&subj, k, r);
	}
	/* (5.C) merge: over a snapshot, as merging changes the root's list */
	nroots = 0;
	for (uint32_t r = t->n[root].first; r != NONE; r = t->n[r].next)
		list[nroots++] = r;
	for (size_t k = 0; k < nroots; k++) {
		uint32_t r = list[k], m, x;
		struct slice key;

		if (t->n[r].parent != root)
			continue;       /* already merged into another thread */
		m = subject_msg(t, r);
		if (m == NONE || info[m].subj_len == 0)
			continue;
		key = (struct slice){ info[m].subj, info[m].subj_len };
		x = smap_get(&subj, key);
		if (x == NONE || x == r)
			continue;
		if (t->n[x].msg == NONE && t->n[r].msg == NONE) {
			node_adopt(t, r, x);
			node_unlink(t, r);
		} else if (t->n[x].msg == NONE) {
			node_unlink(t, r);
			node_link(t, r, x);
		} else if (t->n[r].msg != NONE && info[t->n[r].msg].refwd &&
			   !info[t->n[x].msg].refwd) {
			node_unlink(t, r);
			node_link(t, r, x);
		} else {
			uint32_t d = node_new(t, NONE);
			node_unlink(t, x);
			node_link(t, d, root);
			node_link(t, x, d);
			node_unlink(t, r);
			node_link(t, r, d);
			smap_set(&subj, key, d);
		}
	}

	/* (6) every sibling set; the top level last, dummies by first child */
	for (uint32_t j = 0; j < t->count; j++)
		if (j != root)
			sort_children(t, j, &scratch, &scratch_n);
	for (uint32_t r = t->n[root].first; r != NONE; r = t->n[r].next)
		dummy_key(t, r);
	sort_children(t, root, &scratch, &scratch_n);

	free(scratch);
	free(list);
	smap_free(&ids);
	smap_free(&subj);
	*root_r = root;
}

void imap_thread_messages(const struct imap_sort_msg *msgs, size_t n,
			  enum imap_thread_algorithm algorithm, bool uid, struct buf *out)
{
	struct tree t = { 0 };
	struct minfo *info;
	uint32_t root;

	if (n == 0)
		return;
	info = subjects(msgs, n);
	if (algorithm == IMAP_THREAD_ORDEREDSUBJECT) {
		root = node_new(&t, NONE);
		thread_orderedsubject(&t, msgs, n, info, root);
	} else {
		thread_references(&t, msgs, n, info, &root);
	}
	emit_all(&t, msgs, root, uid, out);
	for (size_t i = 0; i < n; i++)
		free(info[i].subj);
	free(info);
	free(t.n);
}
