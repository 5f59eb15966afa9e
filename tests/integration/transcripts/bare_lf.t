# Bare LF and bare CR inside DATA are stored as CRLF.
S: 220 *
C: EHLO client.test
R
C: MAIL FROM:<lf@remote.test>
S: 250 2.1.0*
C: RCPT TO:<c@example.test>
S: 250 2.1.5*
C: DATA
S: 354 *
C= Subject: lf-norm\nX-Test: 1\n\nline1\nline2\r\nline3\rline4\r\n.\r\n
S: 250 2.0.0*
C: QUIT
S: 221 *
STORED c@example.test Subject: lf-norm\r\nX-Test: 1\r\n\r\nline1\r\nline2\r\nline3\r\nline4\r\n
