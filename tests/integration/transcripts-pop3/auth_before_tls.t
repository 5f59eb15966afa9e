# No password in the clear: USER, PASS and AUTH need STLS first.
@port pop3
S: +OK *
C: CAPA
S: +OK Capability list follows
S: TOP
S: UIDL
S: RESP-CODES
S: AUTH-RESP-CODE
S: PIPELINING
S: EXPIRE NEVER
S: STLS
S: IMPLEMENTATION Tern
S: .
C: USER pt@example.test
S: -ERR [AUTH] Plaintext authentication disallowed*
C: PASS x
S: -ERR [AUTH] Plaintext authentication disallowed*
C: AUTH PLAIN AHB0QGV4YW1wbGUudGVzdAB4
S: -ERR [AUTH] Plaintext authentication disallowed*
C: APOP pt@example.test 0123456789abcdef0123456789abcdef
S: -ERR APOP not supported*
C: STAT
S: -ERR Unknown command in AUTHORIZATION state*
C: QUIT
S: +OK Logging out
CLOSED
