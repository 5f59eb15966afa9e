# DATA without a valid recipient fails; a BDAT after it fails too, and its
# chunk bytes are consumed (not run as commands).
S: 220 *
C: EHLO client.test
R
C: MAIL FROM:<bdat@remote.test>
S: 250 2.1.0*
C: RCPT TO:<nobody@example.test>
S: 550 5.1.1*
C: DATA
S~ ^5(03|54) 5\.5\.1
C= BDAT 12 LAST\r\nQUIT\r\nRSET\r\n
S~ ^5(03|54) 5\.5\.1
C: NOOP
S: 250 2.0.0*
C: QUIT
S: 221 *
CLOSED
