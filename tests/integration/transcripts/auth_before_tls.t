# Port 587 from loopback with smtp.plaintext_auth_loopback = false: AUTH is
# neither offered nor accepted before TLS; MAIL needs AUTH first.
@port submission
S: 220 *
C: EHLO client.test
R
S!& AUTH*
C: AUTH PLAIN AGFAZXhhbXBsZS50ZXN0AGFscGhhLVNlY3JldC0x
S~ ^5(30 5\.7\.0|38 5\.7\.11|03 5\.5\.1|04 5\.5\.4)
C: AUTH LOGIN
S~ ^5(30 5\.7\.0|38 5\.7\.11|03 5\.5\.1|04 5\.5\.4)
C: MAIL FROM:<a@example.test>
S: 530 5.7.0*
C: QUIT
S: 221 *
