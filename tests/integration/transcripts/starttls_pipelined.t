# Bytes pipelined after STARTTLS are discarded (CVE-2011-0411 class): the
# server neither answers RSET in plaintext nor runs it after the handshake.
S: 220 *
C: EHLO client.test
R
S& STARTTLS
C= STARTTLS\r\nRSET\r\n
S: 220 2.0.0*
TLS
C: EHLO client.test
R
S& mail.example.test*
S& PIPELINING
C: NOOP
S: 250 2.0.0*
C: QUIT
S: 221 *
