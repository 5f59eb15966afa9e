# Port 25 relays nothing: every way of smuggling a remote address through a
# local-looking one is refused (never 250), plain remote domains get
# 554 5.7.1 relay access denied; a mixed-case local address is delivered.
S: 220 *
C: EHLO client.test
R
C: MAIL FROM:<relay@remote.test>
S: 250 2.1.0*
C: RCPT TO:<user@remote.test>
S~ ^554 5\.7\.1 .*[Rr]elay
# percent hack
C: RCPT TO:<user%remote.test@example.test>
S~ ^5(50 5\.1\.1|54 5\.7\.1)
# bang path
C: RCPT TO:<remote.test!user@example.test>
S~ ^5(50 5\.1\.1|54 5\.7\.1)
# quoted local part holding an @
C: RCPT TO:<"user@remote.test"@example.test>
S~ ^5(50 5\.1\.1|54 5\.7\.1)
# source route: the real destination is remote.test
C: RCPT TO:<@other.test:user@remote.test>
S~ ^554 5\.7\.1 .*[Rr]elay
# address literal
C: RCPT TO:<user@[127.0.0.1]>
S~ ^5(54 5\.7\.1|50 5\.1\.1|01 5\.1\.3)
# trailing dot
C: RCPT TO:<user@remote.test.>
S~ ^5(54 5\.7\.1|01 5\.1\.3|50 5\.1\.\d)
# a remote domain that ends like a local one
C: RCPT TO:<user@evilexample.test>
S~ ^554 5\.7\.1 .*[Rr]elay
C: RCPT TO:<user@sub.example.test>
S~ ^554 5\.7\.1 .*[Rr]elay
# mixed case of a local user: delivered
C: RCPT TO:<A@EXAMPLE.TEST>
S: 250 2.1.5*
C: DATA
S: 354 *
C: Subject: relay-refusals
C:
C: only a@ gets this
C: .
S: 250 2.0.0*
C: QUIT
S: 221 *
STORED-COUNT a@example.test +1
STORED a@example.test Subject: relay-refusals\r\n\r\nonly a@ gets this\r\n
