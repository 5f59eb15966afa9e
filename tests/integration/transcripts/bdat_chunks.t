# CHUNKING (RFC 3030): several BDAT chunks, the last with LAST; DATA in the
# middle of a BDAT transaction is refused.
S: 220 *
C: EHLO client.test
R
S& CHUNKING
C: MAIL FROM:<bdat@remote.test>
S: 250 2.1.0*
C: RCPT TO:<a@example.test>
S: 250 2.1.5*
C= BDAT 22\r\nSubject: bdat-chunks\r\n
S: 250 2.0.0*
C= BDAT 6\r\n\r\nbody
S: 250 2.0.0*
C= BDAT 2 LAST\r\n\r\n
S: 250 2.0.0*
STORED a@example.test Subject: bdat-chunks\r\n\r\nbody\r\n
C: MAIL FROM:<bdat@remote.test>
S: 250 2.1.0*
C: RCPT TO:<a@example.test>
S: 250 2.1.5*
C= BDAT 5\r\nhello
S: 250 2.0.0*
C: DATA
S: 503 5.5.1*
C: RSET
S: 250 2.0.0*
C: QUIT
S: 221 *
