/* `tern sendmail` (also the binary run as "sendmail" or "mailq"): the
 * sendmail command line that cron, PHP's mail(), git send-email and
 * monitoring tools call, as a client of the local submission socket.
 *
 *   tern [-c FILE] sendmail [OPTIONS] [--] [RECIPIENT...] < message
 *
 * Options: -t (recipients from To/Cc/Bcc too), -f ADDR / -r ADDR
 * (envelope sender; "<>" or "" = null sender), -F NAME (display name of
 * an added From:), -i / -oi (a "." line does not end the message), -bm
 * (deliver, the default), -bp (list the queue, as mailq), -B 8BITMIME|7BIT,
 * -N NOTIFY, -R full|hdrs, -V ENVID (RFC 3461 DSN requests), -v (show the
 * SMTP dialogue), -C FILE (config file).  Options other sendmails take
 * that mean nothing here (-oe*, -od*, -om, -U, -n, -m, -e*, -h N, -L
 * LABEL, -O X, -G) are accepted and ignored.  Anything else is refused.
 *
 * The message is read whole (up to limits.message_size), completed
 * (sendmail-message.c), then submitted over the Unix socket
 * (sendmail.socket) in one SMTP transaction; the server knows who we are
 * from the socket's peer credentials (serve-sendmail.c).  Either every
 * recipient is accepted and the message is sent, or nothing is and the
 * exit status says why: never a silent drop.
 * Exit status (sysexits.h, as sendmail programs use): 0 accepted,
 * EX_USAGE bad options, EX_DATAERR bad message or address, EX_NOUSER a
 * recipient refused, EX_NOPERM this local user may not send, EX_TEMPFAIL
 * server down or a temporary refusal (try again later), EX_CONFIG
 * unreadable config, EX_PROTOCOL an unexpected reply.
 * RFC 5321 (the dialogue, 4.5.2 dot-stuffing), RFC 6152 (8BITMIME),
 * RFC 6531 (SMTPUTF8), RFC 3461 (DSN parameters). */
#include "cli/cli.h"
#include "cli/sendmail.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define SENDMAIL_REPLY_MAX 65536    /* one whole (multi-line) reply */
#define SENDMAIL_TIMEOUT 300        /* seconds per read or write */

struct sendmail_opts {
	bool extract;          /* -t */
	bool dots_off;         /* -i, -oi */
	bool verbose;          /* -v */
	bool list_queue;       /* -bp, mailq */
	const char *sender;    /* -f, -r */
	const char *full_name; /* -F */
	const char *body;      /* -B: "8BITMIME" or "7BIT" */
	const char *notify;    /* -N */
	const char *ret;       /* -R */
	const char *envid;     /* -V */
	const char *config;    /* -C */
};

