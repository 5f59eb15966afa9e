/* The hooks that make the SMTP engine a mail receiver: recipient
 * resolution against the directory, relay refusal, submission sender
 * checks, quota, and delivery into the store.  Used by the MX (port 25)
 * and submission (587, 465) listeners; the listener's role picks the
 * policy. */
#ifndef TERN_SMTP_RECEIVE_H
#define TERN_SMTP_RECEIVE_H

#include "smtp/server.h"

extern const struct smtp_hooks smtp_receive_hooks;

#endif
