# Port 587: STARTTLS offered, AUTH only after TLS (loopback plaintext AUTH is
# off in the shared server's config).
@port submission
S: 220 mail.example.test ESMTP Tern*
C: EHLO client.test
R
S& STARTTLS
S& ENHANCEDSTATUSCODES
S!& AUTH*
C: STARTTLS
S: 220 2.0.0*
TLS
C: EHLO client.test
R
S& AUTH PLAIN LOGIN SCRAM-SHA-256
S& PIPELINING
S& SIZE 52428800
S& 8BITMIME
S& SMTPUTF8
S& CHUNKING
S& DSN
S!& STARTTLS
C: QUIT
S: 221 2.0.0*
