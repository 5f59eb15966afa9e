# AUTHENTICATE PLAIN with a continuation, "*" cancels, SASL-IR, SCRAM start (imaps).
@port imaps
S: * OK [CAPABILITY *AUTH=PLAIN*] Tern IMAP server ready
C: a1 AUTHENTICATE PLAIN
S: +*
C: *
S: a1 BAD Authentication cancelled
C: a2 AUTHENTICATE PLAIN
S: +*
C: !!!notbase64
S: a2 BAD *
C: a3 AUTHENTICATE X-UNKNOWN
S: a3 NO [CANNOT] *
C: a4 AUTHENTICATE PLAIN
S: +*
C: AGF1dGhAZXhhbXBsZS50ZXN0AHB3LVNlY3JldC0x
S: a4 OK [CAPABILITY *] Logged in
C: a5 LOGOUT
S: * BYE *
S: a5 OK *
CLOSED
