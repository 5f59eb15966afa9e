# Unknown local users are refused at RCPT with 550 5.1.1; the catch-all
# domain takes anything.
S: 220 *
C: EHLO client.test
R
C: MAIL FROM:<u@remote.test>
S: 250 2.1.0*
C: RCPT TO:<nobody@example.test>
S: 550 5.1.1*
C: RCPT TO:<nobody+tag@example.test>
S: 550 5.1.1*
C: RCPT TO:<anything@catchall.test>
S: 250 2.1.5*
C: RSET
S: 250 2.0.0*
C: QUIT
S: 221 *
