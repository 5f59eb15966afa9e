# ENABLE IMAP4rev2: UTF-8 names, LIST in SELECT, no RECENT, ESEARCH.
@port imaps
S: * OK *
C: a1 LOGIN @USER@ pw-Secret-1
S: a1 OK *
C: a2 ENABLE IMAP4rev2
S: * ENABLED IMAP4rev2
S: a2 OK ENABLE completed
C: a3 CREATE Ärger
S: a3 OK * CREATE completed
C: a4 LIST "" Ä*
S: * LIST (\HasNoChildren) "/" "Ärger"
S: a4 OK LIST completed
C: a5 SELECT INBOX
S: * FLAGS *
S: * OK [PERMANENTFLAGS *
S: * 2 EXISTS
S~ ^\* OK \[UIDVALIDITY
S: * OK [UIDNEXT 3] *
S: * OK [HIGHESTMODSEQ *] *
S~ ^\* OK \[MAILBOXID \(
S: * LIST () "/" "INBOX"
S: a5 OK [READ-WRITE] SELECT completed
C: a6 SEARCH ALL
S: * ESEARCH (TAG "a6") ALL 1:2
S: a6 OK SEARCH completed
C: a7 UID SEARCH RETURN (COUNT MIN) ALL
S: * ESEARCH (TAG "a7") UID MIN 1 COUNT 2
S: a7 OK UID SEARCH completed
C: a8 SELECT Ärger
S: * OK [CLOSED] *
DRAIN~ ^\* 
S: a8 OK [READ-WRITE] SELECT completed
C: a9 LOGOUT
S: * BYE *
S: a9 OK *
