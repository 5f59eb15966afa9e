/* Owned, length-counted, growable byte buffers with a hard maximum, and
 * borrowed slices into someone else's bytes.
 *
 * A buf is always NUL-terminated (data[len] == 0) so it can be handed to
 * C string functions, but it may also hold NULs: len is the truth.  Every
 * buf has a maximum size fixed at init; an append that would pass it fails
 * and leaves the buffer unchanged, so a peer can never make us allocate
 * more than the limit.  Out of memory below the limit aborts (see xalloc). */
#ifndef TERN_LIB_BUF_H
#define TERN_LIB_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct slice {
	const char *p;
	size_t len;
};

struct buf {
	char *data;   /* NULL until the first append; buf_cstr() never NULL */
	size_t len;
	size_t cap;
	size_t max;   /* hard limit on len */
};

#define SLICE_C(s) ((struct slice){ (s), sizeof(s) - 1 })
#define BUF_UNLIMITED ((size_t)-1 / 2)

/* Initialise an empty buffer that will never hold more than max bytes. */
void buf_init(struct buf *b, size_t max);
/* Release the memory; the buffer is empty and reusable afterwards. */
void buf_free(struct buf *b);
/* Forget the contents but keep the memory. */
void buf_reset(struct buf *b);
/* Append n bytes.  Returns 0, or -1 (buffer unchanged) past the maximum. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_append_slice(struct buf *b, struct slice s);
/* printf-style append; -1 (buffer unchanged) past the maximum. */
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Append the first len bytes of the file fd (pread from offset 0, so the
 * file position is untouched; EINTR and short reads retried).  Stops early
 * at end of file or on a read error.  The count appended, or -1 (buffer
 * unchanged) when len is past the maximum. */
long buf_append_file(struct buf *b, int fd, size_t len);
/* Remove the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* The contents as a C string ("" when empty). */
const char *buf_cstr(const struct buf *b);
/* Take ownership of the contents as a malloc'd NUL-terminated string; the
 * buffer is left empty. */
char *buf_steal(struct buf *b);
static inline struct slice buf_slice(const struct buf *b)
{
	return (struct slice){ buf_cstr(b), b->len };
}

/* Slices */
bool slice_eq(struct slice a, struct slice b);
bool slice_eq_ci(struct slice a, const char *s);       /* ASCII case-insensitive */
bool slice_starts_ci(struct slice a, const char *prefix);
struct slice slice_from(const char *s);
/* malloc'd NUL-terminated copy */
char *slice_dup(struct slice s);

/* Allocation that aborts with a message on failure.  Sizes given here are
 * never controlled by a peer without a cap checked first. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
