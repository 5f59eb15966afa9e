# BDAT with the whole transaction and the next command in one write.
S: 220 *
C: EHLO client.test
R
C= MAIL FROM:<bp@remote.test>\r\nRCPT TO:<b@example.test>\r\nBDAT 26 LAST\r\nSubject: bdat-pipe\r\n\r\nhi\r\nNOOP\r\n
S: 250 2.1.0*
S: 250 2.1.5*
S: 250 2.0.0*
S: 250 2.0.0*
STORED b@example.test Subject: bdat-pipe\r\n\r\nhi\r\n
C= MAIL FROM:<bp@remote.test>\r\nRCPT TO:<b@example.test>\r\nBDAT 8\r\nX: 1\r\n\r\nBDAT 0 LAST\r\nQUIT\r\n
S: 250 2.1.0*
S: 250 2.1.5*
S: 250 2.0.0*
S: 250 2.0.0*
S: 221 *
CLOSED
STORED b@example.test \r\nX: 1\r\n\r\n
