# NUL and other control characters in a command are refused.
@port pop3
S: +OK *
C= NO\0OP\r\n
S: -ERR Invalid characters in command
C= GET / HTTP/1.0\r\n
S: -ERR This is a POP3 server
CLOSED
