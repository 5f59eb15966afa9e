# Commands out of order get 503 5.5.1 and change nothing.
S: 220 *
C: MAIL FROM:<o@remote.test>
S: 503 5.5.1*
C: RCPT TO:<a@example.test>
S: 503 5.5.1*
C: EHLO client.test
R
C: RCPT TO:<a@example.test>
S: 503 5.5.1*
C: DATA
S: 503 5.5.1*
C: MAIL FROM:<o@remote.test>
S: 250 2.1.0*
C: MAIL FROM:<o@remote.test>
S: 503 5.5.1*
C: DATA
S~ ^5(03|54) 5\.5\.1
C: RSET
S: 250 2.0.0*
C: DATA
S: 503 5.5.1*
C: NOOP
S: 250 2.0.0*
C: QUIT
S: 221 2.0.0*
CLOSED
