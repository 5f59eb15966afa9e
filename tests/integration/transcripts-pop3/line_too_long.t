# Over-long lines are refused and discarded up to their end.
@port pop3
S: +OK *
C: NOOP {{3000*x}}
S: -ERR Line too long (limit 2048 bytes)
C: CAPA
S: +OK Capability list follows
DRAIN~ ^[A-Z]
S: .
C: QUIT
S: +OK Logging out
CLOSED
