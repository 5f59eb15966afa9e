# RFC 2595 4: bytes pipelined after STLS are discarded; the server neither
# answers CAPA in plaintext nor runs it after the handshake.
@port pop3
S: +OK Tern POP3 server ready
C= STLS\r\nCAPA\r\n
S: +OK Begin TLS*
TLS
C: NOOP
S: -ERR Unknown command in AUTHORIZATION state*
C: QUIT
S: +OK Logging out
CLOSED
