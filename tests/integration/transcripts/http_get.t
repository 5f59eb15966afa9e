# A web request on the SMTP port (a proxy or browser): hang up.
S: 220 *
C= GET / HTTP/1.1\r\nHost: mail.example.test\r\n\r\n
S? 5*
S? 421*
CLOSED
