/* Helpers shared by the `tern` subcommands: messages, opening the store
 * as the service user, reading passwords, sizes and name validation.
 *
 * Passwords never come from argv (other users can read it in ps): they are
 * read from stdin, with echo off when it is a terminal, held in memory no
 * longer than needed and wiped before being freed. */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "auth/auth.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/privdrop.h"
#include "mail/address.h"
#include "store/store.h"

int cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("tern: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_FAIL;
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("tern: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(run `tern help` for usage)\n", stderr);
	return CLI_USAGE;
}

int cli_store_open(const struct config *cfg, bool readonly, struct store **store_r)
{
	const char *error;
	struct store_options opts = {
		.fsync_mode = strcmp(cfg->store_fsync, "fsync") == 0 ? STORE_FSYNC_FILE
			: STORE_FSYNC_SYNCFS,
		.commit_batch = cfg->commit_batch,
		.readonly = readonly,
	};

	/* files the store creates must belong to the service user, so the
	 * running server can write them: drop before touching anything */
	if (privdrop_to(cfg->user, &error) < 0) {
		cli_error("%s", error);
		return -1;
	}
	if (store_open(cfg->data_dir, &opts, store_r, &error) < 0) {
		cli_error("opening the store in %s: %s", cfg->data_dir, error);
		return -1;
	}
	return 0;
}

void cli_password_free(char **password)
{
	if (*password == NULL)
		return;
	explicit_bzero(*password, strlen(*password));
	free(*password);
	*password = NULL;
}

/* One line from f into a new string of at most AUTH_MAX_PASSWORD bytes,
 * without its "\n" or "\r\n".  NULL at EOF without data or when too long
 * (*too_long set). */
static char *read_line(FILE *f, bool *too_long)
{
	char *line = xmalloc(AUTH_MAX_PASSWORD + 2);
	size_t len = 0;
	int c;
	bool got = false;

	*too_long = false;
	while ((c = fgetc(f)) != EOF) {
		got = true;
		if (c == '\n')
			break;
		if (len > AUTH_MAX_PASSWORD) {
			*too_long = true;
			continue;
		}
		line[len++] = (char)c;
	}
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	if (!got || *too_long) {
		explicit_bzero(line, AUTH_MAX_PASSWORD + 2);
		free(line);
		return NULL;
	}
	return line;
}

static char *prompt_password(const char *prompt, bool *too_long)
{
	struct termios old, quiet;
	char *line;
	bool restore = false;

	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
	}
	line = read_line(stdin, too_long);
	if (restore)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	else
		fputc('\n', stderr);
	return line;
}

char *cli_read_password(void)
{
	char *pw, *again;
	bool too_long = false;

	if (!isatty(STDIN_FILENO)) {
		pw = read_line(stdin, &too_long);
	} else {
		pw = prompt_password("New password: ", &too_long);
		if (pw != NULL && pw[0] != '\0') {
			again = prompt_password("Repeat password: ", &too_long);
			if (again == NULL || strcmp(pw, again) != 0) {
				cli_password_free(&pw);
				cli_password_free(&again);
				cli_error("the passwords do not match");
				return NULL;
			}
			cli_password_free(&again);
		}
	}
	if (too_long) {
		cli_error("password too long (at most %d bytes)", AUTH_MAX_PASSWORD);
		return NULL;
	}
	if (pw == NULL || pw[0] == '\0') {
		cli_password_free(&pw);
		cli_error("empty password refused");
		return NULL;
	}
	for (const char *p = pw; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			cli_password_free(&pw);
			cli_error("the password contains a control character");
			return NULL;
		}
	}
	return pw;
}

int cli_parse_size(const char *s, int64_t *bytes_r)
{
	uint64_t v;
	if (config_parse_size(s, &v) < 0)
		return -1;
	*bytes_r = (int64_t)v;
	return 0;
}

const char *cli_format_size(int64_t bytes, char *out, size_t outsz)
{
	static const char units[] = "KMGT";
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(out, outsz, "%lld bytes", (long long)bytes);
		return out;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	if (v == (double)(int64_t)v)
		snprintf(out, outsz, "%lld%c", (long long)v, units[u]);
	else
		snprintf(out, outsz, "%.1f%c", v, units[u]);
	return out;
}

static void lowercase(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

char *cli_domain_normalize(const char *s, const char **error_r)
{
	size_t len = strlen(s);

	if (len > 1 && s[len - 1] == '.')
		len--;
	if (len == 0 || s[0] == '[' || !address_domain_valid(s, len, false)) {
		*error_r = "not a valid domain name (use the ASCII form: xn--... for IDNs)";
		return NULL;
	}
	char *d = xstrndup(s, len);
	lowercase(d);
	return d;
}

char *cli_address_normalize(const char *s, const char **error_r)
{
	struct address a = { 0 };
	size_t len = strlen(s);
	char *out = NULL;
	int n;

	n = address_parse_path(s, len, ADDRESS_ALLOW_NO_BRACKETS | ADDRESS_ALLOW_UTF8, &a, error_r);
	if (n < 0)
		return NULL;
	if ((size_t)n != len)
		*error_r = "unexpected text after the address";
	else if (a.local == NULL || a.domain == NULL)
		*error_r = "expected local@domain";
	else if (a.ip_literal)
		*error_r = "address literals ([1.2.3.4]) are not allowed here";
	else
		out = address_format(&a);
	address_clear(&a);
	if (out != NULL)
		lowercase(out);
	return out;
}

char *cli_alias_normalize(const char *s, const char **error_r)
{
	if (s[0] == '@') {
		char *d = cli_domain_normalize(s + 1, error_r);
		if (d == NULL)
			return NULL;
		char *out = xasprintf("@%s", d);
		free(d);
		return out;
	}
	return cli_address_normalize(s, error_r);
}
