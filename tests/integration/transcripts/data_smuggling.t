# SMTP smuggling: "\n.\n" and "\r\n.\n" and ".\r" do not end the message; only
# CRLF.CRLF does, so the commands hidden inside are message text.
S: 220 *
C: EHLO client.test
R
C: MAIL FROM:<smuggler@remote.test>
S: 250 2.1.0*
C: RCPT TO:<b@example.test>
S: 250 2.1.5*
C: DATA
S: 354 *
C= Subject: smuggle\r\n\r\nbefore\n.\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<a@example.test>\r\nDATA\r\nhidden-1\r\n.\nRSET\r\nhidden-2\r\n.\rNOOP\r\nafter\r\n.\r\n
S: 250 2.0.0*
SILENT 300
C: NOOP
S: 250 2.0.0*
C: QUIT
S: 221 *
CLOSED
STORED-COUNT a@example.test +0
STORED-COUNT b@example.test +1
STORED b@example.test \r\nafter\r\n