static int sm_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int sm_error(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("tern sendmail: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

/* The value of an option: attached ("-fADDR") or the next argument. */
static const char *opt_value(int argc, char **argv, int *i, const char *arg)
{
	if (arg[2] != '\0')
		return arg + 2;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

/* Parse the options; *first_rcpt_r is the index of the first recipient.
 * Returns 0, or an exit status after printing the error. */
static int parse_options(int argc, char **argv, struct sendmail_opts *o, int *first_rcpt_r)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		switch (a[1]) {
		case 't':
		case 'i':
		case 'v':
		case 'U':
		case 'n':
		case 'm':
		case 'G':
			if (a[2] != '\0')
				return sm_error(EX_USAGE, "unknown option '%s'", a);
			o->extract |= a[1] == 't';
			o->dots_off |= a[1] == 'i';
			o->verbose |= a[1] == 'v';
			break;
		case 'f':
		case 'r':
		case 'F':
		case 'B':
		case 'N':
		case 'R':
		case 'V':
		case 'C':
		case 'h':
		case 'L':
		case 'O':
			v = opt_value(argc, argv, &i, a);
			if (v == NULL)
				return sm_error(EX_USAGE, "option -%c needs a value", a[1]);
			if (a[1] == 'f' || a[1] == 'r')
				o->sender = v;
			else if (a[1] == 'F')
				o->full_name = v;
			else if (a[1] == 'B')
				o->body = v;
			else if (a[1] == 'N')
				o->notify = v;
			else if (a[1] == 'R')
				o->ret = v;
			else if (a[1] == 'V')
				o->envid = v;
			else if (a[1] == 'C')
				o->config = v;
			break;
		case 'o':
			/* -oi; the other -oX (error mode, delivery mode, ...) are
			 * sendmail tuning with no meaning here */
			if (a[2] == '\0')
				return sm_error(EX_USAGE, "option -o needs a letter (like -oi)");
			if (strcmp(a, "-oi") == 0)
				o->dots_off = true;
			break;
		case 'e':
			break;   /* -em, -ep...: error reporting mode, ignored */
		case 'b':
			if (strcmp(a, "-bm") == 0)
				o->list_queue = false;
			else if (strcmp(a, "-bp") == 0)
				o->list_queue = true;
			else if (strcmp(a, "-bs") == 0)
				return sm_error(EX_USAGE, "-bs (SMTP on stdin) is not supported: submit "
						"with SMTP to the submission port instead");
			else if (strcmp(a, "-bi") == 0)
				return sm_error(EX_USAGE, "-bi (newaliases) is not needed: aliases live "
						"in the store, see `tern alias`");
			else
				return sm_error(EX_USAGE, "unsupported mode '%s' (-bm delivers, -bp "
						"lists the queue)", a);
			break;
		case 'q':
			return sm_error(EX_USAGE, "'%s' is not supported: use `tern queue flush`", a);
		default:
			return sm_error(EX_USAGE, "unknown option '%s'", a);
		}
	}
	*first_rcpt_r = i;
	if (o->body != NULL && strcasecmp(o->body, "8BITMIME") != 0 &&
	    strcasecmp(o->body, "7BIT") != 0)
		return sm_error(EX_USAGE, "-B takes 8BITMIME or 7BIT, not '%s'", o->body);
	if (o->ret != NULL && strcasecmp(o->ret, "full") != 0 && strcasecmp(o->ret, "hdrs") != 0)
		return sm_error(EX_USAGE, "-R takes full or hdrs, not '%s'", o->ret);
	if (o->notify != NULL) {
		/* RFC 3461 4.1: NEVER, or a list of SUCCESS, FAILURE, DELAY */
		char *copy = xstrdup(o->notify), *save = NULL;
		bool ok = true, never = false, other = false;
		for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
			if (strcasecmp(t, "never") == 0)
				never = true;
			else if (strcasecmp(t, "success") == 0 || strcasecmp(t, "failure") == 0 ||
				 strcasecmp(t, "delay") == 0)
				other = true;
			else
				ok = false;
		}
		free(copy);
		if (!ok || (never && other) || (!never && !other))
			return sm_error(EX_USAGE, "-N takes never, or success,failure,delay (any of "
					"them), not '%s'", o->notify);
	}
	if (o->envid != NULL) {
		for (const char *c = o->envid; *c != '\0'; c++)
			if ((unsigned char)*c < '!' || (unsigned char)*c > '~')
				return sm_error(EX_USAGE, "-V: the envelope id must be printable ASCII "
						"without spaces");
		if (strlen(o->envid) > 100)
			return sm_error(EX_USAGE, "-V: the envelope id is longer than 100 characters");
	}
	return 0;
}

/* ---- the SMTP dialogue over the socket ---- */

struct sm_conn {
	int fd;
	bool verbose;
	struct buf in;
	struct buf text;       /* the last reply's lines, for messages */
	bool ext_8bit, ext_utf8, ext_dsn, ext_size;
};

