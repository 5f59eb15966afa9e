/* tern.conf: server-wide settings, parsed with libconfig.
 *
 * Every setting has a safe default, so a minimal file is `hostname = "...";`.
 * Relative paths are resolved against the directory of the config file.
 * Every error names file:line and what was expected.  The full list of
 * settings, with defaults, is docs/configuration.md; `tern init` writes a
 * commented file (config_write_template()). */
#ifndef TERN_LIB_CONFIG_H
#define TERN_LIB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum listener_kind {
	LISTENER_SMTP,          /* 25: MX, STARTTLS offered, no AUTH */
	LISTENER_SUBMISSION,    /* 587: STARTTLS required before AUTH */
	LISTENER_SUBMISSIONS,   /* 465: implicit TLS */
	LISTENER_IMAP,          /* 143 */
	LISTENER_IMAPS,         /* 993 */
	LISTENER_POP3,          /* 110 */
	LISTENER_POP3S,         /* 995 */
	LISTENER_HTTP,          /* 80 */
	LISTENER_HTTPS,         /* 443 */
	LISTENER_KIND_COUNT
};

/* "smtp", "submission", ... as used in the config file */
const char *listener_kind_name(enum listener_kind kind);
/* 25, 587, ... */
int listener_kind_default_port(enum listener_kind kind);

#define CONFIG_MAX_BIND 16
#define CONFIG_MAX_DMARC_IMPORT 64   /* dmarc_reports.import_addresses entries */
#define CONFIG_MAX_TRUSTED 32
#define CONFIG_MAX_DNS_SERVERS 8
#define CONFIG_MAX_DNS_STUBS 32
#define CONFIG_MAX_ROUTES 64
#define CONFIG_MAX_RATE_LIMITS 64
#define CONFIG_MAX_SENDMAIL_USERS 256
#define CONFIG_MAX_MTA_STS_MX 16
#define CONFIG_MAX_DMARC_OVERRIDES 1024
#define CONFIG_MAX_ARC_SEALERS 64

struct config_limits {
	size_t smtp_line;            /* command line, bytes (2048) */
	size_t header_size;          /* header section, bytes (100 KiB) */
	size_t message_size;         /* whole message, bytes (50 MB), advertised in SIZE */
	unsigned recipients;         /* per message (1000) */
	unsigned timeout;            /* idle timeout, seconds (300) */
	unsigned errors;             /* protocol errors before disconnect (20) */
	unsigned connections_per_ip; /* concurrent connections per client IP (50, as Postfix) */
	unsigned connections;        /* concurrent connections in all (2000) */
	unsigned auth_failures;      /* authentication failures per session before disconnect (3) */
};

