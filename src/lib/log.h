/* Logging: one line per event, "key=value" pairs, to stderr (or syslog).
 *
 * Format of every line (stable; the fail2ban filter in etc/ relies on it):
 *   2026-11-28T18:40:00.123Z tern[PID]: level=info mod=smtp sid=0a1b2c3d event=... key=value ...
 * Values that may contain spaces or come from a peer are written with
 * log_quote()/%s of a value escaped by log_value(): quoted, with control
 * characters, quotes and backslashes escaped, so a peer can never forge a
 * second line or a key. */
#ifndef TERN_LIB_LOG_H
#define TERN_LIB_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

void log_set_level(enum log_level level);
void log_set_syslog(bool on);
/* Log one event. mod is the module ("smtp", "store", ...); fmt gives the
 * key=value pairs after it. */
void log_msg(enum log_level level, const char *mod, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(mod, ...) log_msg(LOG_LEVEL_DEBUG, mod, __VA_ARGS__)
#define log_info(mod, ...)  log_msg(LOG_LEVEL_INFO, mod, __VA_ARGS__)
#define log_warn(mod, ...)  log_msg(LOG_LEVEL_WARN, mod, __VA_ARGS__)
#define log_error(mod, ...) log_msg(LOG_LEVEL_ERROR, mod, __VA_ARGS__)

/* Escape a value for a log line into out (size outsz, always terminated):
 * "quoted" if it has spaces, quotes, '=' or is empty; non-printable bytes as \xNN.
 * Long values are cut with "..." at outsz.  Returns out. */
const char *log_value(char *out, size_t outsz, const char *s, size_t len);
/* Convenience: escape a C string into a thread-local ring of 8 buffers of
 * 256 bytes; valid until 8 more calls on this thread. */
const char *log_quote(const char *s);

/* A broken invariant: log and abort(). */
void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* An unusable environment or configuration: print and exit(1). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
