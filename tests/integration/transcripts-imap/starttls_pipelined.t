# Commands pipelined after STARTTLS in plaintext are discarded, never run.
@port imap
S: * OK *
C= a1 STARTTLS\r\na2 LOGIN @USER@ pw-Secret-1\r\n
S: a1 OK Begin TLS negotiation now
TLS
C: a3 NOOP
S: a3 OK NOOP completed
C: a4 LOGOUT
S: * BYE *
S: a4 OK *
