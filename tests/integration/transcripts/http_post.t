# POST after a valid EHLO is also hung up on.
S: 220 *
C: EHLO client.test
R
C= POST /submit HTTP/1.1\r\nContent-Length: 0\r\n\r\n
S? 5*
S? 421*
CLOSED
