# Every TRANSACTION command over POP3S, the error replies, and pipelining
# (RFC 2449 6.6: replies in order).  The user pt@example.test has two
# messages (see test_pop3_transcripts.py).
@port pop3s
S: +OK Tern POP3 server ready
C: USER pt@example.test
S: +OK *
C: PASS wrong
S: -ERR [AUTH] Authentication failed
C: PASS pt-Secret-1
S: -ERR Send USER first
C: USER pt@example.test
S: +OK *
C: PASS pt-Secret-1
S~ ^\+OK Logged in, 2 messages \(\d+ octets\)$
C: STAT
S~ ^\+OK 2 \d+$
C: LIST
S~ ^\+OK 2 messages
S~ ^1 \d+$
S~ ^2 \d+$
S: .
C: LIST 2
S~ ^\+OK 2 \d+$
C: LIST 3
S: -ERR There is no message 3
C: LIST 0
S: -ERR There is no message 0
C: LIST x
S: -ERR Invalid message number
C: UIDL
S: +OK
S~ ^1 [0-9A-F]{16}$
S~ ^2 [0-9A-F]{16}$
S: .
C: UIDL 1
S~ ^\+OK 1 00000001[0-9A-F]{8}$
C: TOP 1 0
S: +OK Top of message 1 follows
S: Return-Path: <sender@remote.test>
S: Delivered-To: pt@example.test
DRAIN~ ^(Received:|\t|Subject:|From:|To:)
S: 
S: .
C: TOP 1
S: -ERR Syntax: TOP msg lines
C: RETR
S: -ERR Syntax: RETR msg
C: RETR 2
S~ ^\+OK \d+ octets$
S: Return-Path: <sender@remote.test>
DRAIN~ ^(Delivered-To:|Received:|\t|Subject:|From:|To:)
S: 
S: ..leading dot
S: ...
S: last line
S: .
C: NOOP
S: +OK NOOP
C= DELE 1\r\nDELE 1\r\nSTAT\r\nRETR 1\r\nRSET\r\nSTAT\r\n
S: +OK Message 1 deleted
S: -ERR Message 1 is deleted
S~ ^\+OK 1 \d+$
S: -ERR Message 1 is deleted
S~ ^\+OK 2 messages
S~ ^\+OK 2 \d+$
C: USER again
S: -ERR Command not valid in TRANSACTION state
C: STLS
S: -ERR Command not valid in TRANSACTION state
C: XYZW
S: -ERR Unknown command
C: TOOLONGVERB
S: -ERR Unknown command
C: QUIT
S: +OK Logging out, 0 messages deleted
CLOSED
