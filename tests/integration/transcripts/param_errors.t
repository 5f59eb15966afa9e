# Unknown or malformed MAIL/RCPT parameters: 555 5.5.4 (RFC 5321 4.1.1.11),
# SIZE over the limit: 552 5.3.4.
S: 220 *
C: EHLO client.test
R
C: MAIL FROM:<p@remote.test> FOO=BAR
S: 555 5.5.4*
C: MAIL FROM:<p@remote.test> SIZE=999999999999
S: 552 5.3.4*
C: MAIL FROM:<p@remote.test> BODY=9BIT
S~ ^5(01|55) 5\.5\.4
C: MAIL FROM:<p@remote.test> SIZE=100 BODY=8BITMIME
S: 250 2.1.0*
C: RCPT TO:<a@example.test> XFOO=1
S: 555 5.5.4*
C: RCPT TO:<a@example.test> NOTIFY=BOGUS
S~ ^5(01|55) 5\.5\.4
C: RCPT TO:<a@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@example.test
S: 250 2.1.5*
C: RSET
S: 250 2.0.0*
C: MAIL FROM:<not an address>
S~ ^5(01|53) 5\.(1\.[37]|5\.[24])
C: QUIT
S: 221 *