struct config {
	char *path;                  /* the config file, as given */
	char *dir;                   /* its directory, for relative paths */
	char *hostname;              /* required: greeting, Received, certificate name */
	char *user;                  /* service user the worker runs as ("tern") */
	char *data_dir;              /* absolute path of the data folder */
	char *tls_cert;              /* absolute path, PEM chain */
	char *tls_key;               /* absolute path, PEM key */
	/* listeners: bind addresses shared by all; port 0 = disabled */
	char *bind[CONFIG_MAX_BIND];
	unsigned bind_count;
	int port[LISTENER_KIND_COUNT];
	unsigned worker_threads;     /* event-loop threads in the worker (0 = one per core) */
	struct config_limits limits;
	/* SMTP policy */
	bool plaintext_auth_loopback;   /* allow AUTH without TLS from 127.0.0.0/8 and ::1 */
	char *subaddress_separator;     /* "+"; "" disables subaddressing */
	char *proxy_trusted[CONFIG_MAX_TRUSTED];  /* addresses/CIDRs allowed to send PROXY headers */
	unsigned proxy_trusted_count;
	/* storage */
	char *store_fsync;           /* "syncfs" (default) or "fsync" (per file) */
	unsigned commit_batch;       /* max messages per group commit (256) */
	/* logging */
	char *log_level;             /* "info" */
	bool log_syslog;
	/* POP3 (group pop3 = { ... }) */
	struct {
		unsigned expire_days;           /* delete messages retrieved this many days ago
						   (0 = never; advertised as CAPA EXPIRE) */
		bool delete_to_trash;           /* DELE moves to Trash instead of expunging */
		bool plaintext_auth_loopback;   /* USER/PASS and AUTH without TLS from loopback */
	} pop3;
	/* IMAP (group imap = { ... }) */
	struct {
		bool plaintext_auth_loopback;   /* LOGIN and AUTHENTICATE without TLS from loopback */
		unsigned connections_per_user;  /* logged-in sessions of one user from one client
						   address (Dovecot's mail_max_userip_connections);
						   0 = no limit */
	} imap;
	/* inbound email authentication (group mailauth = { ... }; docs/spf.md, docs/dkim.md,
	 * docs/dmarc.md) */
	struct {
		bool spf;                       /* check SPF on the MX port (true) */
		bool dkim;                      /* verify DKIM on the MX port (true) */
		bool dmarc;                     /* evaluate DMARC on the MX port (true) */
		bool dmarc_enforce;             /* apply its disposition (true); false:
						   record only */
		/* dmarc_overrides = ( { domain = "..."; action = "..."; }, ... ):
		 * the action replacing the disposition of failing mail whose From
		 * domain, or its organisational domain, is domain (lower case, no
		 * trailing dot) */
		struct config_dmarc_override {
			char *domain;
			enum config_dmarc_action {
				CONFIG_DMARC_NONE,
				CONFIG_DMARC_QUARANTINE,
				CONFIG_DMARC_REJECT,
			} action;
		} *dmarc_override;
		unsigned dmarc_override_count;
		bool arc;                       /* verify ARC chains on the MX port (true;
						   docs/arc.md) */
		/* arc_trusted_sealers = [ "lists.example.org", ... ]: d= of the
		 * newest ARC-Seal whose passing chain lifts a failed DMARC's
		 * reject or quarantine (lower case, no trailing dot) */
		char *arc_trusted_sealer[CONFIG_MAX_ARC_SEALERS];
		unsigned arc_trusted_sealer_count;
	} mailauth;
	/* DKIM signing of outbound mail (group dkim = { ... }; docs/dkim.md) */
	struct {
		bool sign;                      /* sign mail from our domains (true) */
		unsigned rotation_grace;        /* seconds a replaced key stays published (7 days) */
		unsigned check_interval;        /* seconds between DNS checks of pending keys (1 h) */
	} dkim;
	/* DNS resolver (group dns = { ... }; docs/dns-resolver.md) */
	struct {
		char *mode;                     /* "system" (default), "upstream" or "stub" */
		char *upstream[CONFIG_MAX_DNS_SERVERS];  /* "ADDR" or "ADDR@PORT" */
		unsigned upstream_count;
		struct config_dns_stub {
			char *zone;             /* "example.test", "." for every name */
			char *servers[CONFIG_MAX_DNS_SERVERS];
			unsigned server_count;
		} stub[CONFIG_MAX_DNS_STUBS];
		unsigned stub_count;
		bool dnssec;                    /* validate (true) */
		char *trust_anchor_file;        /* absolute path, or NULL: the root key of
						   dns-root-data in system/upstream mode */
		unsigned timeout;               /* seconds per lookup (10) */
	} dns;
	/* outbound queue (group queue = { ... }; docs/delivery.md) */
	struct {
		unsigned retry_min;             /* first retry after (300 s), doubling ... */
		unsigned retry_max;             /* ... up to (3600 s) */
		unsigned max_age;               /* give up and bounce after (5 days) */
		unsigned warn_after;            /* delay DSN after (4 h; 0 = never) */
		unsigned scan_interval;         /* seconds between queue scans (5) */
		unsigned connections;           /* deliveries in flight (20) */
		unsigned connections_per_domain;/* to one destination (5) */
		unsigned remote_port;           /* the SMTP port of MX hosts (25) */
		struct config_route {
			char *domain;           /* recipient domain */
			char *host;             /* next hop: a name or an IP address */
			unsigned port;          /* 25 */
		} route[CONFIG_MAX_ROUTES];
		unsigned route_count;
		char *ca_file;                  /* CA bundle for verified outbound SMTP TLS
						   (smarthost, MTA-STS enforce); NULL: system */
		/* all mail not routed by queue.routes goes here (group smarthost) */
		struct {
			char *host;             /* NULL: no smarthost (MX delivery) */
			unsigned port;          /* 587; STARTTLS required and verified */
			char *user;             /* AUTH user; NULL: no AUTH */
			char *password_file;    /* first line is the password */
			char *tls;              /* "starttls" or "implicit"; NULL: not set */
			bool implicit_tls;      /* TLS from the first byte (RFC 8314 3): tls =
						   "implicit", or port 465 with tls not set */
		} smarthost;
		/* per-destination rate limits (queue.rate_limits); an entry names
		   a recipient domain or an MX host pattern, never both */
		struct config_rate_limit {
			char *domain;           /* recipient domain (lowercase), or NULL */
			char *mx;               /* "*.outlook.com" or a host name (lowercase),
						   or NULL */
			unsigned messages;      /* at most this many messages ... */
			unsigned seconds;       /* ... per window of this many seconds */
		} rate_limit[CONFIG_MAX_RATE_LIMITS];
		unsigned rate_limit_count;
		/* MTA-STS, RFC 8461 (group mta_sts) */
		struct {
			bool enabled;           /* true */
			char *ca_file;          /* CA bundle for the HTTPS policy fetch; NULL: system */
			unsigned port;          /* HTTPS port of mta-sts.DOMAIN (443; tests only) */
			unsigned timeout;       /* seconds per policy fetch (10) */
		} mta_sts;
	} queue;
	/* Sender Rewriting Scheme for forwarding (group srs = { ... };
	   docs/bounces-and-forwarding.md) */
	struct {
		char *secrets_file;             /* one secret per line, the first signs;
						   NULL = forward without SRS */
		char *domain;                   /* domain of SRS addresses; NULL = hostname */
		unsigned max_age;               /* days an SRS address is honoured (21) */
	} srs;
	/* SMTP TLS reporting, RFC 8460 (group tlsrpt = { ... };
	   docs/delivery.md "TLS reporting") */
	struct {
		bool enabled;                   /* collect and send (true) */
		char *organization;             /* organization-name; NULL = hostname */
		char *contact;                  /* contact-info; NULL = postmaster@hostname */
		char *sender;                   /* From of report mails; NULL =
						   noreply-tlsrpt@hostname */
		unsigned send_hour;             /* UTC hour of the daily reports (1) */
		unsigned keep_days;             /* results kept this many days (14) */
		char *ca_file;                  /* CA bundle for https: reports; NULL: system */
		unsigned timeout;               /* seconds per HTTPS POST (30) */
	} tlsrpt;
	/* DMARC aggregate reports, RFC 7489 7.2 (group dmarc_reports = { ... };
	   docs/dmarc.md "Aggregate reports") */
	struct {
		bool enabled;                   /* record and send (true) */
		char *organization;             /* org_name; NULL = hostname */
		char *contact;                  /* email; NULL = postmaster@hostname */
		char *sender;                   /* From of report mails; NULL =
						   noreply-dmarc@hostname */
		unsigned send_hour;             /* UTC hour of the daily reports (1) */
		unsigned keep_days;             /* results and received reports kept (14) */
		bool import;                    /* import received reports from the
						   report mailboxes in the server (true) */
		unsigned import_interval;       /* seconds between two looks (300) */
		char *import_addresses[CONFIG_MAX_DMARC_IMPORT]; /* report mailboxes besides
						   dmarc-reports@ each local domain */
		unsigned import_address_count;
	} dmarc_reports;
	/* local submission, `tern sendmail` (group sendmail = { ... };
	   docs/delivery.md "Local submission") */
	struct {
		char *socket;                   /* absolute path of the Unix socket; default
						   DATA_DIR/../run/submit.sock; "" = disabled */
		char *default_domain;           /* unmapped local users submit as
						   LOGIN@default_domain (if that user exists), and
						   unqualified recipients get it; NULL = hostname */
		struct config_sendmail_user {
			char *uid;              /* a login name or a numeric uid */
			char *address;          /* the Tern user it submits as */
		} users[CONFIG_MAX_SENDMAIL_USERS];
		unsigned user_count;
	} sendmail;
	/* the MTA-STS policy this server publishes for its domains over HTTPS
	   (group mta_sts = { ... }; docs/http.md, RFC 8461 3.2) */
	struct {
		char *mode;                     /* "testing" (default), "enforce" or "none" */
		char *mx[CONFIG_MAX_MTA_STS_MX];  /* mx patterns ("mail.example.com",
						   "*.example.com"); none given = hostname */
		unsigned mx_count;
		unsigned max_age;               /* seconds (604800, one week) */
	} mta_sts;
};

