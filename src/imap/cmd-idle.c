/* IDLE (RFC 2177, RFC 9051 6.3.13): "+ idling", then mailbox updates are
 * pushed as soon as the notification hub reports them (EXISTS, EXPUNGE,
 * FETCH FLAGS: every update is allowed while IDLE is in progress), until
 * the client sends DONE.  Anything else than DONE ends IDLE with BAD.
 * The autologout timer keeps running: clients re-issue IDLE within 30
 * minutes (RFC 2177 recommends every 29). */
#include "imap/imap-private.h"
#include "lib/log.h"

void imap_cmd_idle(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->nargs != 0) {
		imap_bad(s, "IDLE takes no arguments");
		return;
	}
	/* updates already known go out first */
	if (s->view != NULL)
		imap_view_sync(s, true);
	s->idling = true;
	imap_send_raw(s, "+ idling\r\n", 10);
}

void imap_idle_push(struct imap_session *s)
{
	if (!s->idling || s->view == NULL || s->c.closed)
		return;
	imap_view_sync(s, true);
}

void imap_idle_input(struct imap_session *s, const struct imap_command *line)
{
	s->idling = false;
	if (line->cmd == IMAP_CMD_DONE)
		imap_tagged(s, "OK", "IDLE terminated");
	else
		imap_bad(s, "Expected DONE to end IDLE");
}