static int sm_write(struct sm_conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(c->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int sm_command(struct sm_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int sm_command(struct sm_conn *c, const char *fmt, ...)
{
	struct buf b;
	va_list ap;
	int ret;

	buf_init(&b, 1 << 16);
	va_start(ap, fmt);
	ret = buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (c->verbose)
		fprintf(stderr, ">>> %s\n", buf_cstr(&b));
	if (ret == 0)
		ret = buf_append(&b, "\r\n", 2);
	if (ret == 0)
		ret = sm_write(c, b.data, b.len);
	buf_free(&b);
	return ret;
}

/* Read one reply (RFC 5321 4.2: lines "DDD-text", the last "DDD text").
 * Returns the code, or -1 when the connection broke or the reply is
 * malformed.  The text (lines joined by "; ") is in c->text. */
static int sm_reply(struct sm_conn *c)
{
	int code = -1;

	buf_reset(&c->text);
	for (;;) {
		char *nl = c->in.len > 0 ? memchr(c->in.data, '\n', c->in.len) : NULL;
		if (nl == NULL) {
			char tmp[4096];
			ssize_t r = read(c->fd, tmp, sizeof(tmp));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0 || buf_append(&c->in, tmp, (size_t)r) < 0)
				return -1;
			continue;
		}
		size_t len = (size_t)(nl - c->in.data);
		char *line = xstrndup(c->in.data, len > 0 && nl[-1] == '\r' ? len - 1 : len);
		buf_consume(&c->in, len + 1);
		if (c->verbose)
			fprintf(stderr, "<<< %s\n", line);
		if (strlen(line) < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
		    line[1] > '9' || line[2] < '0' || line[2] > '9' ||
		    (line[3] != '\0' && line[3] != ' ' && line[3] != '-')) {
			free(line);
			return -1;
		}
		int this = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (code >= 0 && this != code) {
			free(line);
			return -1;
		}
		code = this;
		if (c->text.len > 0)
			buf_append_str(&c->text, "; ");
		buf_append_str(&c->text, line);   /* capped: the end is cut, never overflows */
		if (strlen(line) > 4) {   /* EHLO keywords (RFC 5321 4.1.1.1) */
			const char *ext = line + 4;
			c->ext_8bit |= strcasecmp(ext, "8BITMIME") == 0;
			c->ext_utf8 |= strcasecmp(ext, "SMTPUTF8") == 0;
			c->ext_dsn |= strcasecmp(ext, "DSN") == 0;
			c->ext_size |= strcasecmp(ext, "SIZE") == 0 || strncasecmp(ext, "SIZE ", 5) == 0;
		}
		bool last = line[3] != '-';
		free(line);
		if (last)
			return code;
	}
}

/* The exit status for a refusal: 4xx temporary, 5xx per stage. */
static int refusal_status(int code, int permanent_status)
{
	return code >= 400 && code < 500 ? EX_TEMPFAIL : permanent_status;
}

static bool has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

/* Send the message as DATA content: dot-stuffed (RFC 5321 4.5.2), ended
 * by CRLF "." CRLF.  msg has CRLF line ends and ends with one. */
static int send_data(struct sm_conn *c, const struct buf *msg)
{
	struct buf out;
	const char *p = buf_cstr(msg), *end = p + msg->len;
	int ret = 0;

	buf_init(&out, (size_t)1 << 20);
	while (p < end && ret == 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl != NULL ? nl + 1 : end;
		if (*p == '.' && buf_append(&out, ".", 1) < 0)
			ret = -1;
		if (out.len + (size_t)(next - p) > out.max) {
			ret = sm_write(c, out.data, out.len);
			buf_reset(&out);
		}
		if (ret == 0 && (size_t)(next - p) > out.max)
			ret = sm_write(c, p, (size_t)(next - p));   /* a huge line: straight out */
		else if (ret == 0)
			buf_append(&out, p, (size_t)(next - p));
		p = next;
	}
	if (ret == 0 && buf_append_str(&out, ".\r\n") == 0)
		ret = sm_write(c, out.data, out.len);
	buf_free(&out);
	return ret;
}

/* The envelope sender: -f as given (qualified, brackets dropped), "" for
 * the null sender, else the user's own address. */
static int envelope_sender(const struct config *cfg, const struct sendmail_opts *o,
			   const char *own, char **sender_r)
{
	struct sendmail_rcpts one = { 0 };
	const char *error = NULL;

	if (o->sender == NULL) {
		*sender_r = xstrdup(own != NULL ? own : "");
		return 0;
	}
	if (o->sender[0] == '\0' || strcmp(o->sender, "<>") == 0) {
		*sender_r = xstrdup("");
		return 0;
	}
	if (sendmail_rcpts_add(&one, o->sender, sendmail_default_domain(cfg), &error) < 0 ||
	    one.count != 1) {
		sendmail_rcpts_free(&one);
		return sm_error(EX_DATAERR, "-f %s: %s", o->sender,
				error != NULL ? error : "give one address");
	}
	*sender_r = xstrdup(one.v[0]);
	sendmail_rcpts_free(&one);
	return 0;
}

static int submit(const struct config *cfg, const struct sendmail_opts *o, const char *sender,
		  const struct sendmail_rcpts *rcpts, const struct buf *msg)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *path = cfg->sendmail.socket;
	struct timeval tv = { SENDMAIL_TIMEOUT, 0 };
	struct sm_conn c = { .verbose = o->verbose };
	bool eight = o->body != NULL ? strcasecmp(o->body, "8BITMIME") == 0
				     : has_8bit(buf_cstr(msg), msg->len);
	bool utf8 = has_8bit(sender, strlen(sender));
	int code, status = EX_PROTOCOL;

	for (size_t i = 0; i < rcpts->count; i++)
		utf8 |= has_8bit(rcpts->v[i], strlen(rcpts->v[i]));
	if (path[0] == '\0')
		return sm_error(EX_UNAVAILABLE, "local submission is turned off (sendmail.socket = "
				"\"\" in %s)", cfg->path);
	if (strlen(path) >= sizeof(sun.sun_path))
		return sm_error(EX_CONFIG, "sendmail.socket %s: path too long", path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	c.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c.fd < 0)
		return sm_error(EX_OSERR, "socket: %s", strerror(errno));
	if (connect(c.fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;
		close(c.fd);
		return sm_error(EX_TEMPFAIL, "cannot connect to %s: %s (is `tern serve` running?); "
				"the message was not sent", path, strerror(e));
	}
	setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	buf_init(&c.in, SENDMAIL_REPLY_MAX);
	buf_init(&c.text, 4096);

	code = sm_reply(&c);
	if (code != 220) {
		if (code >= 400)
			status = sm_error(refusal_status(code, EX_NOPERM), "the server refused this "
					  "user: %s", buf_cstr(&c.text));
		else
			sm_error(status, "no greeting from %s", path);
		goto out;
	}
	if (sm_command(&c, "EHLO localhost") < 0 || (code = sm_reply(&c)) != 250)
		goto broken;
	if (eight && !c.ext_8bit) {
		status = sm_error(EX_DATAERR, "the server does not take 8-bit messages");
		goto quit;
	}
	if (utf8 && !c.ext_utf8) {
		status = sm_error(EX_DATAERR, "the server does not take UTF-8 addresses");
		goto quit;
	}
	{
		struct buf mail;
		buf_init(&mail, 4096);
		buf_printf(&mail, "MAIL FROM:<%s>", sender);
		if (eight || o->body != NULL)
			buf_printf(&mail, " BODY=%s", eight ? "8BITMIME" : "7BIT");
		if (utf8)
			buf_append_str(&mail, " SMTPUTF8");
		if (c.ext_size)
			buf_printf(&mail, " SIZE=%zu", msg->len);
		if (c.ext_dsn && o->ret != NULL)
			buf_printf(&mail, " RET=%s", strcasecmp(o->ret, "full") == 0 ? "FULL" : "HDRS");
		if (c.ext_dsn && o->envid != NULL) {
			/* xtext (RFC 3461 4): '+', '=' and others as +XX */
			buf_append_str(&mail, " ENVID=");
			for (const char *e = o->envid; *e != '\0'; e++) {
				if (*e == '+' || *e == '=')
					buf_printf(&mail, "+%02X", (unsigned char)*e);
				else
					buf_append(&mail, e, 1);
			}
		}
		int r = sm_command(&c, "%s", buf_cstr(&mail));
		buf_free(&mail);
		if (r < 0 || (code = sm_reply(&c)) < 0)
			goto broken;
	}
	if (code != 250) {
		status = sm_error(refusal_status(code, EX_DATAERR), "sender <%s> refused: %s",
				  sender, buf_cstr(&c.text));
		goto quit;
	}
	/* all recipients or none: a partial send would make the caller's
	 * retry a duplicate for the others */
	bool refused = false;
	for (size_t i = 0; i < rcpts->count; i++) {
		int r;
		if (c.ext_dsn && o->notify != NULL)
			r = sm_command(&c, "RCPT TO:<%s> NOTIFY=%s", rcpts->v[i], o->notify);
		else
			r = sm_command(&c, "RCPT TO:<%s>", rcpts->v[i]);
		if (r < 0 || (code = sm_reply(&c)) < 0)
			goto broken;
		if (code != 250 && code != 251) {
			int st = refusal_status(code, EX_NOUSER);
			sm_error(st, "recipient <%s> refused: %s", rcpts->v[i], buf_cstr(&c.text));
			if (!refused || st == EX_TEMPFAIL)
				status = st;
			refused = true;
		}
	}
	if (refused) {
		fprintf(stderr, "tern sendmail: the message was not sent\n");
		goto quit;
	}
	if (sm_command(&c, "DATA") < 0 || (code = sm_reply(&c)) < 0)
		goto broken;
	if (code != 354) {
		status = sm_error(refusal_status(code, EX_DATAERR), "DATA refused: %s",
				  buf_cstr(&c.text));
		goto quit;
	}
	if (send_data(&c, msg) < 0 || (code = sm_reply(&c)) < 0)
		goto broken;
	if (code != 250) {
		status = sm_error(refusal_status(code, EX_DATAERR), "the message was refused: %s",
				  buf_cstr(&c.text));
		goto quit;
	}
	status = EX_OK;
quit:
	if (sm_command(&c, "QUIT") == 0)
		(void)sm_reply(&c);
	goto out;
broken:
	status = sm_error(EX_TEMPFAIL, "the connection to %s broke or the server answered "
			  "nonsense%s%s; the message was not sent", path,
			  c.text.len > 0 ? ": " : "", buf_cstr(&c.text));
out:
	close(c.fd);
	buf_free(&c.in);
	buf_free(&c.text);
	return status;
}

int cli_sendmail(const char *config_path, int argc, char **argv, bool mailq)
{
	struct sendmail_opts o = { .list_queue = mailq };
	struct sendmail_rcpts rcpts = { 0 };
	struct sendmail_input in;
	struct buf raw, msg;
	struct config *cfg;
	char *error = NULL, *own = NULL, *login = NULL, *sender = NULL;
	const char *err = NULL;
	bool configured;
	int first = 1, status;

	status = parse_options(argc, argv, &o, &first);
	if (status != 0)
		return status;
	if (o.config != NULL)
		config_path = o.config;
	cfg = config_load(config_path, &error);
	if (cfg == NULL) {
		status = sm_error(EX_CONFIG, "%s", error);
		free(error);
		return status;
	}
	log_set_level(LOG_LEVEL_WARN);
	if (o.list_queue) {
		if (first < argc) {
			config_free(&cfg);
			return sm_error(EX_USAGE, "-bp takes no recipients");
		}
		char *qargv[] = { (char *)"queue", (char *)"list", NULL };
		status = cli_queue(cfg, 2, qargv);
		config_free(&cfg);
		return status;
	}
	signal(SIGPIPE, SIG_IGN);
	own = sendmail_address_for_uid(cfg, getuid(), &login, &configured);
	for (int i = first; i < argc; i++) {
		if (sendmail_rcpts_add(&rcpts, argv[i], sendmail_default_domain(cfg), &err) < 0) {
			status = sm_error(EX_DATAERR, "recipient '%s': %s", argv[i], err);
			goto out;
		}
	}
	status = envelope_sender(cfg, &o, own, &sender);
	if (status != 0)
		goto out;
	if (!o.extract && rcpts.count == 0) {
		status = sm_error(EX_USAGE, "no recipients: give addresses as arguments, or -t to "
				  "take them from the To, Cc and Bcc fields");
		goto out;
	}
	/* the whole message first: -t needs the header, and a message cut by
	 * a dying writer must never be half-sent */
	buf_init(&raw, cfg->limits.message_size);
	sendmail_input_init(&in, &raw, !o.dots_off);
	for (;;) {
		char chunk[65536];
		ssize_t r = read(STDIN_FILENO, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			status = sm_error(EX_IOERR, "reading the message: %s", strerror(errno));
			break;
		}
		if (r == 0) {
			if (sendmail_input_finish(&in) < 0)
				status = sm_error(EX_DATAERR, "%s; the message was not sent", in.error);
			break;
		}
		if (sendmail_input_feed(&in, chunk, (size_t)r) < 0) {
			status = sm_error(EX_DATAERR, "%s (%zu bytes); the message was not sent",
					  in.error, cfg->limits.message_size);
			break;
		}
		if (in.done)
			break;
	}
	if (status != 0) {
		buf_free(&raw);
		goto out;
	}
	buf_init(&msg, cfg->limits.message_size + 65536);
	struct sendmail_prep prep = {
		.from = own,
		.full_name = o.full_name,
		.hostname = cfg->hostname,
		.default_domain = sendmail_default_domain(cfg),
		.extract = o.extract,
		.now = (long long)time(NULL),
	};
	if (sendmail_prepare(&prep, buf_cstr(&raw), raw.len, &msg, &rcpts, &err) < 0)
		status = sm_error(EX_DATAERR, "%s; the message was not sent", err);
	else if (rcpts.count == 0)
		status = sm_error(EX_USAGE, "no recipients: -t found no addresses in To, Cc or Bcc");
	else
		status = submit(cfg, &o, sender, &rcpts, &msg);
	buf_free(&raw);
	buf_free(&msg);
out:
	sendmail_rcpts_free(&rcpts);
	free(sender);
	free(own);
	free(login);
	config_free(&cfg);
	return status;
}
