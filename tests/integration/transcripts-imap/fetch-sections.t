# FETCH sections of a single-part message: part 1 is its body, 1.MIME its
# header, partial with the origin echoed, BINARY and BINARY.SIZE, and the
# errors (RFC 9051 6.4.5, RFC 3516).
@port imaps
S: * OK *
C: a1 LOGIN @USER@ pw-Secret-1
S: a1 OK *
C: a2 EXAMINE INBOX
DRAIN~ ^\* 
S: a2 OK [READ-ONLY] EXAMINE completed
C: a3 FETCH 1 (BODY.PEEK[1] BINARY.SIZE[1])
S: * 1 FETCH (BODY[1] {8}
S: body 1
S~ ^ BINARY\.SIZE\[1\] 8\)$
S: a3 OK FETCH completed
C: a4 FETCH 2 BODY.PEEK[1]<2.100>
S: * 2 FETCH (BODY[1]<2> {6}
S: dy 2
S: )
S: a4 OK FETCH completed
C: a5 FETCH 2 BINARY.PEEK[]<0.4>
S: * 2 FETCH (BINARY[]<0> {4}
S~ ^Retu\)$
S: a5 OK FETCH completed
C: a6 FETCH 1 BODY.PEEK[2]
S: * 1 FETCH (BODY[2] NIL)
S: a6 OK FETCH completed
C: a7 FETCH 1 BODY[MIME]
S: a7 BAD *
C: a8 FETCH 1 BINARY[1.TEXT]
S: a8 BAD *
C: a9 FETCH 1 BODY[1]<0.0>
S: a9 BAD *
C: a10 LOGOUT
S: * BYE *
S: a10 OK *
