# Port 25: the EHLO keywords, STARTTLS offered, never AUTH (before or after TLS).
S: 220 mail.example.test ESMTP Tern*
C: EHLO client.test
R
S& mail.example.test*
S& PIPELINING
S& SIZE 52428800
S& 8BITMIME
S& SMTPUTF8
S& ENHANCEDSTATUSCODES
S& CHUNKING
S& DSN
S& STARTTLS
S!& AUTH*
C: STARTTLS
S: 220 2.0.0*
TLS
C: EHLO client.test
R
S& mail.example.test*
S& PIPELINING
S& CHUNKING
S!& STARTTLS
S!& AUTH*
C: QUIT
S: 221 2.0.0*
