# NUL and other control bytes in a command line are refused, the session
# goes on.
S: 220 *
C: EHLO client.test
R
C= NOOP\0junk\r\n
S~ ^50[01] 5\.5\.\d
C= MAIL FROM:<a\0b@remote.test>\r\n
S~ ^5\d\d 5\.\d\.\d
C= MAIL FROM:<ok@remote.test>\x01\r\n
S~ ^5\d\d 5\.\d\.\d
C: NOOP
S: 250 2.0.0*
C: QUIT
S: 221 *
