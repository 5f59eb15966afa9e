# RFC 8689: REQUIRETLS is offered only on a TLS session, and the MAIL
# parameter is refused without TLS with 530 5.7.10; CR/LF never smuggles it.
S: 220 mail.example.test ESMTP Tern*
C: EHLO client.test
R
S!& REQUIRETLS
C: MAIL FROM:<t@remote.test> REQUIRETLS
S: 530 5.7.10*
C: MAIL FROM:<t@remote.test> REQUIRETLS=1
S: 530 5.7.10*
C= MAIL FROM:<t@remote.test>\rREQUIRETLS\r\n
S~ ^5\d\d 5\.5\.\d
C: STARTTLS
S: 220 2.0.0*
TLS
C: EHLO client.test
R
S& REQUIRETLS
C: MAIL FROM:<t@remote.test> REQUIRETLS REQUIRETLS
S: 555 5.5.4*
C: MAIL FROM:<t@remote.test> REQUIRETLS=yes
S: 555 5.5.4*
C: MAIL FROM:<t@remote.test> REQUIRETLS
S: 250 2.1.0*
C: RCPT TO:<a@example.test>
S: 250 2.1.5*
C: DATA
S: 354*
C: Subject: requiretls transcript
C:
C: over TLS
C: .
S: 250 2.0.0*
STORED a@example.test over TLS\r\n
C: QUIT
S: 221 2.0.0*
