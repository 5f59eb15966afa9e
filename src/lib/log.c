/* key=value event logging to stderr or syslog.  One write(2) per line so
 * that lines from the master, workers and threads never interleave. */
#include "lib/log.h"
#include "lib/buf.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_LEVEL_INFO;
static bool use_syslog;
static _Atomic pid_t log_pid;   /* cached: one getpid() per line showed in profiles */

static void log_forget_pid(void);

static void log_register_atfork(void)
{
	pthread_atfork(NULL, NULL, log_forget_pid);
}

static void log_forget_pid(void)
{
	log_pid = 0;
}

static pid_t log_getpid(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, log_register_atfork);
	if (log_pid == 0)
		log_pid = getpid();
	return log_pid;
}

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_set_level(enum log_level level)
{
	min_level = level;
}

void log_set_syslog(bool on)
{
	if (on && !use_syslog)
		openlog("tern", LOG_PID, LOG_MAIL);
	use_syslog = on;
}

/* The date part of the current second's timestamps, per thread. */
static __thread time_t ts_sec;
static __thread char ts_cached[32];

__attribute__((format(printf, 3, 0)))
static void log_vmsg(enum log_level level, const char *mod, const char *fmt, va_list ap)
{
	char line[4096], ts[32];
	struct timeval tv;
	struct tm tm;
	int n = 0, m;

	if (level < min_level)
		return;
	if (use_syslog) {
		static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
		n = snprintf(line, sizeof(line), "level=%s mod=%s ", level_names[level], mod);
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		syslog(prio[level], "%s", line);
		return;
	}
	gettimeofday(&tv, NULL);
	/* busy threads log many lines a second: format the date once per
	 * second and thread (gmtime_r and strftime take the time zone lock) */
	if (tv.tv_sec != ts_sec || ts_cached[0] == '\0') {
		gmtime_r(&tv.tv_sec, &tm);
		strftime(ts_cached, sizeof(ts_cached), "%Y-%m-%dT%H:%M:%S", &tm);
		ts_sec = tv.tv_sec;
	}
	memcpy(ts, ts_cached, sizeof(ts));
	n = snprintf(line, sizeof(line), "%s.%03dZ tern[%d]: level=%s mod=%s ", ts,
		     (int)(tv.tv_usec / 1000), (int)log_getpid(), level_names[level], mod);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	/* never let a formatted value end the line early or start a new one */
	for (int i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

void log_msg(enum log_level level, const char *mod, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, mod, fmt, ap);
	va_end(ap);
}

const char *log_value(char *out, size_t outsz, const char *s, size_t len)
{
	size_t o = 0;
	bool quote = len == 0;

	if (outsz < 8) {
		if (outsz > 0)
			out[0] = '\0';
		return out;
	}
	for (size_t i = 0; i < len && !quote; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f)
			quote = true;
	}
	if (quote)
		out[o++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[5];
		size_t tl;
		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			tl = 2;
		} else if (c < ' ' || c == 0x7f) {
			snprintf(tmp, sizeof(tmp), "\\x%02x", c);
			tl = 4;
		} else {
			tmp[0] = (char)c;
			tl = 1;
		}
		if (o + tl + 5 > outsz) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, tmp, tl);
		o += tl;
	}
	if (quote)
		out[o++] = '"';
	out[o] = '\0';
	return out;
}

const char *log_quote(const char *s)
{
	static __thread char ring[8][256];
	static __thread unsigned idx;
	char *out = ring[idx++ % 8];
	if (s == NULL)
		s = "";
	return log_value(out, sizeof(ring[0]), s, strlen(s));
}

void panic(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("panic", "msg=%s", log_quote(msg));
	abort();
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	fputs("tern: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}