/* Parse path into a new config.  On error returns NULL and sets *error_r
 * (malloc'd, caller frees) to "FILE:LINE: what is wrong (expected ...)". */
struct config *config_load(const char *path, char **error_r);
/* Same, from a string (used by the fuzz target); name is used in errors. */
struct config *config_parse_string(const char *text, const char *name, char **error_r);
void config_free(struct config **cfg);

/* Write a commented tern.conf for `tern init`.  bind may be empty (all
 * addresses).  Returns 0, or -1 with *error_r. */
int config_write_template(const char *path, const char *hostname,
			  const char *const *bind, unsigned bind_count, int port_offset,
			  const char **error_r);

/* The same with the service user written into the file (NULL = "tern").
 * With path NULL, only checks the arguments (0, or -1 with *error_r). */
int config_write_template_user(const char *path, const char *hostname, const char *user,
			       const char *const *bind, unsigned bind_count, int port_offset,
			       const char **error_r);

/* Read cfg->srs.secrets_file: one secret per line, the first signs and all
 * verify; blank lines and lines starting with '#' are skipped.  Returns
 * the number of secrets (>= 1) with a malloc'd NULL-terminated array in
 * *secrets_r (free with config_srs_secrets_free), 0 when SRS is not
 * configured, or -1 with *error_r (malloc'd): unreadable, or no secret. */
int config_srs_secrets_load(const struct config *cfg, char ***secrets_r, char **error_r);
void config_srs_secrets_free(char ***secrets);

/* Write a new random SRS secret file at path (mode 0600, never
 * overwriting).  Returns 0, or -1 with *error_r (malloc'd). */
int config_srs_secret_create(const char *path, char **error_r);

/* Default config file: $TERN_CONF, else /etc/tern/tern.conf */
const char *config_default_path(void);

/* Parse a size: decimal digits with an optional K, M, G or T suffix
 * (binary multiples, case-insensitive, an optional trailing "B" allowed:
 * "500M", "2G", "0").  Returns 0 and *bytes_r, or -1 for anything else,
 * including overflow past INT64_MAX. */
int config_parse_size(const char *s, uint64_t *bytes_r);

/* s[0..len) is an RFC 1123 2.1 host name: LDH labels of 1-63 octets, no
 * leading or trailing hyphen, 253 octets at most (no trailing dot). */
bool config_hostname_valid(const char *s, size_t len);

#endif
