# SELECT, FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE and the UID forms.
@port imaps
S: * OK *
C: a1 LOGIN @USER@ pw-Secret-1
S: a1 OK *
C: a2 SELECT INBOX
S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft*)
S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft* \*)] *
S: * 2 EXISTS
S: * 2 RECENT
S: * OK [UNSEEN 1] *
S~ ^\* OK \[UIDVALIDITY \d+\]
S: * OK [UIDNEXT 3] *
S: * OK [HIGHESTMODSEQ *] *
S~ ^\* OK \[MAILBOXID \([A-Za-z0-9_-]+\)\]
S: a2 OK [READ-WRITE] SELECT completed
C: a3 FETCH 1:* (UID FLAGS RFC822.SIZE)
S~ ^\* 1 FETCH \(UID 1 FLAGS \(\\Recent\) RFC822\.SIZE \d+\)$
S~ ^\* 2 FETCH \(UID 2 FLAGS \(\\Recent\) RFC822\.SIZE \d+\)$
S: a3 OK FETCH completed
C: a4 FETCH 2 BODY.PEEK[HEADER.FIELDS (SUBJECT)]
S: * 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {22}
S: Subject: message 2
S: 
S: )
S: a4 OK FETCH completed
C: a5 FETCH 1 BODY[TEXT]<0.4>
S: * 1 FETCH (BODY[TEXT]<0> {4}
S: body FLAGS (\Seen \Recent))
S: a5 OK FETCH completed
C: a6 UID FETCH 2 (FLAGS)
S: * 2 FETCH (UID 2 FLAGS (\Recent))
S: a6 OK UID FETCH completed
C: a7 STORE 2 +FLAGS (\Flagged $Work)
S: * 2 FETCH (FLAGS (\Flagged $Work \Recent))
S: a7 OK STORE completed
C: a8 UID STORE 1:2 -FLAGS.SILENT (\Flagged)
S: a8 OK UID STORE completed
C: a9 SEARCH UNSEEN
S: * SEARCH 2
S: a9 OK SEARCH completed
C: a10 UID SEARCH KEYWORD $Work
S: * SEARCH 2
S: a10 OK UID SEARCH completed
C: a11 SEARCH SUBJECT foo
S: * SEARCH
S: a11 OK SEARCH completed
C: a12 COPY 1:2 Trash
S~ ^a12 OK \[COPYUID \d+ 1:2 1:2\] COPY completed
C: a13 COPY 1 Nowhere
S: a13 NO [TRYCREATE] *
C: a14 UID MOVE 1 Archive
S~ ^\* OK \[COPYUID \d+ 1 1\] Moved
S: * 1 EXPUNGE
S: a14 OK UID MOVE completed
C: a15 STORE 1 FLAGS (\Deleted)
S: * 1 FETCH (FLAGS (\Deleted \Recent))
S: a15 OK STORE completed
C: a16 EXPUNGE
S: * 1 EXPUNGE
S: a16 OK EXPUNGE completed
C: a17 STATUS Trash (MESSAGES)
S: * STATUS "Trash" (MESSAGES 2)
S: a17 OK STATUS completed
C: a18 APPEND INBOX (\Seen) "17-Jul-1996 02:44:25 -0700" {18+}
C= Subject: new\r\n\r\nhi\r\n
S: * 1 EXISTS
S: * 1 RECENT
S~ ^a18 OK \[APPENDUID \d+ 3\] APPEND completed
C: a19 FETCH 1 (INTERNALDATE FLAGS)
S: * 1 FETCH (INTERNALDATE "17-Jul-1996 09:44:25 +0000" FLAGS (\Seen \Recent))
S: a19 OK FETCH completed
C: a20 UNSELECT
S: a20 OK UNSELECT completed
C: a21 EXAMINE Trash
DRAIN~ ^\* 
S: a21 OK [READ-ONLY] EXAMINE completed
C: a22 STORE 1 +FLAGS (\Seen)
S: a22 NO [READ-ONLY] *
C: a23 CLOSE
S: a23 OK CLOSE completed
C: a24 APPEND Nowhere {3+}
C: abc
S: a24 NO [TRYCREATE] *
C: a25 LOGOUT
S: * BYE *
S: a25 OK *
