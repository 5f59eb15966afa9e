# PIPELINING (RFC 2920): MAIL/RCPT/DATA in one write, and the next
# transaction right after the end-of-data dot.
S: 220 *
C: EHLO client.test
R
S& PIPELINING
C= MAIL FROM:<p@remote.test>\r\nRCPT TO:<b@example.test>\r\nRCPT TO:<nobody@example.test>\r\nDATA\r\n
S: 250 2.1.0*
S: 250 2.1.5*
S: 550 5.1.1*
S: 354 *
C= Subject: pipelined-after-data\r\n\r\nhello\r\n.\r\nMAIL FROM:<p2@remote.test>\r\nRCPT TO:<a@example.test>\r\nDATA\r\n
S: 250 2.0.0*
S: 250 2.1.0*
S: 250 2.1.5*
S: 354 *
C= Subject: second\r\n\r\nworld\r\n.\r\nQUIT\r\n
S: 250 2.0.0*
S: 221 2.0.0*
CLOSED
STORED b@example.test Subject: pipelined-after-data\r\n\r\nhello\r\n
STORED a@example.test Subject: second\r\n\r\nworld\r\n
