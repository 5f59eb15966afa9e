# MULTIAPPEND (RFC 3502): several messages in one APPEND, all or none;
# CATENATE (RFC 4469): TEXT and URL parts (whole message, sections,
# partial), BADURL for what the user cannot read, TOOBIG, and APPEND's
# own errors (TRYCREATE, empty message, UTF8 without ENABLE).
@port imaps
S: * OK *
C: a1 LOGIN @USER@ pw-Secret-1
S: a1 OK *
C: a2 CREATE Drafts2
S: a2 OK *
C: a3 APPEND Drafts2 (\Seen) {3+}
C: one {3+}
C: two " 1-Jan-2020 10:00:00 +0000" {5+}
C: three
S~ ^a3 OK \[APPENDUID [0-9]+ 1:3\] APPEND completed$
C: a4 APPEND Drafts2 {3+}
C: ok1 {0+}
C: 
S: a4 NO Cannot append an empty message
C: a5 STATUS Drafts2 (MESSAGES)
S: * STATUS "Drafts2" (MESSAGES 3)
S: a5 OK *
C: a6 APPEND Drafts2 CATENATE (TEXT {27+}
C: Subject: forwarded part
C: 
C:  URL "/INBOX/;UID=1/;SECTION=TEXT" TEXT {6+}
C: -end
C: )
S~ ^a6 OK \[APPENDUID [0-9]+ 4\] APPEND completed$
C: a7 EXAMINE Drafts2
DRAIN~ ^\* 
S: a7 OK *
C: a8 FETCH 4 BODY.PEEK[]
S: * 4 FETCH (BODY[] {41}
S: Subject: forwarded part
S: 
S: body 1
S: -end
S: )
S: a8 OK *
C: a9 APPEND Drafts2 CATENATE (URL "/INBOX/;UID=2/;PARTIAL=0.7" URL "/INBOX/;UID=2/;SECTION=HEADER.FIELDS%20(SUBJECT)")
S: * 5 EXISTS
S: * 0 RECENT
S~ ^a9 OK \[APPENDUID [0-9]+ 5\] APPEND completed$
C: a10 FETCH 5 BODY.PEEK[]
S: * 5 FETCH (BODY[] {29}
S: Return-Subject: message 2
S: 
S: )
S: a10 OK *
C: a11 APPEND Drafts2 CATENATE (URL "/INBOX/;UID=99")
S: a11 NO [BADURL /INBOX/;UID=99] *
C: a12 APPEND Drafts2 CATENATE (URL "/INBOX;UIDVALIDITY=1/;UID=1")
S: a12 NO [BADURL *
C: a13 APPEND Drafts2 CATENATE (URL "/NoSuchBox/;UID=1")
S: a13 NO [BADURL *
C: a14 APPEND Drafts2 CATENATE (URL "imap://other@elsewhere.test/INBOX/;UID=1")
S: a14 NO [BADURL *
C: a15 APPEND Drafts2 CATENATE (URL "/INBOX/;UID=1;URLAUTH=anonymous:internal:x")
S: a15 NO [BADURL *
C: a16 APPEND Drafts2 CATENATE (URL "/INBOX/;UID=1/;SECTION=9")
S: a16 NO [BADURL *
C: a17 APPEND Drafts2 CATENATE (TEXT "quoted")
S: a17 BAD *
C: a18 APPEND NoSuchBox {1+}
C: x
S: a18 NO [TRYCREATE] *
C: a19 APPEND Drafts2 UTF8 ({1+}
C: x)
S: a19 BAD *
C: a20 STATUS Drafts2 (MESSAGES)
S: * STATUS "Drafts2" (MESSAGES 5)
S: a20 OK *
C: a21 LOGOUT
S: * BYE *
S: a21 OK *
