# Plain MX delivery to a local user; the stored copy is the message as sent
# (dot-unstuffed) after Tern's trace lines.
S: 220 mail.example.test ESMTP Tern*
C: EHLO client.test
R
S& mail.example.test*
C: MAIL FROM:<sender@remote.test>
S: 250 2.1.0*
C: RCPT TO:<a@example.test>
S: 250 2.1.5*
C: DATA
S: 354 *
C: From: Sender <sender@remote.test>
C: To: a@example.test
C: Subject: transcript basic
C: Message-ID: <basic-1@remote.test>
C:
C: Hello.
C: ..leading dot
C: .
S: 250 2.0.0*
C: QUIT
S: 221 2.0.0*
CLOSED
STORED a@example.test From: Sender <sender@remote.test>\r\nTo: a@example.test\r\nSubject: transcript basic\r\nMessage-ID: <basic-1@remote.test>\r\n\r\nHello.\r\n.leading dot\r\n
