# Port 465: implicit TLS, so AUTH is offered at once and STARTTLS is not.
@port submissions
S: 220 mail.example.test ESMTP Tern*
C: EHLO client.test
R
S& AUTH PLAIN LOGIN SCRAM-SHA-256
S& PIPELINING
S& ENHANCEDSTATUSCODES
S!& STARTTLS
C: STARTTLS
S~ ^5\d\d 5\.\d\.\d
C: QUIT
S: 221 2.0.0*
