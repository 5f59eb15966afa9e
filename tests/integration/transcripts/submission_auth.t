# Port 587 after STARTTLS: MAIL before AUTH is 530 5.7.0, a wrong password
# 535 5.7.8, then AUTH PLAIN succeeds; own sender accepted, another refused.
@port submission
S: 220 *
C: EHLO client.test
R
C: STARTTLS
S: 220 2.0.0*
TLS
C: EHLO client.test
R
C: MAIL FROM:<a@example.test>
S: 530 5.7.0*
C: AUTH PLAIN AGFAZXhhbXBsZS50ZXN0AHdyb25n
S: 535 5.7.8*
C: AUTH PLAIN AGFAZXhhbXBsZS50ZXN0AGFscGhhLVNlY3JldC0x
S: 235 2.7.0*
C: AUTH PLAIN AGFAZXhhbXBsZS50ZXN0AGFscGhhLVNlY3JldC0x
S: 503 5.5.1*
C: MAIL FROM:<b@example.test>
S: 553 5.7.1*
C: MAIL FROM:<a@example.test>
S: 250 2.1.0*
C: RCPT TO:<b@example.test>
S: 250 2.1.5*
C: RCPT TO:<someone@remote.test>
S: 250 2.1.5*
C: DATA
S: 354 *
C: From: a@example.test
C: To: b@example.test
C: Subject: submission transcript
C:
C: hi b
C: .
S: 250 2.0.0*
C: QUIT
S: 221 *
STORED b@example.test From: a@example.test\r\nTo: b@example.test\r\nSubject: submission transcript\r\n\r\nhi b\r\n
