/* Internals shared by arc-verify.c and arc-seal.c; not for other modules. */
#ifndef TERN_MAILAUTH_ARC_PRIVATE_H
#define TERN_MAILAUTH_ARC_PRIVATE_H

#include "mailauth/dkim-private.h"

enum arc_kind { ARC_KIND_AAR, ARC_KIND_AMS, ARC_KIND_AS, ARC_KIND_NONE };

/* Which ARC field f of m is (ARC_KIND_NONE for any other field). */
enum arc_kind arc_field_kind(const struct dkim_msg *m, const struct dkim_field *f);

/* The instance (1..ARC_MAX_SETS) of an ARC field's value, or 0 when it
 * is missing, malformed or out of range. */
unsigned arc_field_instance(enum arc_kind kind, const char *value, size_t len);

#endif
