# A command line over limits.smtp_line (2048) gets 500 5.5.6; the session
# goes on with the next line.
S: 220 *
C: EHLO client.test
R
C: NOOP {{3000*x}}
S: 500 5.5.6*
C: NOOP
S: 250 2.0.0*
C: MAIL FROM:<{{2100*y}}@remote.test>
S: 500 5.5.6*
C: MAIL FROM:<long@remote.test>
S: 250 2.1.0*
C: QUIT
S: 221 *
