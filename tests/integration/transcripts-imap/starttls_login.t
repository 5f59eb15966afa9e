# STARTTLS, then LOGIN (wrong and right password), capabilities after login.
@port imap
S: * OK *
C: a1 STARTTLS
S: a1 OK Begin TLS negotiation now
TLS
C: a2 CAPABILITY
S: * CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN AUTH=SCRAM-SHA-256 SASL-IR LITERAL+ *
S: a2 OK CAPABILITY completed
C: a3 STARTTLS
S: a3 BAD *
C: a4 LOGIN @USER@ wrong-password
S: a4 NO [AUTHENTICATIONFAILED] Authentication failed
C: a5 LOGIN "@USER@" {11}
S: + OK
C: pw-Secret-1
S: a5 OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ ENABLE ID IDLE NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN SPECIAL-USE *APPENDLIMIT=*] Logged in
C: a6 LOGIN @USER@ pw-Secret-1
S: a6 BAD Already logged in
C: a7 NAMESPACE
S: * NAMESPACE (("" "/")) NIL NIL
S: a7 OK NAMESPACE completed
C: a8 ENABLE CONDSTORE
S: * ENABLED CONDSTORE
S: a8 OK ENABLE completed
C: a9 LOGOUT
S: * BYE Logging out
S: a9 OK LOGOUT completed
CLOSED
