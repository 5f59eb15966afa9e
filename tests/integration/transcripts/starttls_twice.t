# STARTTLS inside TLS is refused; a second EHLO is required after TLS.
S: 220 *
C: EHLO client.test
R
C: STARTTLS
S: 220 2.0.0*
TLS
C: MAIL FROM:<t@remote.test>
S: 503 5.5.1*
C: EHLO client.test
R
C: STARTTLS
S~ ^5\d\d 5\.\d\.\d
C: QUIT
S: 221 *
