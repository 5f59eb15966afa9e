# STATUS RECENT (RFC 3501 6.3.10): messages no SELECT has claimed yet are
# recent (as Dovecot reports them); EXAMINE claims nothing; once this
# session's SELECT has claimed them they are its own \Recent, and after
# UNSELECT nobody's.  An APPENDed message is recent until a SELECT.
# (The runner delivers two messages to INBOX first.)
@port imaps
S: * OK *
C: a1 LOGIN @USER@ pw-Secret-1
S: a1 OK *
C: a2 STATUS INBOX (RECENT MESSAGES)
S: * STATUS "INBOX" (MESSAGES 2 RECENT 2)
S: a2 OK STATUS completed
C: a3 EXAMINE INBOX
DRAIN~ ^\* 
S: a3 OK [READ-ONLY] EXAMINE completed
C: a4 STATUS INBOX (RECENT)
S: * STATUS "INBOX" (RECENT 2)
S: a4 OK STATUS completed
C: a5 SELECT INBOX
DRAIN~ ^\* 
S: a5 OK [READ-WRITE] SELECT completed
C: a6 STATUS INBOX (RECENT)
S: * STATUS "INBOX" (RECENT 2)
S: a6 OK STATUS completed
C: a7 UNSELECT
S: a7 OK *
C: a8 STATUS INBOX (RECENT)
S: * STATUS "INBOX" (RECENT 0)
S: a8 OK STATUS completed
C= a9 APPEND Drafts {22+}\r\nSubject: draft\r\n\r\nhi\r\n\r\n
S: a9 OK *
C: a10 STATUS Drafts (MESSAGES RECENT)
S: * STATUS "Drafts" (MESSAGES 1 RECENT 1)
S: a10 OK STATUS completed
C: a11 SELECT Drafts
DRAIN~ ^\* 
S: a11 OK [READ-WRITE] SELECT completed
C: a12 STATUS Drafts (RECENT)
S: * STATUS "Drafts" (RECENT 1)
S: a12 OK STATUS completed
C: a13 SELECT INBOX
DRAIN~ ^\* 
S: a13 OK [READ-WRITE] SELECT completed
C: a14 STATUS Drafts (RECENT)
S: * STATUS "Drafts" (RECENT 0)
S: a14 OK STATUS completed
C: a15 LOGOUT
S: * BYE *
S: a15 OK *
