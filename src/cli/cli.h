/* The `tern` command: shared declarations of the subcommand families
 * (one file each: cli-init.c, cli-config.c, cli-domain.c, cli-user.c,
 * cli-alias.c, cli-store.c) and their helpers (cli-util.c).
 *
 * Conventions: a subcommand returns the process exit status (0 success,
 * 1 failure, 2 usage error); it prints one line on stdout saying what
 * happened, and errors on stderr as "tern: ...".  argv[0] is the family
 * name ("user"), argv[1] the action ("add"). */
#ifndef TERN_CLI_H
#define TERN_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct config;
struct store;

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

/* Subcommand families.  cli_init and cli_config take the config path;
 * the others get the loaded config. */
int cli_init(int argc, char **argv);
int cli_config(const char *config_path, int argc, char **argv);
int cli_domain(struct config *cfg, int argc, char **argv);
int cli_user(struct config *cfg, int argc, char **argv);
int cli_alias(struct config *cfg, int argc, char **argv);
int cli_store(struct config *cfg, int argc, char **argv);
int cli_queue(struct config *cfg, int argc, char **argv);
int cli_dns(struct config *cfg, int argc, char **argv);
/* `tern tlsrpt list|send` (cli-tlsrpt.c): TLS reporting, RFC 8460. */
int cli_tlsrpt(struct config *cfg, int argc, char **argv);
/* `tern dmarc send|import|summary` (cli-dmarc.c): DMARC aggregate reports. */
int cli_dmarc(struct config *cfg, int argc, char **argv);
/* `tern dkim keygen|list|rotate|activate` (cli-dkim.c): DKIM signing keys. */
int cli_dkim(struct config *cfg, int argc, char **argv);
/* `tern sendmail` (cli-sendmail.c): argv[0] is "sendmail" (or the name
 * the binary was run as), the rest sendmail's options and recipients; with
 * mailq, lists the queue as -bp.  Loads the config itself (a -C option
 * overrides config_path).  Returns a sysexits.h status. */
int cli_sendmail(const char *config_path, int argc, char **argv, bool mailq);

/* Print the whole usage text to f. */
void cli_usage(FILE *f);
/* "tern: " + message on stderr; returns CLI_FAIL. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "tern: " + message + usage hint on stderr; returns CLI_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Drop to the service user when root (cfg->user), then open the store of
 * cfg.  Prints the error and returns -1 on failure. */
int cli_store_open(const struct config *cfg, bool readonly, struct store **store_r);

/* Read a new password: the first line of stdin when it is not a terminal,
 * otherwise prompted twice with echo off.  Empty or too long passwords are
 * refused.  Returns a malloc'd string (free it with cli_password_free), or
 * NULL after printing the error. */
char *cli_read_password(void);
void cli_password_free(char **password);

/* "500M", "2G", "0" (= unlimited) -> bytes.  0 or -1. */
int cli_parse_size(const char *s, int64_t *bytes_r);
/* Human-readable size ("1.5G", "300K", "12 bytes") into out. */
const char *cli_format_size(int64_t bytes, char *out, size_t outsz);

/* Validate "local@domain" and return it lowercased (malloc'd), or NULL
 * with *error_r. */
char *cli_address_normalize(const char *s, const char **error_r);
/* Validate a domain name and return it lowercased without a trailing dot
 * (malloc'd), or NULL with *error_r. */
char *cli_domain_normalize(const char *s, const char **error_r);
/* An alias: an address, or "@domain" for a catch-all. */
char *cli_alias_normalize(const char *s, const char **error_r);

#endif
