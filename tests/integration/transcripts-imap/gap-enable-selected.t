# ENABLE is an authenticated-state command (RFC 9051 6.3.1, RFC 5161 3.1;
# RFC 9051 6.4 does not list it for the selected state): BAD while a
# mailbox is selected, accepted again once it is closed.
@port imaps
S: * OK *
C: a1 LOGIN @USER@ pw-Secret-1
S: a1 OK *
C: a2 ENABLE CONDSTORE
S: * ENABLED CONDSTORE
S: a2 OK ENABLE completed
C: a3 SELECT INBOX
DRAIN~ ^\* 
S: a3 OK [READ-WRITE] SELECT completed
C: a4 ENABLE QRESYNC
S: a4 BAD ENABLE not allowed in selected state
C: a5 EXAMINE INBOX
DRAIN~ ^\* 
S: a5 OK [READ-ONLY] EXAMINE completed
C: a6 ENABLE IMAP4rev2
S: a6 BAD ENABLE not allowed in selected state
# still rev1: the session did not switch
C: a7 NOOP
S: a7 OK NOOP completed
C: a8 UNSELECT
S: a8 OK *
C: a9 ENABLE QRESYNC
S: * ENABLED QRESYNC
S: a9 OK ENABLE completed
C: a10 LOGOUT
S: * BYE *
S: a10 OK *
