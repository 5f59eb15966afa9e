# HELO (not EHLO) still works, with a plain 250 and no extension list.
S: 220 *
C: HELO client.test
S: 250 mail.example.test*
C: MAIL FROM:<helo@remote.test>
S: 250 2.1.0*
C: RCPT TO:<b@example.test>
S: 250 2.1.5*
C: DATA
S: 354 *
C: Subject: helo
C:
C: via HELO
C: .
S: 250 2.0.0*
C: QUIT
S: 221 *
STORED b@example.test Subject: helo\r\n\r\nvia HELO\r\n
