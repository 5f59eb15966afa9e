# Syntax errors, unknown commands, wrong states, and 20 errors then BYE.
@port imaps
S: * OK *
C: a1 FROBNICATE
S: a1 BAD Unknown command*
C: a2 UID NOOP
S: a2 BAD *
C: a3 NOOP extra
S: a3 BAD *
C: a4 LOGIN @USER@ pw-Secret-1
S: a4 OK *
C: a5 FETCH 1 FLAGS
S: a5 BAD No mailbox selected
C: a6 SELECT INBOX
DRAIN~ ^\*
S: a6 OK [READ-WRITE] SELECT completed
C: a7 FETCH 99 FLAGS
S: a7 BAD Invalid sequence number*
C: a8 FETCH 1 (FLAGS
S: a8 BAD *
C: a9 STORE 1 +FLAGS (\Recent)
S: a9 BAD *
C: a10 CREATE
S: a10 BAD *
C: b1 X
S: b1 BAD *
C: b2 X
S: b2 BAD *
C: b3 X
S: b3 BAD *
C: b4 X
S: b4 BAD *
C: b5 X
S: b5 BAD *
C: b6 X
S: b6 BAD *
C: b7 X
S: b7 BAD *
C: b8 X
S: b8 BAD *
C: b9 X
S: b9 BAD *
C: b10 X
S: b10 BAD *
C: b11 X
S: b11 BAD *
C: b12 X
S: b12 BAD *
S: * BYE Too many invalid commands
CLOSED
