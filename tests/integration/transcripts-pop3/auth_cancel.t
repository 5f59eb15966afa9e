# AUTH (RFC 5034): mechanism listing, an empty challenge, cancel with "*",
# unknown mechanism, bad base64, then a good PLAIN login.
@port pop3s
S: +OK *
C: AUTH
S: +OK
S: PLAIN
S: LOGIN
S: SCRAM-SHA-256
S: .
C: AUTH PLAIN
S: + 
C: *
S: -ERR [AUTH] Authentication cancelled
C: AUTH NOSUCH
S: -ERR [AUTH] Unsupported authentication mechanism
C: AUTH PLAIN
S: + 
C: !!notbase64!!
S: -ERR [AUTH] Invalid base64*
C: AUTH PLAIN AHB0QGV4YW1wbGUudGVzdABwdC1TZWNyZXQtMQ==
S~ ^\+OK Logged in, 2 messages
C: QUIT
S: +OK Logging out*
CLOSED
